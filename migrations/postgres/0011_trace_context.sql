-- W3C trace context carried across the durable hop, as SQLite's 0011: the
-- accepting span's with a user's message, the writing turn's with a response.
ALTER TABLE messages ADD COLUMN trace_context TEXT COLLATE "C";
ALTER TABLE responses ADD COLUMN trace_context TEXT COLLATE "C";
