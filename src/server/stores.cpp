#include "server/stores.hpp"

#include <sys/stat.h>

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

Stores open_sqlite(const Config& config, const std::string& db) {
  Stores s;
  SqliteOptions writes;
  writes.retention = retention(config);
  s.writer = std::make_unique<SqliteStore>(db, writes);  // migrates the file first
  SqliteOptions reads;
  reads.retention.interval_ms = 0;  // the writer's store prunes
  reads.checkpoint_in_background = false;
  s.reader = std::make_unique<SqliteStore>(db, reads);
  s.credentials = std::make_unique<SqliteCredentials>(db);
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
  options.endpoint.password = config.store_password;
  options.tables = {config.store_table_jobs, config.store_table_tasks, config.store_table_nodes};
  options.retention.interval_ms = 0;  // only the writer prunes
  Stores s;
  MariadbOptions writer = options;
  writer.writer_lock = true;  // a second controller on the database is refused
  writer.retention = retention(config);
  s.writer = std::make_unique<MariadbStore>(writer);  // migrates the database first
  s.reader = std::make_unique<MariadbStore>(options);
  s.credentials = std::make_unique<MariadbCredentials>(options.endpoint);
  s.description = options.endpoint.describe();
  return s;
}

}  // namespace

Stores open_stores(const Config& config, const std::string& default_sqlite) {
  if (!config.store_url.empty()) return open_mariadb(config);
  return open_sqlite(config, config.store_path.empty() ? default_sqlite : config.store_path);
}

}  // namespace shepherd::server
