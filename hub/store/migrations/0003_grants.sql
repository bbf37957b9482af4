-- Partial replication: the sites that may see a patient registered at another site
-- (because it has business there). A grant takes a block of cursors in the log, one
-- per change the patient had when it was granted: at those positions the site's nodes
-- receive the patient's earlier history, in order, and afterwards its new changes in
-- the ordinary way. A node's download cursor passes the block only as it applies it,
-- so a crash can never skip a patient's history.
CREATE TABLE grants (
    site TEXT NOT NULL REFERENCES sites(code),
    doc_id UUID NOT NULL,
    first_cursor BIGINT NOT NULL,
    last_cursor BIGINT NOT NULL,
    reason TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (site, doc_id)
);
CREATE INDEX grants_pending ON grants(site, last_cursor);
-- Clinics ask for a patient of another clinic by medical record number.
CREATE INDEX documents_mrn ON documents((record->>'mrn')) WHERE kind = 'patient';

-- Before grants existed every site received every patient: those stay in scope, with
-- no history to send (a block at cursor 0 is behind every node).
INSERT INTO grants (site, doc_id, first_cursor, last_cursor, reason)
SELECT s.code, o.doc_id, 0, 0, 'held before partial replication'
FROM document_owners o CROSS JOIN sites s
WHERE o.kind = 'patient' AND o.site <> s.code;
