-- Each node's audit trail, as the node chained it (healsync_domain::audit): the
-- event's canonical bytes and chain hash exactly as shipped, the time the hub received
-- it, and the decoded fields central admins query by. A second copy of an event
-- (same node and number) is ignored, so what arrived first stays: a node that rewrites
-- its trail after shipping it cannot rewrite the hub's copy.
CREATE TABLE audit_events (
    node_id UUID NOT NULL REFERENCES nodes (id),
    seq BIGINT NOT NULL,
    event BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    at TIMESTAMPTZ NOT NULL,
    site TEXT NOT NULL,
    username TEXT NOT NULL,
    access TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id UUID NOT NULL,
    patient_id UUID,
    operation TEXT NOT NULL,
    peer TEXT,
    reason TEXT,
    PRIMARY KEY (node_id, seq)
);

CREATE INDEX audit_events_patient ON audit_events (patient_id, at) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_username ON audit_events (username, at);
