-- When the tenant's earliest snoozed conversation is due to reopen (Unix ms); NULL when none
-- is snoozed. Read at start-up, so a snooze's wake-up survives a restart without opening
-- every tenant file (the tenant file stays the truth: the waker re-reads it).
ALTER TABLE tenant ADD COLUMN wake_at INTEGER;
CREATE INDEX tenant_wake ON tenant (wake_at) WHERE wake_at IS NOT NULL;
