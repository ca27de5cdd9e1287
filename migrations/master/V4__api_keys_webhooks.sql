-- API keys of machine clients (docs/WEBHOOKS.md): each belongs to one tenant; only the key's
-- SHA-256 is kept, found by its public prefix and compared in constant time.
CREATE TABLE api_key (
    id           TEXT PRIMARY KEY,                     -- UUID
    tenant_id    TEXT NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,                 -- the key's first 12 characters
    key_hash     BLOB NOT NULL,                        -- SHA-256 of the whole key
    scopes       TEXT NOT NULL,                        -- space-separated
    created_by   TEXT NOT NULL,                        -- the user who made it
    created_at   INTEGER NOT NULL,                     -- Unix ms
    expires_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_key_by_tenant ON api_key (tenant_id, created_at);

-- Whether the tenant's file has webhook endpoints: their delivery starts with the server
-- without opening every tenant file (the file stays the truth).
ALTER TABLE tenant ADD COLUMN webhooks INTEGER NOT NULL DEFAULT 0;
