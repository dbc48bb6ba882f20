-- W3C trace context (`traceparent`) carried across the durable hop: a user's
-- message keeps the context of the span that accepted it, so its routing and
-- turn join the trace that began at the gateway; a response keeps the
-- context of the turn (or command) that wrote it, so its delivery and the
-- gateway's platform send join it too. NULL when trace export is off.
ALTER TABLE messages ADD COLUMN trace_context TEXT;
ALTER TABLE responses ADD COLUMN trace_context TEXT;
