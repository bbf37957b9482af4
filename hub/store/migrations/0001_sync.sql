-- Sites, nodes and enrollment; the change log nodes sync into.

CREATE TABLE sites (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE nodes (
    id UUID PRIMARY KEY,
    site TEXT NOT NULL REFERENCES sites(code),
    enrolled_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ,
    -- Every change of this node's log with seq <= upload_acked is committed here.
    upload_acked BIGINT NOT NULL DEFAULT 0,
    last_sync_at TIMESTAMPTZ
);

-- One-time enrollment tokens, stored as SHA-256 hashes.
CREATE TABLE enrollment_tokens (
    token_hash BYTEA PRIMARY KEY,
    site TEXT NOT NULL REFERENCES sites(code),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at TIMESTAMPTZ,
    node_id UUID
);

-- The site that owns each document (the site of the node that first uploaded it), and
-- whether every site receives it.
CREATE TABLE document_owners (
    doc_id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    site TEXT NOT NULL,
    shared BOOLEAN NOT NULL
);

-- The hub's log: every stored change once (by hash), in commit order.
CREATE TABLE changes (
    cursor BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    doc_id UUID NOT NULL,
    kind TEXT NOT NULL,
    origin_node UUID NOT NULL,
    bytes BYTEA NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX changes_doc ON changes(doc_id);

-- The log head: allocating cursors by updating this row serialises appends, so cursor
-- order is commit order and a reader past cursor N never misses a later commit below N.
CREATE TABLE log_head (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    last_cursor BIGINT NOT NULL
);
INSERT INTO log_head (last_cursor) VALUES (0);

-- Uploaded changes the hub refused, kept for admins and repeated to the node until it
-- has recorded them.
CREATE TABLE rejections (
    node_id UUID NOT NULL REFERENCES nodes(id),
    seq BIGINT NOT NULL,
    doc_id UUID NOT NULL,
    reason TEXT NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, seq)
);
