-- Several controllers on one database (docs/architecture.md, "Several controllers"). One of them
-- leads: it holds the lease below and is the only one that runs the engine and the dispatcher.
-- Times are milliseconds since the epoch on the database's clock, which every controller shares.

-- One row (id 1), made by the first controller that campaigns. `epoch` grows by one at each new
-- leader: every write of the leader's store checks it under a shared lock, so a deposed leader
-- that wakes up late writes nothing. `lease_session` and `writer_session` are the leader's
-- connections (its lease's and its store's): a controller that takes over a lapsed lease ends them.
CREATE TABLE shepherd_leader (
  id             TINYINT NOT NULL PRIMARY KEY,
  epoch          BIGINT NOT NULL DEFAULT 0,
  holder         VARCHAR(255) NOT NULL DEFAULT '',
  url            VARCHAR(1024) NOT NULL DEFAULT '',
  lease_session  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  writer_session BIGINT UNSIGNED NOT NULL DEFAULT 0,
  acquired_at    BIGINT NOT NULL DEFAULT 0,
  renewed_at     BIGINT NOT NULL DEFAULT 0,
  expires_at     BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every controller that has run on the database, leader or standby, with when it was last seen
-- (each one writes its row at every lease renewal or campaign): GET /api/cluster.
CREATE TABLE shepherd_controllers (
  name       VARCHAR(255) NOT NULL PRIMARY KEY,
  url        VARCHAR(1024) NOT NULL,
  version    VARCHAR(64) NOT NULL,
  started_at BIGINT NOT NULL,
  seen_at    BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
