-- The hub's own copy of every document and the projections derived from it. The log
-- (changes) is ground truth for the hub; everything here can be rebuilt from it.

-- The hub's automerge actor (for writes made at the hub: bookings, settled conflicts,
-- users, notifications) and how far the log has been folded into documents.
CREATE TABLE hub_meta (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    actor UUID NOT NULL,
    projected_cursor BIGINT NOT NULL DEFAULT 0
);
INSERT INTO hub_meta (actor) VALUES (gen_random_uuid());

-- One row per document: its compacted bytes, heads, and every field's current value
-- as JSON (one shape for every kind: a new kind is queryable without a new table).
CREATE TABLE documents (
    doc_id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    site TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    heads TEXT NOT NULL,
    record JSONB NOT NULL,
    -- False while a change waits for a dependency not yet in the log.
    complete BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX documents_kind_site ON documents(kind, site);
CREATE INDEX documents_username ON documents((record->>'username')) WHERE kind = 'user';

-- Fields edited differently at two places, until a person settles them.
CREATE TABLE field_conflicts (
    doc_id UUID NOT NULL,
    field TEXT NOT NULL,
    vals JSONB NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_id, field)
);

-- Appointments as cross-site scheduling needs them.
CREATE TABLE appointments (
    doc_id UUID PRIMARY KEY,
    site TEXT NOT NULL,
    doctor_id UUID NOT NULL,
    patient_id UUID NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX appointments_doctor ON appointments(doctor_id, start_at);
CREATE INDEX appointments_patient ON appointments(patient_id, start_at);

-- One doctor or one patient booked at two sites at overlapping times (found at the hub;
-- both sites are notified). first_appointment < second_appointment.
CREATE TABLE cross_site_conflicts (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    first_appointment UUID NOT NULL,
    second_appointment UUID NOT NULL,
    first_site TEXT NOT NULL,
    second_site TEXT NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ,
    UNIQUE (first_appointment, second_appointment, kind)
);

-- How far each node has applied the hub's log (the cursor it last asked after), for
-- its sync lag.
ALTER TABLE nodes ADD COLUMN download_cursor BIGINT NOT NULL DEFAULT 0;
