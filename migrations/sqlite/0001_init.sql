-- gorp schema, SQLite. One table per concept; forward-only migrations.

-- A session: one persistent agent conversation in its own workspace.
CREATE TABLE sessions (
    name             TEXT PRIMARY KEY NOT NULL,
    workspace_dir    TEXT NOT NULL,
    backend          TEXT NOT NULL,
    agent_session_id TEXT,
    created_at       TEXT NOT NULL
);

-- Which session a platform channel talks to; a channel has at most one.
CREATE TABLE channel_bindings (
    platform_id  TEXT NOT NULL,
    channel_id   TEXT NOT NULL,
    session_name TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    bound_at     TEXT NOT NULL,
    PRIMARY KEY (platform_id, channel_id)
);
CREATE INDEX channel_bindings_by_session ON channel_bindings (session_name);

-- Every accepted inbound message (published by a gateway, or queued by tell/broadcast),
-- with its handling state: pending (not yet routed), queued (waiting for its session),
-- running (the agent is working on it), done, interrupted (gorpd stopped mid-turn),
-- dropped (its session was deleted first).
CREATE TABLE inbound (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    platform_id         TEXT NOT NULL,
    channel_id          TEXT NOT NULL,
    platform_message_id TEXT,
    sender              TEXT NOT NULL,
    text                TEXT NOT NULL,
    session_name        TEXT,
    state               TEXT NOT NULL
        CHECK (state IN ('pending', 'queued', 'running', 'done', 'interrupted', 'dropped')),
    received_at         TEXT NOT NULL,
    UNIQUE (platform_id, platform_message_id)
);
CREATE INDEX inbound_by_state ON inbound (state, id);

-- A session's conversation history: what users said and the final responses, in order.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_name TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'error', 'notice')),
    author       TEXT NOT NULL,
    text         TEXT NOT NULL,
    platform_id  TEXT,
    channel_id   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX messages_by_session ON messages (session_name, id);

-- The durable response log: every final response with its delivery order `seq`.
CREATE TABLE responses (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id  TEXT NOT NULL,
    session_name TEXT,
    dispatch     INTEGER NOT NULL DEFAULT 0,
    kind         TEXT NOT NULL CHECK (kind IN ('complete', 'error', 'notice')),
    text         TEXT NOT NULL,
    in_reply_to  TEXT,
    created_at   TEXT NOT NULL
);

-- The channels each response is meant for.
CREATE TABLE response_targets (
    seq         INTEGER NOT NULL REFERENCES responses (seq) ON DELETE CASCADE,
    platform_id TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    PRIMARY KEY (seq, platform_id, channel_id)
);
CREATE INDEX response_targets_by_platform ON response_targets (platform_id, seq);

-- Gateways that subscribed, with the highest seq each acknowledged.
CREATE TABLE gateways (
    gateway_id  TEXT PRIMARY KEY NOT NULL,
    platform_id TEXT NOT NULL,
    acked_seq   INTEGER NOT NULL DEFAULT 0,
    last_seen   TEXT NOT NULL
);

-- API tokens; only a SHA-256 of each secret is stored.
CREATE TABLE tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('admin', 'gateway')),
    platform_id   TEXT,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
