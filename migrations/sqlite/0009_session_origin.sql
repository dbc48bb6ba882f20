-- The platform of the channel whose `!create` made a session (NULL: made by an
-- operator through the Control API or the web admin, or before this column).
-- The `own-platform` DISPATCH scope lets that platform's channels reach it.
ALTER TABLE sessions ADD COLUMN created_on TEXT;
