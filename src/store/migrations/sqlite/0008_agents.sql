-- Real nodes (`shepherd server` and `shepherd agent`): what an agent reports of its node beside
-- the simulator's facts, the last diagnostic's parsed report, and the agents' credentials.
ALTER TABLE nodes ADD COLUMN driver_version  TEXT NOT NULL DEFAULT '';  -- inventory
ALTER TABLE nodes ADD COLUMN last_diagnostic TEXT NOT NULL DEFAULT '';  -- health: JSON

-- One row per enrolled node. Only a hash of the secret is kept: a copy of the database does not
-- let anyone act as a node. A revoked row stays (revoked_at > 0) so the name cannot enrol again
-- until an operator deletes the revocation.
CREATE TABLE node_credentials (
  node        TEXT    PRIMARY KEY,
  secret_hash TEXT    NOT NULL,  -- hex SHA-256 of the secret
  enrolled_at INTEGER NOT NULL,
  revoked_at  INTEGER NOT NULL DEFAULT 0
);
