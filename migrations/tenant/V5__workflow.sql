-- The team workflow (docs/WORKFLOW.md): status, assignment, labels, private notes, mentions,
-- per-member read positions, quick replies, the contact's push name and full-text search.

ALTER TABLE conversation ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'pending', 'resolved', 'snoozed'));
ALTER TABLE conversation ADD COLUMN snoozed_until INTEGER;        -- Unix ms, for 'snoozed'
ALTER TABLE conversation ADD COLUMN assignee_id TEXT;             -- a user of the tenant (master registry)
ALTER TABLE conversation ADD COLUMN push_name TEXT;               -- WhatsApp's name for the contact, latest seen
ALTER TABLE conversation ADD COLUMN name_edited INTEGER NOT NULL DEFAULT 0; -- the team set contact_name
-- Position (message rowid) of the newest incoming message: a member whose read position is
-- at or past it has nothing unread here, without counting.
ALTER TABLE conversation ADD COLUMN last_incoming_pos INTEGER NOT NULL DEFAULT 0;
UPDATE conversation SET last_incoming_pos = coalesce(
    (SELECT max(pos) FROM message WHERE conversation_id = conversation.id AND sender = 'user'), 0);
-- A name typed by the team before this migration is indistinguishable from a push name;
-- conversations opened by number with a name were the team's, but both kept the first name
-- seen: treat every existing name as the team's, so none is overwritten.
UPDATE conversation SET name_edited = 1 WHERE contact_name IS NOT NULL;

-- The list's filters: status (+ assignee) walked in activity order.
CREATE INDEX conversation_by_status ON conversation (status, activity_at, id);
CREATE INDEX conversation_by_assignee ON conversation (assignee_id, status, activity_at, id);
CREATE INDEX conversation_snoozed ON conversation (snoozed_until) WHERE status = 'snoozed';

CREATE TABLE label (
    id         TEXT PRIMARY KEY,                                  -- UUID
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    color      TEXT NOT NULL CHECK (color GLOB '#[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),
    created_at INTEGER NOT NULL
);

CREATE TABLE conversation_label (
    conversation_id TEXT NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    label_id        TEXT NOT NULL REFERENCES label (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, label_id)
) WITHOUT ROWID;
CREATE INDEX conversation_label_by_label ON conversation_label (label_id, conversation_id);

-- A private note is a message of the team's that never goes to WhatsApp.
ALTER TABLE message ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
-- Incoming messages of a conversation in history order: a member's unread count is a count
-- of this index's entries past their read position, without reading the messages.
CREATE INDEX message_incoming ON message (conversation_id) WHERE sender = 'user';

-- Each member's read position (message rowid) per conversation.
CREATE TABLE read_position (
    conversation_id TEXT NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    read_pos        INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
-- Where a member without a position of their own in a conversation starts: the newest
-- message when they joined the team, so a new member does not find the whole history unread.
CREATE TABLE member (
    user_id   TEXT PRIMARY KEY,
    read_from INTEGER NOT NULL
) WITHOUT ROWID;
-- Members from before this migration start at the newest message now: what came before does
-- not all turn unread for everyone.
INSERT INTO tenant_meta (key, value) SELECT 'read_since', coalesce(max(pos), 0) FROM message;

-- A member's notifications (mentions in notes).
CREATE TABLE notification (
    id              TEXT PRIMARY KEY,                             -- UUID v7: time-ordered
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('mention')),
    conversation_id TEXT NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    message_id      TEXT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    author_id       TEXT,
    created_at      INTEGER NOT NULL,
    read_at         INTEGER
);
CREATE INDEX notification_by_user ON notification (user_id, id);

CREATE TABLE canned_response (
    id         TEXT PRIMARY KEY,                                  -- UUID
    short_code TEXT NOT NULL UNIQUE,
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Events meant for one member only (mentions, their own read state); NULL: the whole team.
ALTER TABLE event ADD COLUMN audience TEXT;

-- Full-text search over every message and note: trigram, so substrings match in any script
-- (docs/WORKFLOW.md). External content: the text is stored once, in `message`.
CREATE VIRTUAL TABLE message_fts USING fts5 (
    content, content = 'message', content_rowid = 'pos', tokenize = 'trigram'
);
CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN
    INSERT INTO message_fts (rowid, content) VALUES (new.pos, new.content);
END;
CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN
    INSERT INTO message_fts (message_fts, rowid, content) VALUES ('delete', old.pos, old.content);
END;
CREATE TRIGGER message_fts_update AFTER UPDATE OF content ON message BEGIN
    INSERT INTO message_fts (message_fts, rowid, content) VALUES ('delete', old.pos, old.content);
    INSERT INTO message_fts (rowid, content) VALUES (new.pos, new.content);
END;
INSERT INTO message_fts (message_fts) VALUES ('rebuild');
