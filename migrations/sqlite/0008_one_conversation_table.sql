-- Each fact stored once: the conversation is one table, `messages`.
--
-- A user's message is one row from the moment it is accepted: its text, its
-- de-duplication key (platform_id, platform_message_id) and its handling
-- state. An answer, error or notice is one row whose text the delivery log
-- (`responses`) refers to by `message_id`; the log keeps seq, targets and
-- that reference, no copy of the text. A row is in its session's history when
-- `history_pos` is set (a user's message from the start of its turn, so the
-- history is in the order the agent saw it); `!read`, the web and agents read
-- the history in `history_pos` order.
--
-- Existing data is kept: accepted messages keep their ids (schedule runs,
-- webhook calls and responses refer to them), history entries follow them,
-- and each response's text is the history entry it was written with, or a
-- row of its own. An answered message's text stays in its history entry
-- (an interrupted one keeps its own, for `!retry`).

CREATE TABLE conversation (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The session whose history holds it, or whose turn it waits for; NULL for
    -- DISPATCH, messages not yet routed, and rows kept only for delivery or
    -- de-duplication.
    session_name        TEXT,
    -- Position in the session's history; NULL when not (or not yet) in it.
    history_pos         INTEGER,
    role                TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'error', 'notice')),
    author              TEXT NOT NULL,
    text                TEXT NOT NULL,
    -- Where a user's message came from, and its de-duplication key.
    platform_id         TEXT,
    channel_id          TEXT,
    platform_message_id TEXT,
    -- A user's message's handling state; NULL for answers and once the
    -- intake has forgotten the message (the de-duplication window passed).
    state               TEXT
        CHECK (state IN ('pending', 'queued', 'running', 'done', 'interrupted', 'dropped')),
    applied             INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL
);

-- Where the copied ids start: history entries after the accepted messages,
-- response texts of their own after both.
CREATE TEMP TABLE id_offsets AS
SELECT (SELECT IFNULL(MAX(id), 0) FROM inbound) AS history,
       (SELECT IFNULL(MAX(id), 0) FROM inbound) + (SELECT IFNULL(MAX(id), 0) FROM messages) AS answers;

-- Accepted messages keep their ids; a finished one's text lives on in its history entry.
INSERT INTO conversation (id, session_name, history_pos, role, author, text, platform_id, channel_id,
                          platform_message_id, state, applied, created_at)
SELECT id, CASE WHEN state IN ('done', 'dropped') THEN NULL ELSE session_name END, NULL, 'user', sender,
       CASE WHEN state IN ('done', 'dropped') THEN '' ELSE text END,
       platform_id, channel_id, platform_message_id, state, applied, received_at
FROM inbound;

-- History entries after them, in their order.
INSERT INTO conversation (id, session_name, history_pos, role, author, text, platform_id, channel_id,
                          platform_message_id, state, applied, created_at)
SELECT m.id + (SELECT history FROM id_offsets), m.session_name,
       ROW_NUMBER() OVER (PARTITION BY m.session_name ORDER BY m.id),
       m.role, m.author, m.text, m.platform_id, m.channel_id, NULL, NULL, 0, m.created_at
FROM messages m;

-- The delivery log refers to the text: the history entry written with the
-- response (same session, text and time), else a row of its own.
DROP TRIGGER response_finishes_tracked;
ALTER TABLE responses ADD COLUMN message_id INTEGER;
UPDATE responses SET message_id = (
    SELECT m.id + (SELECT history FROM id_offsets) FROM messages m
    WHERE m.session_name = responses.session_name AND m.role <> 'user'
      AND m.text = responses.text AND m.created_at = responses.created_at
    ORDER BY m.id LIMIT 1);
INSERT INTO conversation (id, session_name, history_pos, role, author, text, created_at)
SELECT r.seq + (SELECT answers FROM id_offsets), NULL, NULL,
       CASE r.kind WHEN 'complete' THEN 'assistant' WHEN 'error' THEN 'error' ELSE 'notice' END,
       COALESCE(r.session_name, 'gorp'), r.text, r.created_at
FROM responses r WHERE r.message_id IS NULL;
UPDATE responses SET message_id = seq + (SELECT answers FROM id_offsets) WHERE message_id IS NULL;
DROP TABLE id_offsets;
ALTER TABLE responses DROP COLUMN text;
-- Compaction keeps the answers webhook callers may still poll for.
CREATE INDEX hook_calls_by_response ON hook_calls (response_seq);

DROP TRIGGER schedule_run_started;
DROP TABLE inbound;
DROP TABLE messages;
ALTER TABLE conversation RENAME TO messages;

-- The de-duplication key (answers and tell/broadcast messages have none).
CREATE UNIQUE INDEX messages_by_platform_id ON messages (platform_id, platform_message_id)
WHERE platform_message_id IS NOT NULL;
-- A session's history in order. Only history rows and messages waiting for
-- their turn (found through their state) have a session.
CREATE INDEX messages_by_session ON messages (session_name, history_pos) WHERE history_pos IS NOT NULL;
-- The intake's queue.
CREATE INDEX messages_by_state ON messages (state, id) WHERE state IS NOT NULL;

CREATE TRIGGER schedule_run_started AFTER UPDATE OF state ON messages
WHEN NEW.state = 'running' AND NEW.platform_id = 'schedule'
BEGIN
    UPDATE schedule_runs SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), outcome = 'running'
    WHERE inbound_id = NEW.id;
END;

-- A response that finishes a scheduled or webhook message records the outcome.
CREATE TRIGGER response_finishes_tracked AFTER INSERT ON responses
WHEN NEW.inbound_id IS NOT NULL
BEGIN
    UPDATE schedule_runs SET
        ended_at = NEW.created_at,
        outcome = CASE
            WHEN NEW.kind = 'complete' THEN 'ok'
            WHEN NEW.kind = 'error' THEN 'failed'
            WHEN (SELECT state FROM messages WHERE id = NEW.inbound_id) = 'interrupted' THEN 'interrupted'
            ELSE 'cancelled' END,
        answer_chars = CASE WHEN NEW.kind = 'complete'
            THEN (SELECT length(text) FROM messages WHERE id = NEW.message_id) END,
        error = CASE WHEN NEW.kind <> 'complete'
            THEN (SELECT substr(text, 1, 1000) FROM messages WHERE id = NEW.message_id) END
    WHERE inbound_id = NEW.inbound_id;
    UPDATE schedules SET failures = CASE NEW.kind WHEN 'complete' THEN 0 WHEN 'error' THEN failures + 1 ELSE failures END
    WHERE id = (SELECT schedule_id FROM schedule_runs WHERE inbound_id = NEW.inbound_id);
    UPDATE hook_calls SET response_seq = NEW.seq WHERE inbound_id = NEW.inbound_id;
END;
