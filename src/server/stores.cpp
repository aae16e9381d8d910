#include "server/stores.hpp"

#include <sys/stat.h>

#include "store/mariadb_lease.hpp"
#include "store/mariadb_store.hpp"
#include "store/sqlite_credentials.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd::server {

void override_store(Config& config, const std::string& store) {
  if (store.empty()) return;
  if (store.rfind("mariadb://", 0) == 0) {
    config.store_url = store;
    config.store_path.clear();
  } else {
    config.store_path = store;
    config.store_url.clear();
  }
}

namespace {

RetentionPolicy retention(const Config& config) {
  RetentionPolicy r;
  r.events_max_age = config.events_max_age;
  r.events_max_rows = config.events_max_rows;
  r.timeline_max_age = config.timeline_max_age;
  r.timeline_max_rows = config.timeline_max_rows;
  return r;
}

Stores open_sqlite(const Config& config, const std::string& db, const Clock& clock) {
  Stores s;
  SqliteOptions writes;
  writes.retention = retention(config);
  // Opened first: it migrates the file. A second server on the file fails here or at its first
  // write (SQLite's lock); SQLite is for one controller.
  auto writer = std::make_shared<std::unique_ptr<Store>>(std::make_unique<SqliteStore>(db, writes));
  SqliteOptions reads;
  reads.retention.interval_ms = 0;  // the writer's store prunes
  reads.checkpoint_in_background = false;
  s.reader = std::make_unique<SqliteStore>(db, reads);
  s.credentials = std::make_unique<SqliteCredentials>(db);
  s.open_leadership = [&clock](const ControllerIdentity& me) {
    return std::unique_ptr<Leadership>(std::make_unique<SoleLeadership>(me, clock));
  };
  s.open_writer = [writer](std::int64_t) { return std::move(*writer); };
  // A database made before the server's umask (or by hand) is made private too: it holds jobs'
  // environments and the credentials' hashes.
  for (const char* suffix : {"", "-wal", "-shm"}) ::chmod((db + suffix).c_str(), 0600);
  s.description = db;
  return s;
}

Stores open_mariadb(const Config& config) {
  MariadbOptions options;
  try {
    options.endpoint = mariadb::parse_url(config.store_url);
  } catch (const StoreError& e) {
    throw ConfigError(std::string("store.url: ") + e.what());
  }
  if (!(config.controller_lease_ttl >= 1))
    throw ConfigError("controller.lease_ttl: must be at least 1 second");
  options.endpoint.password = config.store_password;
  options.tables = {config.store_table_jobs, config.store_table_tasks, config.store_table_nodes};
  options.retention.interval_ms = 0;  // only the leader's writer prunes
  Stores s;
  s.reader = std::make_unique<MariadbStore>(options);  // migrates the database first
  s.credentials = std::make_unique<MariadbCredentials>(options.endpoint);
  s.open_leadership = [endpoint = options.endpoint,
                       ttl = seconds(config.controller_lease_ttl)](const ControllerIdentity& me) {
    return std::unique_ptr<Leadership>(std::make_unique<MariadbLease>(
        MariadbLeaseOptions{endpoint, me, std::chrono::milliseconds(ttl)}));
  };
  s.open_writer = [options, retention = retention(config)](std::int64_t epoch) {
    MariadbOptions writer = options;
    writer.fence_epoch = epoch;
    writer.retention = retention;
    return std::unique_ptr<Store>(std::make_unique<MariadbStore>(writer));
  };
  s.description = options.endpoint.describe();
  return s;
}

}  // namespace

Stores open_stores(const Config& config, const std::string& default_sqlite, const Clock& clock) {
  if (!config.store_url.empty()) return open_mariadb(config);
  return open_sqlite(config, config.store_path.empty() ? default_sqlite : config.store_path, clock);
}

}  // namespace shepherd::server
