-- Shepherd's durable state (SQLite). Lists and the task definition are JSON text; statuses are the
-- seeds' names. `version` is the optimistic-concurrency counter: 1 on insert, +1 on each update.
-- Records are keyed by text ids and written far more than scanned, so they live WITHOUT ROWID
-- (one b-tree per table instead of table + primary-key index).

CREATE TABLE jobs (
  id                     TEXT    NOT NULL PRIMARY KEY,
  cluster_name           TEXT    NOT NULL,
  job_timestamp          INTEGER NOT NULL,
  num_nodes              INTEGER NOT NULL,
  assigned_nodes         TEXT    NOT NULL,  -- JSON array of node names, by node index
  submitted_instance_ids TEXT    NOT NULL,  -- JSON array
  submitted_task_ids     TEXT    NOT NULL,  -- JSON array
  retry                  INTEGER NOT NULL,
  status                 TEXT    NOT NULL,
  task_definition        TEXT    NOT NULL,  -- JSON object
  reason                 TEXT    NOT NULL,
  recovery_started_at    INTEGER NOT NULL,
  recovery_cause         TEXT    NOT NULL,
  created_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL,
  version                INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tasks (
  id                       TEXT    NOT NULL PRIMARY KEY,
  node_name                TEXT    NOT NULL,
  node_index               INTEGER NOT NULL,
  -- Deferred: a batch may write a task before its job; checked at COMMIT.
  job_id                   TEXT    NOT NULL REFERENCES jobs (id) DEFERRABLE INITIALLY DEFERRED,
  job_timestamp            INTEGER NOT NULL,
  job_num_nodes            INTEGER NOT NULL,
  task_definition_ref      TEXT    NOT NULL,
  task_definition_name     TEXT    NOT NULL,
  task_definition_revision INTEGER NOT NULL,
  cluster_name             TEXT    NOT NULL,
  instance_id              TEXT    NOT NULL,
  instance_ref             TEXT    NOT NULL,
  retry                    INTEGER NOT NULL,
  status                   TEXT    NOT NULL,
  started                  INTEGER NOT NULL,
  stop_requested           INTEGER NOT NULL,
  exit_code                INTEGER,  -- NULL: not exited
  reason                   TEXT    NOT NULL,
  created_at               INTEGER NOT NULL,
  updated_at               INTEGER NOT NULL,
  version                  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX tasks_by_job ON tasks (job_id);

CREATE TABLE nodes (
  name             TEXT    NOT NULL PRIMARY KEY,
  instance_id      TEXT    NOT NULL,
  instance_ref     TEXT    NOT NULL,
  cluster_name     TEXT    NOT NULL,
  status           TEXT    NOT NULL,
  ip               TEXT    NOT NULL,
  ibdev            TEXT    NOT NULL,
  gpus             INTEGER NOT NULL,
  boot_id          TEXT    NOT NULL,
  job_id           TEXT    NOT NULL,  -- '' when free
  operation_id     TEXT    NOT NULL,
  deadline_at      INTEGER NOT NULL,
  needs_diagnostic INTEGER NOT NULL,
  last_verdict     TEXT    NOT NULL,
  reason           TEXT    NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  version          INTEGER NOT NULL
) WITHOUT ROWID;

-- Every event key seen, for deduplication; repeats only bump `duplicates`.
CREATE TABLE events (
  key        TEXT    NOT NULL PRIMARY KEY,
  kind       TEXT    NOT NULL,
  at         INTEGER NOT NULL,
  duplicates INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Few events repeat: summing over this small index avoids scanning every event.
CREATE INDEX events_with_duplicates ON events (duplicates) WHERE duplicates > 0;

CREATE TABLE timeline (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  entity      TEXT    NOT NULL,  -- 'job', 'task' or 'node'
  id          TEXT    NOT NULL,
  from_status TEXT    NOT NULL,  -- '' when the record was created
  to_status   TEXT    NOT NULL,
  reason      TEXT    NOT NULL
);

-- Actions to carry out, written with the decision that asked for them (transactional outbox).
CREATE TABLE outbox (
  id              TEXT    NOT NULL PRIMARY KEY,
  kind            TEXT    NOT NULL,
  node            TEXT    NOT NULL,
  job_id          TEXT    NOT NULL,
  task_id         TEXT    NOT NULL,
  payload         TEXT    NOT NULL,  -- JSON
  created_at      INTEGER NOT NULL,
  status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT    NOT NULL DEFAULT '',
  next_attempt_at INTEGER NOT NULL,
  done_at         INTEGER  -- NULL until done
);

-- pending_actions: only pending rows, already in (created_at, rowid) order (a second column would
-- make SQLite sort by rowid itself).
CREATE INDEX outbox_pending ON outbox (created_at) WHERE status = 'pending';
