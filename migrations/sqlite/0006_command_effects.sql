-- A DISPATCH command whose effect was committed. The effect's write sets it in
-- the same transaction, so a command that was applied before a crash is never
-- run again: at the next start it only gets its reply.
ALTER TABLE inbound ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
