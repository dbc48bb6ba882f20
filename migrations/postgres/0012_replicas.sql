-- Replicas: several gorpd on one Postgres. Each running gorpd registers a
-- row and renews its expiry (milliseconds since the epoch, by the database's
-- clock, so replicas' own clocks never matter); a replica whose row expired
-- is dead. A session is owned by the replica its lease names while that
-- replica is alive; otherwise any replica may take it over. A message
-- remembers the replica that accepted it, which routes it while it is
-- pending (and another replica does once that one is dead).
CREATE TABLE replicas (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    started_at TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE session_leases (
    session_name TEXT COLLATE "C" PRIMARY KEY,
    replica      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX session_leases_by_replica ON session_leases (replica);
ALTER TABLE messages ADD COLUMN replica TEXT COLLATE "C";
