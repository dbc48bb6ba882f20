-- Browser login sessions of the web adapter, so a restart of gorpd does not
-- log everyone out. Only a SHA-256 of the cookie is stored.
CREATE TABLE web_logins (
    id_sha256  TEXT PRIMARY KEY NOT NULL,
    csrf       TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
