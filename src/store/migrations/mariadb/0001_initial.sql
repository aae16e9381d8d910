-- Shepherd's durable state (MariaDB / MySQL, InnoDB). The same records as the SQLite schema
-- (docs/data-model.md), in a database it may share with the operator's own tables (seed 004's
-- devops_platform): the recovery's tables are named by settings ({jobs}, {tasks}: seed 001's
-- JOB_TABLE_NAME, TASK_TABLE_NAME), the node inventory is seed 004's `nodes` ({nodes}:
-- NODE_TABLE_NAME) with the health state beside it, and the runtime's own tables carry the prefix
-- shepherd_. Ids compare byte for byte (utf8mb4_bin), as in SQLite. Times are milliseconds since
-- the epoch. `version` is the optimistic-concurrency counter: 1 on insert, +n on each update.
--
-- Rules for a MariaDB migration (the store checks them): either only CREATE TABLE statements,
-- which are dropped again if a later one fails, or one single statement, which MariaDB applies
-- whole or not at all. Statements end with ';' at the end of a line.

CREATE TABLE {jobs} (
  id                     VARCHAR(255) NOT NULL PRIMARY KEY,
  cluster_name           VARCHAR(255) NOT NULL,
  job_timestamp          BIGINT       NOT NULL,
  num_nodes              INT          NOT NULL,
  assigned_nodes         MEDIUMTEXT   NOT NULL,  -- JSON array of node names, by node index
  submitted_instance_ids MEDIUMTEXT   NOT NULL,  -- JSON array
  submitted_task_ids     MEDIUMTEXT   NOT NULL,  -- JSON array
  retry                  INT          NOT NULL,
  status                 VARCHAR(64)  NOT NULL,
  task_definition        MEDIUMTEXT   NOT NULL,  -- JSON object
  reason                 TEXT         NOT NULL,
  recovery_started_at    BIGINT       NOT NULL,
  recovery_cause         VARCHAR(64)  NOT NULL,
  created_at             BIGINT       NOT NULL,
  updated_at             BIGINT       NOT NULL,
  version                BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- No deferred foreign keys in InnoDB: the store writes a batch's jobs before its tasks instead.
CREATE TABLE {tasks} (
  id                       VARCHAR(255) NOT NULL PRIMARY KEY,
  node_name                VARCHAR(255) NOT NULL,
  node_index               INT          NOT NULL,
  job_id                   VARCHAR(255) NOT NULL,
  job_timestamp            BIGINT       NOT NULL,
  job_num_nodes            INT          NOT NULL,
  task_definition_ref      VARCHAR(512) NOT NULL,
  task_definition_name     VARCHAR(255) NOT NULL,
  task_definition_revision INT          NOT NULL,
  cluster_name             VARCHAR(255) NOT NULL,
  instance_id              VARCHAR(255) NOT NULL,
  instance_ref             VARCHAR(512) NOT NULL,
  retry                    INT          NOT NULL,
  status                   VARCHAR(64)  NOT NULL,
  started                  TINYINT      NOT NULL,
  stop_requested           TINYINT      NOT NULL,
  exit_code                INT,  -- NULL: not exited
  reason                   TEXT         NOT NULL,
  created_at               BIGINT       NOT NULL,
  updated_at               BIGINT       NOT NULL,
  version                  BIGINT       NOT NULL,
  KEY tasks_by_job (job_id),
  FOREIGN KEY (job_id) REFERENCES {jobs} (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Seed 004's `nodes` (id, registered_at, ip, node_type, gpu_type, is_locked) keyed for Shepherd by
-- the node's name, with the recovery's health half beside the inventory half; each half has its
-- own version (inventory_version, version), so delivery's and recovery's writes never conflict.
CREATE TABLE {nodes} (
  id                BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name              VARCHAR(255) NOT NULL,
  -- inventory
  instance_ref      VARCHAR(512) NOT NULL,
  cluster_name      VARCHAR(255) NOT NULL,
  ip                VARCHAR(64)  NOT NULL,
  ibdev             VARCHAR(255) NOT NULL,
  gpus              INT          NOT NULL,
  node_type         VARCHAR(255) NOT NULL DEFAULT '',
  gpu_type          VARCHAR(255) NOT NULL DEFAULT '',
  node_pool         VARCHAR(255) NOT NULL DEFAULT '',
  is_locked         TINYINT      NOT NULL DEFAULT 0,
  registered_at     BIGINT       NOT NULL DEFAULT 0,
  driver_version    VARCHAR(255) NOT NULL DEFAULT '',
  created_at        BIGINT       NOT NULL,
  inventory_version BIGINT       NOT NULL DEFAULT 1,
  -- health
  instance_id       VARCHAR(255) NOT NULL,
  status            VARCHAR(64)  NOT NULL,
  boot_id           VARCHAR(255) NOT NULL,
  job_id            VARCHAR(255) NOT NULL,  -- '' when free
  operation_id      VARCHAR(512) NOT NULL,  -- an event key and a suffix
  deadline_at       BIGINT       NOT NULL,
  needs_diagnostic  TINYINT      NOT NULL,
  last_verdict      VARCHAR(64)  NOT NULL,
  last_diagnostic   MEDIUMTEXT   NOT NULL,  -- JSON: the last diagnostic's parsed report
  reason            TEXT         NOT NULL,
  updated_at        BIGINT       NOT NULL,
  version           BIGINT       NOT NULL,
  UNIQUE KEY nodes_by_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every event key seen, for deduplication; repeats only bump `duplicates`.
CREATE TABLE shepherd_events (
  `key`      VARCHAR(512) NOT NULL PRIMARY KEY,
  kind       VARCHAR(64)  NOT NULL,
  at         BIGINT       NOT NULL,
  duplicates BIGINT       NOT NULL DEFAULT 0,
  KEY shepherd_events_by_at (at),
  KEY shepherd_events_with_duplicates (duplicates)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE shepherd_timeline (
  seq         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at          BIGINT       NOT NULL,
  entity      VARCHAR(16)  NOT NULL,  -- 'job', 'task' or 'node'
  id          VARCHAR(255) NOT NULL,
  from_status VARCHAR(64)  NOT NULL,  -- '' when the record was created
  to_status   VARCHAR(64)  NOT NULL,
  reason      TEXT         NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Actions still owed, written with the decision that asked for them (transactional outbox); `seq`
-- keeps commit order, so a stop never overtakes its start. A delivered action is deleted; a
-- permanent failure stays as a dead letter (dead_at set) until an operator revives it.
CREATE TABLE shepherd_outbox (
  seq             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id              VARCHAR(512) NOT NULL,  -- an event key and a suffix
  kind            VARCHAR(64)  NOT NULL,
  node            VARCHAR(255) NOT NULL,
  job_id          VARCHAR(255) NOT NULL,
  task_id         VARCHAR(255) NOT NULL,
  payload         MEDIUMTEXT   NOT NULL,  -- JSON: the body its receiver gets
  created_at      BIGINT       NOT NULL,
  attempts        INT          NOT NULL DEFAULT 0,
  last_error      TEXT         NOT NULL,
  next_attempt_at BIGINT       NOT NULL,
  dead_at         BIGINT,  -- NULL while the action is owed
  UNIQUE KEY shepherd_outbox_by_id (id),
  KEY shepherd_outbox_dead (dead_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per controller start: its number goes into every event key the controller makes up.
CREATE TABLE shepherd_controller_incarnations (
  number     BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  started_at BIGINT NOT NULL
) ENGINE = InnoDB;

-- One row per enrolled node; only a hash of the secret. A revoked row stays (revoked_at > 0).
CREATE TABLE shepherd_node_credentials (
  node        VARCHAR(255) NOT NULL PRIMARY KEY,
  secret_hash CHAR(64)     NOT NULL,  -- hex SHA-256 of the secret
  enrolled_at BIGINT       NOT NULL,
  revoked_at  BIGINT       NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
