-- When the tenant's file was last copied by `aezen backup` (RFC 3339, UTC); NULL until its
-- first backup. `/api/metrics` shows it per tenant, so an operator can alert on stale backups.
ALTER TABLE tenant ADD COLUMN backed_up_at TEXT;
