-- A response that asks for (or reports the outcome of) an agent's permission
-- request carries the structured request as JSON, so replays keep the buttons.
ALTER TABLE responses ADD COLUMN permission TEXT;
