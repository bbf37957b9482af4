-- Central admins' sessions ended one by one (logout), kept until the token would have
-- expired, so a restart does not revive them.
CREATE TABLE ended_sessions (
    id TEXT PRIMARY KEY,
    user_id UUID NOT NULL,
    expires_at BIGINT NOT NULL
);
