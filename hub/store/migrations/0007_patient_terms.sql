-- Patients found by the words of their name, MRN and e-mail and their phone digits,
-- by prefix (`healsync_domain::patient::search_terms`, the same words a node's
-- full-text index holds), kept by the fold like the other projections. "C" collation
-- so that `LIKE 'word%'` uses the index.
CREATE TABLE patient_terms (
    term TEXT COLLATE "C" NOT NULL,
    doc_id UUID NOT NULL,
    PRIMARY KEY (term, doc_id)
);
CREATE INDEX patient_terms_doc ON patient_terms(doc_id);

-- Patients folded before this table existed are projected at the next start.
ALTER TABLE hub_meta ADD COLUMN patient_terms_backfilled BOOLEAN NOT NULL DEFAULT FALSE;
