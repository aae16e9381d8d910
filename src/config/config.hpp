#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "domain/model.hpp"

namespace shepherd {

// Everything the server reads at start. Precedence, lowest first: these defaults, the YAML file,
// the seeds' environment name ECS_CLUSTER_NAME, SHEPHERD_* variables. The health check and the
// reboot command are each agent's settings (`shepherd agent --help`); setting them here is an
// error that says so.
struct Config {
  std::string cluster_name = "shepherd";
  Policy policy;
  std::string store_path;  // the SQLite file ("": the server directory's shepherd.db)
  // The shared store: "mariadb://USER@HOST[:PORT]/DATABASE[?socket=PATH]" ("": SQLite). Its
  // password comes from SHEPHERD_STORE_PASSWORD or a private file (store.password_file).
  std::string store_url;
  std::string store_password_file;
  std::string store_password;  // SECRET: never logged or shown
  // A shared database's table names (seed 001's JOB_TABLE_NAME, TASK_TABLE_NAME, NODE_TABLE_NAME).
  std::string store_table_jobs = "training_jobs";
  std::string store_table_tasks = "training_tasks";
  std::string store_table_nodes = "nodes";
  std::string webhook_url;  // SECRET: only from the environment or a private file; never logged
  std::string listen = "127.0.0.1:8080";
  // Several controllers on one MariaDB store (docs/architecture.md, "Several controllers"): this
  // one's name (unique per database; "": HOST:PORT) and the URL agents and clients reach it by
  // ("": https://HOST:PORT), and the leader lease's time to live in seconds (at least 1).
  std::string controller_name;
  std::string controller_url;
  double controller_lease_ttl = 10;
  // How long the store keeps event keys (the idempotency record) and the timeline: by age, counted
  // back from the newest row, and by rows (store/sqlite_retention.hpp).
  double events_max_age = 30 * 86400.0;
  int events_max_rows = 5'000'000;
  double timeline_max_age = 90 * 86400.0;
  int timeline_max_rows = 5'000'000;
};

// A setting that cannot be used. The message names where it came from: "file:line: key.path: ..."
// for the YAML file, the variable's name for the environment. It never contains the webhook URL.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads the YAML file (none if the path is empty), then applies `env`. Throws ConfigError.
// YAML keys: cluster_name, store.path, store.url, store.password_file,
// store.tables.{jobs, tasks, nodes} (also from seed 001's JOB_TABLE_NAME, TASK_TABLE_NAME,
// NODE_TABLE_NAME), listen, controller.{name, url, lease_ttl}, policy.{max_retries, diag_level,
// diag_timeout, reboot_timeout, heartbeat_timeout, app_exit_codes}, notify.webhook_url_file,
// store.retention.{events_max_age, events_max_rows, timeline_max_age, timeline_max_rows}. Each is
// overridden by SHEPHERD_<KEY> (dots as underscores, upper case; lists comma-separated; empty
// values count as unset). The webhook URL comes from SHEPHERD_WEBHOOK_URL, or from the file named
// by SHEPHERD_WEBHOOK_URL_FILE or notify.webhook_url_file, which must not be accessible by group or
// others.
Config load_config(const std::string& yaml_path_or_empty,
                   const std::map<std::string, std::string>& env);

// This process's environment, for load_config.
std::map<std::string, std::string> process_environment();

// Every setting, for `config show` and the startup log, with webhook_url as "(set)"/"(not set)".
nlohmann::json redacted_json(const Config& config);

}  // namespace shepherd
