-- Retention (sqlite_retention.cpp) removes the oldest idempotency keys first: by age from the
-- newest key, and beyond a row count. This index finds both without scanning every key.
CREATE INDEX events_by_at ON events (at);
