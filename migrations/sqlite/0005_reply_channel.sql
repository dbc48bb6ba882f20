-- The channel of the message a response answers. A platform message id means
-- something only in its own channel, so a response shows as a reply only
-- there. Rows from before this migration keep in_reply_to without a channel
-- and are delivered without a reply reference.
ALTER TABLE responses ADD COLUMN reply_platform TEXT;
ALTER TABLE responses ADD COLUMN reply_channel TEXT;
