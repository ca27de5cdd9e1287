-- Each tenant file says whose it is, so a file that is moved, restored or registered by
-- hand can be checked against the registry before it is served.
CREATE TABLE tenant_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
