-- The rowid of the newest message, kept beside the owner in tenant_meta (a page every open
-- reads anyway), so a conversation list's first page can record its snapshot without
-- reading the message table. Maintained by store::insert_message.
INSERT INTO tenant_meta (key, value)
SELECT 'newest_message', coalesce(max(rowid), 0) FROM message;
