-- `message` gets an explicit integer key. Without one its rowids are implicit, and a VACUUM
-- (run by `aezen tenant compact`, or by a restore) may renumber them, while history cursors,
-- the conversation list's snapshot and tenant_meta's 'newest_message' all hold rowids.
-- `pos` is an alias of the rowid: every query that says `rowid` keeps working, and the values
-- are carried over unchanged.
CREATE TABLE message_keyed (
    pos             INTEGER PRIMARY KEY,              -- position in the history: the rowid, kept by VACUUM
    id              TEXT NOT NULL UNIQUE,             -- UUID (AEZEN's id)
    conversation_id TEXT NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    content         TEXT NOT NULL,
    sender          TEXT NOT NULL CHECK (sender IN ('agent', 'user')),
    type            TEXT NOT NULL DEFAULT 'text',
    is_read         INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'read', 'failed')),
    wa_id           TEXT UNIQUE,                      -- WhatsApp's message id: redelivery is a no-op
    author_id       TEXT,                             -- the user who sent an agent message
    error           TEXT,                             -- why a message failed
    created_at      INTEGER NOT NULL
);
INSERT INTO message_keyed (pos, id, conversation_id, content, sender, type, is_read, status, wa_id, author_id, error, created_at)
SELECT rowid, id, conversation_id, content, sender, type, is_read, status, wa_id, author_id, error, created_at
FROM message;
DROP TABLE message;
ALTER TABLE message_keyed RENAME TO message;
CREATE INDEX message_by_conversation ON message (conversation_id);
CREATE INDEX message_pending ON message (status) WHERE status = 'pending';
CREATE INDEX message_unread ON message (conversation_id) WHERE is_read = 0 AND sender = 'user';
