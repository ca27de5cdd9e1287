-- The master registry: which tenants exist, which file holds each, and who may sign in.
CREATE TABLE tenant (
    id             TEXT PRIMARY KEY,             -- UUID
    name           TEXT NOT NULL,
    db_name        TEXT NOT NULL UNIQUE CHECK (db_name GLOB '[a-z0-9_]*' AND length(db_name) BETWEEN 1 AND 64),
    created_at     TEXT NOT NULL,                -- RFC 3339, UTC
    provisioned_at TEXT                          -- set once the tenant's file exists and is migrated
);

CREATE TABLE user (
    id            TEXT PRIMARY KEY,              -- UUID
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    tenant_id     TEXT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    token_version INTEGER NOT NULL DEFAULT 0,    -- bumped to revoke every token of the user
    created_at    TEXT NOT NULL
);

CREATE INDEX user_by_tenant ON user(tenant_id, created_at);
