-- Webhook endpoints and their delivery log (docs/WEBHOOKS.md). Each endpoint reads the event
-- log after its own durable cursor.
CREATE TABLE webhook_endpoint (
    id              TEXT PRIMARY KEY,                  -- UUID
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,                     -- '*' or space-separated event names
    description     TEXT NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL DEFAULT 1,
    secret          TEXT NOT NULL,                     -- whsec_…
    previous_secret TEXT,                              -- still signs until previous_until
    previous_until  INTEGER,
    cursor          INTEGER NOT NULL,                  -- seq of the last event acknowledged
    attempt         INTEGER NOT NULL DEFAULT 0,        -- failed attempts at the next event
    failing_since   INTEGER,                           -- first failure of the current run
    next_attempt_at INTEGER,                           -- when to try again (Unix ms)
    disabled_reason TEXT,
    replay_next     INTEGER,                           -- a replay's next seq, to replay_to
    replay_to       INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE TABLE webhook_delivery (
    id               INTEGER PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    seq              INTEGER,                          -- NULL: a test, or a gap record
    event_type       TEXT NOT NULL,
    webhook_id       TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    status_code      INTEGER,
    latency_ms       INTEGER NOT NULL,
    response_excerpt TEXT,
    error            TEXT,
    replay           INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE INDEX webhook_delivery_by_endpoint ON webhook_delivery (endpoint_id, id);
