-- The inbound message a response finishes (a turn's answer, DISPATCH's reply,
-- a notice about an interrupted or dropped message); NULL for other notices.
ALTER TABLE responses ADD COLUMN inbound_id INTEGER;

-- A scheduled prompt: a cron expression (`cron`, in `timezone`) or one time
-- (`once_at`), publishing `prompt` to its session at each slot. `next_slot` is
-- the next time it fires (NULL once a one-shot has fired); a slot is claimed
-- by inserting its run, so no slot fires twice.
CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_name TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    spec         TEXT NOT NULL,
    cron         TEXT,
    once_at      TEXT,
    timezone     TEXT NOT NULL,
    prompt       TEXT NOT NULL,
    catch_up     TEXT NOT NULL CHECK (catch_up IN ('once', 'skip')),
    paused       INTEGER NOT NULL DEFAULT 0,
    next_slot    TEXT,
    failures     INTEGER NOT NULL DEFAULT 0,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    CHECK ((cron IS NULL) <> (once_at IS NULL))
);
CREATE INDEX schedules_by_session ON schedules (session_name, id);

-- Each time a schedule fired (or a slot was skipped), with its turn's times
-- and outcome. The outcome is written by the triggers below in the same
-- transaction as the turn's start and end, so a run is never marked done
-- before its turn ended.
CREATE TABLE schedule_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    slot        TEXT NOT NULL,
    manual      INTEGER NOT NULL DEFAULT 0,
    fired_at    TEXT NOT NULL,
    inbound_id  INTEGER UNIQUE,
    started_at  TEXT,
    ended_at    TEXT,
    outcome     TEXT NOT NULL
        CHECK (outcome IN ('queued', 'running', 'ok', 'failed', 'cancelled', 'interrupted', 'skipped')),
    answer_chars INTEGER,
    error       TEXT
);
CREATE UNIQUE INDEX schedule_runs_one_per_slot ON schedule_runs (schedule_id, slot) WHERE manual = 0;
CREATE INDEX schedule_runs_by_schedule ON schedule_runs (schedule_id, id);

CREATE TRIGGER schedule_run_started AFTER UPDATE OF state ON inbound
WHEN NEW.state = 'running' AND NEW.platform_id = 'schedule'
BEGIN
    UPDATE schedule_runs SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), outcome = 'running'
    WHERE inbound_id = NEW.id;
END;

-- A webhook: one per session, with its secret (kept to verify HMAC
-- signatures; shown once when created or rotated), an optional template for
-- JSON bodies and a rate limit.
CREATE TABLE hooks (
    session_name   TEXT PRIMARY KEY NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    secret         TEXT NOT NULL,
    template       TEXT,
    per_minute     INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    rotated_at     TEXT
);

-- Each accepted webhook call, for polling its answer.
CREATE TABLE hook_calls (
    inbound_id   INTEGER PRIMARY KEY NOT NULL,
    session_name TEXT NOT NULL,
    response_seq INTEGER
);

-- A response that finishes a scheduled or webhook message records the outcome.
CREATE TRIGGER response_finishes_tracked AFTER INSERT ON responses
WHEN NEW.inbound_id IS NOT NULL
BEGIN
    UPDATE schedule_runs SET
        ended_at = NEW.created_at,
        outcome = CASE
            WHEN NEW.kind = 'complete' THEN 'ok'
            WHEN NEW.kind = 'error' THEN 'failed'
            WHEN (SELECT state FROM inbound WHERE id = NEW.inbound_id) = 'interrupted' THEN 'interrupted'
            ELSE 'cancelled' END,
        answer_chars = CASE WHEN NEW.kind = 'complete' THEN length(NEW.text) END,
        error = CASE WHEN NEW.kind <> 'complete' THEN substr(NEW.text, 1, 1000) END
    WHERE inbound_id = NEW.inbound_id;
    UPDATE schedules SET failures = CASE NEW.kind WHEN 'complete' THEN 0 WHEN 'error' THEN failures + 1 ELSE failures END
    WHERE id = (SELECT schedule_id FROM schedule_runs WHERE inbound_id = NEW.inbound_id);
    UPDATE hook_calls SET response_seq = NEW.seq WHERE inbound_id = NEW.inbound_id;
END;
