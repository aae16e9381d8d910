#include "store/mariadb_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

#include "store/batch_coalescing.hpp"
#include "store/records.hpp"

namespace shepherd {
namespace {

using mariadb::Connection;
using mariadb::Row;
using mariadb::RowReader;
using mariadb::Value;
using mariadb::value;
using records::Columns;

// START TRANSACTION ... COMMIT, rolled back unless committed.
class Transaction {
 public:
  Transaction(Connection& db, const char* start = "START TRANSACTION") : db_(db) {
    db_.exec(start);
  }
  ~Transaction() {
    if (!open_) return;
    try {
      db_.exec("ROLLBACK");
    } catch (const std::exception&) {
      // The connection is gone: the server rolls the transaction back itself.
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    open_ = false;  // a COMMIT that fails leaves nothing to roll back
    db_.exec("COMMIT");
  }

 private:
  Connection& db_;
  bool open_ = true;
};

std::int64_t sql_limit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Seed 004 names a node's lock `is_locked`; the rest of the columns are the SQLite store's.
Columns node_columns() {
  Columns cols = records::node_columns();
  std::replace(cols.begin(), cols.end(), std::string("locked"), std::string("is_locked"));
  return cols;
}

std::string join(const Columns& cols) {
  std::string out;
  for (const auto& c : cols) out.append(out.empty() ? "" : ", ").append(c);
  return out;
}

std::string marks(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.append(i ? ", ?" : "?");
  return out;
}

std::string insert_sql(const std::string& table, const Columns& cols) {
  return "INSERT INTO " + table + " (" + join(cols) + ", version) VALUES (" +
         marks(cols.size() + 1) + ")";
}

// Parameters: the columns after the key but the immutable ones, the version's increment, the key,
// the immutable columns, the version read.
std::string update_sql(const std::string& table, const Columns& cols, const Columns& immutable) {
  std::string set, where = " WHERE " + cols[0] + " = ?";
  for (std::size_t i = 1; i < cols.size(); ++i) {
    if (std::count(immutable.begin(), immutable.end(), cols[i]))
      where.append(" AND ").append(cols[i]).append(" = ?");
    else
      set.append(cols[i]).append(" = ?, ");
  }
  return "UPDATE " + table + " SET " + set + "version = version + ?" + where + " AND version = ?";
}

std::string select_sql(const std::string& table, const Columns& cols) {
  return "SELECT " + join(cols) + ", version FROM " + table;
}

std::string rows_sql(std::string_view head, std::size_t columns, std::size_t rows,
                     std::string_view tail = "") {
  std::string sql(head);
  sql.append(" VALUES ");
  for (std::size_t r = 0; r < rows; ++r) sql.append(r ? ", (" : "(").append(marks(columns)) += ')';
  return sql.append(tail);
}

constexpr std::size_t kRowsPerInsert = 32;
constexpr std::size_t kKeysPerLookup = 100;

// Executes `head VALUES (...), (...)` over items, kRowsPerInsert rows per statement: each
// statement is a round trip. row(item, params) appends one item's values.
template <typename Item, typename RowValues>
void insert_rows(Connection& db, std::string_view head, std::size_t columns,
                 const std::vector<const Item*>& items, RowValues row, std::string_view tail = "") {
  for (std::size_t i = 0; i < items.size(); i += kRowsPerInsert) {
    const std::size_t n = std::min(kRowsPerInsert, items.size() - i);
    std::vector<Value> params;
    params.reserve(n * columns);
    for (std::size_t r = 0; r < n; ++r) row(*items[i + r], params);
    db.run(rows_sql(head, columns, n, tail), params);
  }
}

constexpr const char* kActionColumns =
    "id, kind, node, job_id, task_id, payload, created_at, attempts, last_error, "
    "next_attempt_at";

}  // namespace

struct MariadbStore::Sql {
  explicit Sql(const MariadbTables& t)
      : jobs(mariadb::quoted_identifier(t.jobs, "store.tables.jobs (JOB_TABLE_NAME)")),
        tasks(mariadb::quoted_identifier(t.tasks, "store.tables.tasks (TASK_TABLE_NAME)")),
        nodes(mariadb::quoted_identifier(t.nodes, "store.tables.nodes (NODE_TABLE_NAME)")),
        insert_job(insert_sql(jobs, records::job_columns())),
        update_job(update_sql(jobs, records::job_columns(), {})),
        insert_task(insert_sql(tasks, records::task_columns())),
        update_task(update_sql(tasks, records::task_columns(), {"job_id"})),
        insert_node("INSERT INTO " + nodes + " (" + join(node_columns()) + ", version) VALUES (" +
                    marks(node_columns().size() + 1) + ")"),
        update_node_health("UPDATE " + nodes +
                           " SET instance_id = ?, status = ?, boot_id = ?, job_id = ?, "
                           "operation_id = ?, deadline_at = ?, needs_diagnostic = ?, "
                           "last_verdict = ?, reason = ?, updated_at = ?, last_diagnostic = ?, "
                           "version = version + ? WHERE name = ? AND version = ?"),
        update_node_inventory("UPDATE " + nodes +
                              " SET instance_ref = ?, cluster_name = ?, ip = ?, ibdev = ?, "
                              "gpus = ?, node_type = ?, gpu_type = ?, node_pool = ?, "
                              "is_locked = ?, registered_at = ?, driver_version = ?, "
                              "inventory_version = inventory_version + ? "
                              "WHERE name = ? AND inventory_version = ?"),
        select_jobs(select_sql(jobs, records::job_columns())),
        select_tasks(select_sql(tasks, records::task_columns())),
        select_nodes(select_sql(nodes, node_columns())) {}

  std::string jobs, tasks, nodes;
  std::string insert_job, update_job, insert_task, update_task, insert_node;
  std::string update_node_health, update_node_inventory;
  std::string select_jobs, select_tasks, select_nodes;
};

MariadbStore::MariadbStore(MariadbOptions options)
    : options_(std::move(options)), sql_(std::make_unique<Sql>(options_.tables)) {
  db_ = options_.fence_epoch != 0
            ? std::make_unique<Connection>(options_.endpoint,
                                           [this](Connection& db) { register_writer(db); })
            : std::make_unique<Connection>(options_.endpoint);
  migrate(options_.migrations.empty() ? mariadb_migrations() : options_.migrations);
  auto flush = db_->query_with("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit");
  if (!flush.empty() && flush[0][0] && *flush[0][0] != "1")
    spdlog::warn(
        "mariadb {}: innodb_flush_log_at_trx_commit is {}, not 1: a crash of the database's "
        "machine may lose the last commits, among them decisions whose actions were sent",
        options_.endpoint.describe(), *flush[0][0]);
  if (options_.retention.interval_ms > 0)
    pruner_ = mariadb_pruner(options_.endpoint, options_.retention);
}

MariadbStore::~MariadbStore() = default;

// Each connection of the leader's store, the first and every one made again: recorded in the
// lease's row, which says at once whether the epoch still holds.
void MariadbStore::register_writer(Connection& db) {
  if (db.run_with("UPDATE shepherd_leader SET writer_session = CONNECTION_ID() WHERE id = 1 AND "
                  "epoch = ?",
                  options_.fence_epoch) != 1)
    throw FencedOut("mariadb " + db.endpoint().describe() + ": the leader lease of epoch " +
                    std::to_string(options_.fence_epoch) +
                    " is over: another controller leads; this one writes nothing more");
}

// Inside a write transaction: the shared lock keeps a take-over (which updates the row) waiting
// until this transaction ends, and a take-over that came first fails it here.
void MariadbStore::check_fence() {
  if (options_.fence_epoch == 0) return;
  const auto rows =
      db_->query_with("SELECT epoch, holder FROM shepherd_leader WHERE id = 1 LOCK IN SHARE MODE");
  if (!rows.empty() && rows[0][0].value_or("") == std::to_string(options_.fence_epoch)) return;
  throw FencedOut("mariadb " + options_.endpoint.describe() + ": the leader lease of epoch " +
                  std::to_string(options_.fence_epoch) + " is over: " +
                  (rows.empty()
                       ? std::string("no lease")
                       : rows[0][1].value_or("?") + " leads at epoch " + rows[0][0].value_or("?")) +
                  "; nothing written");
}

// Statements that make one write, in a transaction with the fence's check.
template <typename F>
void MariadbStore::fenced(F&& statements) {
  Transaction tx(*db_);
  check_fence();
  statements();
  tx.commit();
}

// A read: tried once more on a new connection when the connection was lost.
template <typename F>
auto MariadbStore::reading(std::string_view what, F&& f) {
  std::lock_guard lock(mutex_);
  try {
    try {
      return f();
    } catch (const mariadb::Error& e) {
      if (!e.connection_lost()) throw;
      spdlog::warn("mariadb {}: connection lost ({}); connecting again", what, e.what());
      db_->reconnect();
      return f();
    }
  } catch (const nlohmann::json::exception& e) {
    throw StoreError("mariadb " + std::string(what) + ": bad JSON: " + e.what());
  }
}

// A write: not tried again (whether it was written is unknown), but the connection is made again
// for the next call.
template <typename F>
auto MariadbStore::writing(std::string_view what, F&& f) {
  std::lock_guard lock(mutex_);
  try {
    return f();
  } catch (const mariadb::Error& e) {
    if (e.connection_lost()) {
      spdlog::warn("mariadb {}: connection lost ({}); connecting again", what, e.what());
      try {
        db_->reconnect();
      } catch (const std::exception& again) {
        spdlog::warn("mariadb: still unreachable: {}", again.what());
      }
    }
    throw;
  } catch (const nlohmann::json::exception& e) {
    throw StoreError("mariadb " + std::string(what) + ": bad JSON: " + e.what());
  }
}

std::vector<std::string> mariadb_statements(const Migration& m, const MariadbTables& tables) {
  std::string sql(m.sql);
  const std::pair<std::string, std::string> names[] = {
      {"{jobs}", mariadb::quoted_identifier(tables.jobs, "store.tables.jobs (JOB_TABLE_NAME)")},
      {"{tasks}", mariadb::quoted_identifier(tables.tasks, "store.tables.tasks (TASK_TABLE_NAME)")},
      {"{nodes}",
       mariadb::quoted_identifier(tables.nodes, "store.tables.nodes (NODE_TABLE_NAME)")}};
  for (const auto& [placeholder, name] : names)
    for (auto at = sql.find(placeholder); at != std::string::npos; at = sql.find(placeholder, at))
      sql.replace(at, placeholder.size(), name);
  std::vector<std::string> statements;
  std::string current;
  for (std::size_t at = 0; at < sql.size();) {
    std::size_t end = std::min(sql.find('\n', at), sql.size());
    std::string_view line(sql.data() + at, end - at);
    at = end + 1;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line.substr(first, 2) == "--") continue;
    current.append(line) += '\n';
    const auto last = line.find_last_not_of(" \t\r");
    if (line[last] == ';') {
      current.erase(current.find_last_of(';'));
      statements.push_back(std::move(current));
      current.clear();
    }
  }
  if (current.find_first_not_of(" \t\r\n") != std::string::npos)
    throw StoreError("mariadb migration " + std::string(m.name) +
                     ": the last statement does not end with ';'");
  const bool all_creates = std::all_of(statements.begin(), statements.end(), [](const auto& s) {
    return s.rfind("CREATE TABLE ", 0) == 0;
  });
  if (statements.size() > 1 && !all_creates)
    throw StoreError("mariadb migration " + std::string(m.name) +
                     ": more than one statement, not all CREATE TABLE: a failure half way would "
                     "leave the schema between versions");
  return statements;
}

void MariadbStore::migrate(std::span<const Migration> migrations) {
  Connection& db = *db_;
  db.exec(
      "CREATE TABLE IF NOT EXISTS shepherd_schema_migrations (version INT NOT NULL PRIMARY KEY, "
      "name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) ENGINE = InnoDB");
  // One controller migrates at a time; the others wait, then find the work done. Waits shorter
  // than the connection's I/O timeout, up to two minutes in all.
  bool locked = false;
  for (int wait = 0; wait < 12 && !locked; ++wait) {
    auto got = db.query_with("SELECT GET_LOCK(CONCAT('shepherd_schema.', DATABASE()), 10)");
    locked = !got.empty() && got[0][0].value_or("") == "1";
  }
  if (!locked)
    throw StoreError("mariadb " + options_.endpoint.describe() +
                     ": another controller held the schema lock for 120 s");
  struct Unlock {
    Connection& db;
    ~Unlock() {
      try {
        db.query_with("SELECT RELEASE_LOCK(CONCAT('shepherd_schema.', DATABASE()))");
      } catch (const std::exception&) {
        // A lost connection releases the lock by itself.
      }
    }
  } unlock{db};
  auto current = [&] {
    auto rows = db.query_with("SELECT COALESCE(MAX(version), 0) FROM shepherd_schema_migrations");
    return RowReader(rows.at(0)).i32();
  };
  if (int v = current(); !migrations.empty() && v > migrations.back().version)
    throw StoreError("mariadb " + options_.endpoint.describe() + ": schema version " +
                     std::to_string(v) + " is newer than this build's " +
                     std::to_string(migrations.back().version));
  for (const Migration& m : migrations) {
    if (!db.query_with("SELECT 1 FROM shepherd_schema_migrations WHERE version = ?",
                       std::int64_t{m.version})
             .empty())
      continue;
    std::vector<std::string> statements = mariadb_statements(m, options_.tables);
    std::vector<std::string> created;  // undone, newest first, if a later statement fails
    try {
      for (const auto& s : statements) {
        db.exec(s);
        if (s.rfind("CREATE TABLE ", 0) == 0) {
          const auto start = std::string("CREATE TABLE ").size();
          created.push_back(s.substr(start, s.find_first_of(" (\n", start) - start));
        }
      }
      db.run_with(
          "INSERT INTO shepherd_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
          std::int64_t{m.version}, std::string(m.name), wall_ms());
    } catch (const std::exception& e) {
      std::string why = e.what();
      if (const auto* sql_error = dynamic_cast<const mariadb::Error*>(&e);
          sql_error && sql_error->code == 1050)  // ER_TABLE_EXISTS_ERROR
        why +=
            ": a table of that name is there already and is not Shepherd's (or a migration "
            "cut off half way left it): name Shepherd's tables with store.tables.jobs, "
            "store.tables.tasks, store.tables.nodes (JOB_TABLE_NAME, TASK_TABLE_NAME, "
            "NODE_TABLE_NAME)";
      for (auto it = created.rbegin(); it != created.rend(); ++it) {
        try {
          db.exec("DROP TABLE IF EXISTS " + *it);
        } catch (const std::exception& undo) {
          spdlog::error("mariadb migration {}: could not drop {} again: {}", m.name, *it,
                        undo.what());
        }
      }
      std::string version = "the previous one";
      try {
        version = std::to_string(current());
      } catch (const std::exception&) {
        // The connection is gone too: the message keeps the first error.
      }
      throw StoreError("mariadb migration " + std::string(m.name) +
                       " failed; the schema stays at version " + version + ": " + why);
    }
  }
  schema_version_ = current();
}

int MariadbStore::schema_version() {
  std::lock_guard lock(mutex_);
  return schema_version_;
}

PruneCounts MariadbStore::prune_now() {
  return writing("prune", [&] { return prune_mariadb(*db_, options_.retention); });
}

std::uint64_t MariadbStore::reconnects() {
  std::lock_guard lock(mutex_);
  return db_->reconnects();
}

void MariadbStore::load(Snapshot& into) {
  reading("load", [&] {
    Snapshot fresh;  // filled whole, so a retry after a lost connection starts clean
    Transaction tx(*db_, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    for (const Row& r : db_->query(sql_->select_jobs, {}))
      fresh.put(records::read_job(RowReader(r)));
    for (const Row& r : db_->query(sql_->select_tasks, {}))
      fresh.put(records::read_task(RowReader(r)));
    for (const Row& r : db_->query(sql_->select_nodes, {}))
      fresh.put(records::read_node(RowReader(r)));
    tx.commit();
    for (const auto& [id, j] : fresh.jobs()) into.put(j);
    for (const auto& [id, t] : fresh.tasks()) into.put(t);
    for (const auto& [name, n] : fresh.nodes()) into.put(n);
  });
}

std::unordered_set<std::string> MariadbStore::known_events(const std::vector<std::string>& keys) {
  return reading("known_events", [&] {
    std::unordered_set<std::string> known;
    for (std::size_t i = 0; i < keys.size(); i += kKeysPerLookup) {
      const std::size_t n = std::min(kKeysPerLookup, keys.size() - i);
      std::vector<Value> params;
      for (std::size_t k = 0; k < n; ++k) params.push_back(value(keys[i + k]));
      for (const Row& r : db_->query(
               "SELECT `key` FROM shepherd_events WHERE `key` IN (" + marks(n) + ")", params))
        known.insert(RowReader(r).text());
    }
    return known;
  });
}

void MariadbStore::commit(const std::vector<Commit>& batch,
                          const std::vector<std::string>& delivered) {
  if (batch.empty() && delivered.empty()) return;
  writing("commit", [&] { write_batch(batch, delivered); });
}

void MariadbStore::write_batch(const std::vector<Commit>& batch,
                               const std::vector<std::string>& delivered) {
  const CoalescedBatch records(batch);
  Connection& db = *db_;
  Transaction tx(db);
  check_fence();
  std::vector<const Commit*> fresh;
  std::vector<const Transition*> transitions;
  std::vector<const Action*> actions;
  for (const Commit& c : batch) {
    if (c.duplicate) {
      db.run_with("UPDATE shepherd_events SET duplicates = duplicates + 1 WHERE `key` = ?",
                  c.event_key);
      continue;
    }
    fresh.push_back(&c);
    for (const Transition& t : c.decision.transitions) transitions.push_back(&t);
    for (const Action& a : c.decision.actions) actions.push_back(&a);
  }
  try {
    insert_rows(db, "INSERT INTO shepherd_events (`key`, kind, at)", 3, fresh,
                [](const Commit& c, std::vector<Value>& p) {
                  p.insert(p.end(), {value(c.event_key), value(c.event_kind), value(c.at)});
                });
  } catch (const mariadb::Error& e) {
    if (e.duplicate_key())
      throw VersionConflict("an event of the batch is already stored: " + std::string(e.what()));
    throw;
  }
  insert_rows(db, "INSERT INTO shepherd_timeline (at, entity, id, from_status, to_status, reason)",
              6, transitions, [](const Transition& t, std::vector<Value>& p) {
                p.insert(p.end(), {value(t.at), value(to_string(t.entity)), value(t.id),
                                   value(t.from), value(t.to), value(t.reason)});
              });
  // A repeated action id is the same action: the first is kept.
  insert_rows(
      db,
      "INSERT INTO shepherd_outbox (id, kind, node, job_id, task_id, payload, created_at, "
      "last_error, next_attempt_at)",
      9, actions,
      [](const Action& a, std::vector<Value>& p) {
        p.insert(p.end(), {value(a.id), value(to_string(a.kind)), value(a.node), value(a.job_id),
                           value(a.task_id), value(a.payload), value(a.created_at), value(""),
                           value(a.created_at)});
      },
      " ON DUPLICATE KEY UPDATE id = id");
  // Jobs before tasks: InnoDB checks a task's job at once, not at COMMIT.
  for (const auto& e : records.jobs.entries()) write(*e.last, e.read_version, e.changes);
  for (const auto& e : records.tasks.entries()) write(*e.last, e.read_version, e.changes);
  for (const auto& e : records.nodes.entries()) write_node(e);
  for (const auto& id : delivered) db.run_with("DELETE FROM shepherd_outbox WHERE id = ?", id);
  tx.commit();
}

namespace {

// Read version 0: INSERT, where a clash means another writer created the record meanwhile.
// Otherwise an UPDATE conditional on the version read; returns false when no row matched.
bool put(Connection& db, std::string_view entity, const std::string& insert,
         const std::string& update, const Columns& cols, const std::vector<Value>& fields,
         const Columns& immutable, std::int64_t read_version, std::int64_t changes) {
  if (read_version == 0) {
    std::vector<Value> params = fields;
    params.push_back(value(changes));
    try {
      db.run(insert, params);
    } catch (const mariadb::Error& e) {
      if (e.duplicate_key())
        throw VersionConflict(std::string(entity) + " " +
                              std::string(std::get<std::string_view>(fields[0])) +
                              " was created meanwhile");
      throw;
    }
    return true;
  }
  std::vector<Value> params, fixed;
  for (std::size_t i = 1; i < cols.size(); ++i)
    (std::count(immutable.begin(), immutable.end(), cols[i]) ? fixed : params).push_back(fields[i]);
  params.push_back(value(changes));
  params.push_back(fields[0]);
  params.insert(params.end(), fixed.begin(), fixed.end());
  params.push_back(value(read_version));
  return db.run(update, params) > 0;
}

}  // namespace

void MariadbStore::write(const Job& j, std::int64_t read_version, std::int64_t changes) {
  const std::string assigned = records::json_list(j.assigned_nodes);
  const std::string instances = records::json_list(j.submitted_instance_ids);
  const std::string task_ids = records::json_list(j.submitted_task_ids);
  const std::string definition = records::task_definition_json(j.task_definition);
  const std::vector<Value> fields = {value(j.id),
                                     value(j.cluster_name),
                                     value(j.job_timestamp),
                                     value(j.num_nodes),
                                     value(assigned),
                                     value(instances),
                                     value(task_ids),
                                     value(j.attempt),
                                     value(to_string(j.status)),
                                     value(definition),
                                     value(j.reason),
                                     value(j.recovery_started_at),
                                     value(to_string(j.recovery_cause)),
                                     value(j.created_at),
                                     value(j.updated_at)};
  if (!put(*db_, "job", sql_->insert_job, sql_->update_job, records::job_columns(), fields, {},
           read_version, changes))
    conflict(sql_->jobs, "job", "id", j.id, read_version);
}

void MariadbStore::write(const Task& t, std::int64_t read_version, std::int64_t changes) {
  const std::vector<Value> fields = {value(t.id),
                                     value(t.node_name),
                                     value(t.node_index),
                                     value(t.job_id),
                                     value(t.job_timestamp),
                                     value(t.job_num_nodes),
                                     value(t.task_definition_ref),
                                     value(t.task_definition_name),
                                     value(t.task_definition_revision),
                                     value(t.cluster_name),
                                     value(t.instance_id),
                                     value(t.instance_ref),
                                     value(t.attempt),
                                     value(to_string(t.status)),
                                     value(t.started),
                                     value(t.stop_requested),
                                     value(t.exit_code),
                                     value(t.reason),
                                     value(t.created_at),
                                     value(t.updated_at)};
  if (!put(*db_, "task", sql_->insert_task, sql_->update_task, records::task_columns(), fields,
           {"job_id"}, read_version, changes))
    conflict(sql_->tasks, "task", "id", t.id, read_version);
}

// A new node is inserted whole; a known one gets an UPDATE per changed half, each conditional on
// that half's version.
template <typename Entry>
void MariadbStore::write_node(const Entry& e) {
  const Node& n = *e.last;
  Connection& db = *db_;
  if ((e.health.changed && e.health.read_version == 0) ||
      (e.inventory.changed && e.inventory.read_version == 0)) {
    try {
      db.run_with(sql_->insert_node, n.name, n.instance_id, n.instance_ref, n.cluster_name,
                  to_string(n.status), n.ip, n.ibdev, n.gpus, n.boot_id, n.job_id, n.operation_id,
                  n.deadline_at, n.needs_diagnostic, to_string(n.last_verdict), n.reason,
                  n.created_at, n.updated_at, n.node_type, n.gpu_type, n.node_pool, n.locked,
                  n.registered_at, n.driver_version, n.last_diagnostic,
                  std::max<std::int64_t>(1, e.inventory.changes),
                  std::max<std::int64_t>(1, e.health.changes));
    } catch (const mariadb::Error& ex) {
      if (ex.duplicate_key()) throw VersionConflict("node " + n.name + " was created meanwhile");
      throw;
    }
    return;
  }
  if (e.health.changed &&
      db.run_with(sql_->update_node_health, n.instance_id, to_string(n.status), n.boot_id, n.job_id,
                  n.operation_id, n.deadline_at, n.needs_diagnostic, to_string(n.last_verdict),
                  n.reason, n.updated_at, n.last_diagnostic, e.health.changes, n.name,
                  e.health.read_version) == 0)
    conflict(sql_->nodes, "node", "name", n.name, e.health.read_version);
  if (e.inventory.changed &&
      db.run_with(sql_->update_node_inventory, n.instance_ref, n.cluster_name, n.ip, n.ibdev,
                  n.gpus, n.node_type, n.gpu_type, n.node_pool, n.locked, n.registered_at,
                  n.driver_version, e.inventory.changes, n.name, e.inventory.read_version) == 0)
    throw VersionConflict("node " + n.name + "'s inventory changed since version " +
                          std::to_string(e.inventory.read_version) + " (another writer)");
}

void MariadbStore::conflict(const std::string& table, std::string_view entity,
                            const std::string& key_column, const std::string& id,
                            std::int64_t expected) {
  auto rows = db_->query_with("SELECT version FROM " + table + " WHERE " + key_column + " = ?", id);
  std::string what = std::string(entity) + " " + id;
  std::string read_at = " (read at version " + std::to_string(expected) + ")";
  if (rows.empty()) throw VersionConflict(what + " is not stored" + read_at);
  const std::int64_t stored = RowReader(rows[0]).i64();
  // Same version, yet no row matched: the update tried to change an immutable column.
  if (stored == expected)
    throw StoreError(what + ": an immutable column (a task's job_id) was changed");
  throw VersionConflict(what + " is at version " + std::to_string(stored) + read_at);
}

std::vector<PendingAction> MariadbStore::pending_actions(TimeMs now, std::size_t limit) {
  return reading("pending_actions", [&] {
    std::vector<PendingAction> out;
    for (const Row& r :
         db_->query_with(std::string("SELECT ") + kActionColumns +
                             " FROM shepherd_outbox WHERE next_attempt_at <= ? AND dead_at IS "
                             "NULL ORDER BY seq LIMIT ?",
                         now, sql_limit(limit)))
      out.push_back(records::read_pending_action(RowReader(r)));
    return out;
  });
}

void MariadbStore::mark_actions_done(const std::vector<std::string>& action_ids) {
  if (action_ids.empty()) return;
  writing("mark_actions_done", [&] {
    fenced([&] {
      for (const auto& id : action_ids)
        db_->run_with("DELETE FROM shepherd_outbox WHERE id = ?", id);
    });
  });
}

void MariadbStore::mark_action_failed(const std::string& action_id, const std::string& error,
                                      TimeMs retry_at) {
  writing("mark_action_failed", [&] {
    fenced([&] {
      db_->run_with(
          "UPDATE shepherd_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = "
          "? WHERE id = ?",
          error, retry_at, action_id);
    });
  });
}

void MariadbStore::mark_action_dead(const std::string& action_id, const std::string& error,
                                    TimeMs at) {
  writing("mark_action_dead", [&] {
    fenced([&] {
      db_->run_with(
          "UPDATE shepherd_outbox SET attempts = attempts + 1, last_error = ?, dead_at = ? "
          "WHERE id = ?",
          error, at, action_id);
    });
  });
}

std::vector<PendingAction> MariadbStore::dead_letters(std::size_t limit) {
  return reading("dead_letters", [&] {
    std::vector<PendingAction> out;
    for (const Row& r : db_->query_with(std::string("SELECT ") + kActionColumns +
                                            ", dead_at FROM shepherd_outbox WHERE dead_at IS "
                                            "NOT NULL ORDER BY dead_at, seq LIMIT ?",
                                        sql_limit(limit))) {
      PendingAction p = records::read_pending_action(RowReader(r));
      p.dead_at = RowReader(r, 10).i64();
      out.push_back(std::move(p));
    }
    return out;
  });
}

std::optional<PendingAction> MariadbStore::revive_action(const std::string& action_id, TimeMs at) {
  return writing("revive_action", [&]() -> std::optional<PendingAction> {
    Transaction tx(*db_);
    check_fence();
    auto rows = db_->query_with(std::string("SELECT ") + kActionColumns +
                                    " FROM shepherd_outbox WHERE id = ? AND dead_at IS NOT NULL "
                                    "FOR UPDATE",
                                action_id);
    if (rows.empty()) return std::nullopt;
    PendingAction p = records::read_pending_action(RowReader(rows[0]));
    db_->run_with("UPDATE shepherd_outbox SET dead_at = NULL, next_attempt_at = ? WHERE id = ?", at,
                  action_id);
    tx.commit();
    p.next_attempt_at = at;
    return p;
  });
}

std::vector<TimelineEntry> MariadbStore::timeline(std::int64_t after_seq, std::size_t limit) {
  return reading("timeline", [&] {
    std::vector<TimelineEntry> out;
    for (const Row& r : db_->query_with(
             "SELECT seq, at, entity, id, from_status, to_status, reason FROM shepherd_timeline "
             "WHERE seq > ? ORDER BY seq LIMIT ?",
             after_seq, sql_limit(limit)))
      out.push_back(records::read_timeline_entry(RowReader(r)));
    return out;
  });
}

std::int64_t MariadbStore::begin_incarnation(TimeMs at) {
  return writing("begin_incarnation", [&] {
    std::int64_t number = 0;
    fenced([&] {
      db_->run_with("INSERT INTO shepherd_controller_incarnations (started_at) VALUES (?)", at);
      number = db_->last_insert_id();
    });
    return number;
  });
}

std::int64_t MariadbStore::duplicate_events() {
  return reading("duplicate_events", [&] {
    auto rows = db_->query_with(
        "SELECT COALESCE(SUM(duplicates), 0) FROM shepherd_events WHERE duplicates > 0");
    return RowReader(rows.at(0)).i64();
  });
}

}  // namespace shepherd
