-- Media (docs/MEDIA.md): photos, voice notes, videos, documents and stickers, in and out.
-- The bytes live in this file, so a tenant stays one portable file.

-- Each distinct content once, by its SHA-256: the same photo in two messages is stored once.
-- `id` is an explicit integer key (kept by VACUUM): the incremental blob reads address it.
CREATE TABLE media_blob (
    id     INTEGER PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE,
    size   INTEGER NOT NULL,
    bytes  BLOB NOT NULL
);

-- One media item per message.
CREATE TABLE media (
    id           TEXT PRIMARY KEY,                      -- UUID
    message_id   TEXT NOT NULL UNIQUE REFERENCES message (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('image', 'audio', 'video', 'document', 'sticker')),
    mime_type    TEXT NOT NULL,
    file_name    TEXT,
    size         INTEGER,                               -- bytes, as stored (or as declared)
    width        INTEGER,
    height       INTEGER,
    duration_ms  INTEGER,
    voice        INTEGER NOT NULL DEFAULT 0,
    -- ready: the bytes are here; pending: being fetched; failed: the last fetch failed
    -- (retried at retry_at); unavailable: not fetched, for good (reason says why).
    status       TEXT NOT NULL CHECK (status IN ('ready', 'pending', 'failed', 'unavailable')),
    reason       TEXT,
    blob_id      INTEGER REFERENCES media_blob (id),
    thumbnail    BLOB,                                  -- the JPEG preview WhatsApp sent
    source       TEXT,                                  -- JSON: how the backend fetches it again
    attempts     INTEGER NOT NULL DEFAULT 0,
    retry_at     INTEGER,                               -- Unix ms
    created_at   INTEGER NOT NULL
);
CREATE INDEX media_by_blob ON media (blob_id) WHERE blob_id IS NOT NULL;
-- What the fetcher has to do: pending items, and failed ones in retry order.
CREATE INDEX media_to_fetch ON media (retry_at) WHERE status IN ('pending', 'failed');

-- A blob no item refers to any more goes with its last item.
CREATE TRIGGER media_blob_release AFTER DELETE ON media
WHEN old.blob_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM media WHERE blob_id = old.blob_id)
BEGIN
    DELETE FROM media_blob WHERE id = old.blob_id;
END;

-- The key media links of this tenant are signed with (src/media/link.rs): it travels with the
-- file, so a link opens nothing in any other tenant, and a restored file keeps its links.
INSERT INTO tenant_meta (key, value) VALUES ('media_link_key', lower(hex(randomblob(32))));
