-- One row per controller start on this store. Its number goes into every event key the controller
-- makes up itself (heartbeat losses, API commands), so keys stay unique across restarts: a
-- restarted controller's first heartbeat loss is never taken for a repeat of an old one. (A timer's
-- key is its operation id, unique by itself.)
CREATE TABLE controller_incarnations (
  number     INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at INTEGER NOT NULL
);
