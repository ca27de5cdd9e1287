-- Conversations, messages and the durable event log of one tenant.
-- Times are Unix milliseconds (UTC).

CREATE TABLE conversation (
    id              TEXT PRIMARY KEY,                 -- UUID
    contact_number  TEXT NOT NULL UNIQUE,             -- E.164, '+' and digits: one contact, one conversation
    contact_name    TEXT,
    platform        TEXT NOT NULL DEFAULT 'whatsapp',
    last_message    TEXT,
    last_message_at INTEGER,
    unread_count    INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    activity_at     INTEGER NOT NULL,                 -- last message, else creation: the list order
    created_at      INTEGER NOT NULL
);
-- Newest activity first, keyset-paginated on (activity_at, id).
CREATE INDEX conversation_by_activity ON conversation (activity_at, id);

CREATE TABLE message (
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
-- History of one conversation in insertion (rowid) order; keyset-paginated on rowid.
CREATE INDEX message_by_conversation ON message (conversation_id);
-- The outbox: messages accepted but not yet handed to WhatsApp.
CREATE INDEX message_pending ON message (status) WHERE status = 'pending';
-- Unread incoming messages, for mark-read.
CREATE INDEX message_unread ON message (conversation_id) WHERE is_read = 0 AND sender = 'user';

-- Every realtime event, written in the same transaction as the change it reports.
-- AUTOINCREMENT: a seq is never reused, even after the newest rows are pruned.
CREATE TABLE event (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,                         -- JSON: the event without seq/type/createdAt
    created_at INTEGER NOT NULL
);
