-- A permanent delivery failure (a webhook's 4xx, a driver's refusal) is not retried forever: the
-- action stays in the outbox as a dead letter (dead_at set), visible and counted, and is tried
-- again only when an operator asks.
ALTER TABLE outbox ADD COLUMN dead_at INTEGER;  -- NULL while the action is owed
CREATE INDEX outbox_dead ON outbox (dead_at) WHERE dead_at IS NOT NULL;
