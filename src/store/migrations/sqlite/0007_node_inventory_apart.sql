-- A node's inventory facts (seed 004's `nodes`: node_type, gpu_type, is_locked, node_pool_id, and
-- ip, ibdev, gpus) are versioned apart from its health state (status, job, operation, verdict):
-- delivery writes the first, recovery the second, and neither's write conflicts with the other's.
-- `version` stays the health state's version.
ALTER TABLE nodes ADD COLUMN node_type         TEXT    NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN gpu_type          TEXT    NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN node_pool         TEXT    NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN locked            INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN registered_at     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN inventory_version INTEGER NOT NULL DEFAULT 1;
