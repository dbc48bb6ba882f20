-- Files carried by messages and responses.
--
-- The bytes live in the data directory under `files/<aa>/<sha256>` (content
-- addressed, so equal files are stored once); this table says which message
-- (a user's message or a response's text row) carries which file, under
-- which name and media type. A row goes when its message goes (cascade), and
-- garbage collection removes the files no row names any more.
CREATE TABLE attachments (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    media_type TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;

CREATE INDEX attachments_by_file ON attachments (sha256);
