#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "store/batch_coalescing.hpp"
#include "store/sqlite_records.hpp"

namespace shepherd {
namespace {

using Json = nlohmann::json;
using namespace sqlite;

// Every public call maps library errors onto the Store's; VersionConflict passes through.
template <typename F>
auto guarded(std::string_view what, F&& f) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    throw StoreError("sqlite " + std::string(what) + ": " + e.what());
  } catch (const Json::exception& e) {
    throw StoreError("sqlite " + std::string(what) + ": bad JSON: " + e.what());
  }
}

// BEGIN ... COMMIT, rolled back unless committed (also when COMMIT itself fails).
class Transaction {
 public:
  Transaction(SQLite::Database& db, const char* begin) : db_(db) { db_.exec(begin); }
  ~Transaction() {
    if (open_) db_.tryExec("ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    db_.exec("COMMIT");
    open_ = false;
  }

 private:
  SQLite::Database& db_;
  bool open_ = true;
};

std::int64_t sql_limit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

bool is_memory(const std::string& path) {
  return path.empty() || path == ":memory:";
}

SQLite::Database open_database(const std::string& path, const SqliteOptions& options) {
  // Memory statistics take a global mutex on every allocation (~10% of commit time). This only
  // takes effect before SQLite's first use in the process, and is harmless (SQLITE_MISUSE) after.
  static const int no_memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)no_memstatus;
  return guarded("open " + path, [&] {
    // The store's mutex serialises all use, so SQLite's own per-call locking is not needed.
    return SQLite::Database(path,
                            SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
                            options.busy_timeout_ms);
  });
}

}  // namespace

struct SqliteStore::Statements {
  explicit Statements(SQLite::Database& db)
      : insert_job(db, insert_sql("jobs", job_columns())),
        update_job(db, update_sql("jobs", job_columns())),
        insert_task(db, insert_sql("tasks", task_columns())),
        // A task never moves to another job: compared, not set, which spares index upkeep.
        update_task(db, update_sql("tasks", task_columns(), {"job_id"})),
        insert_node(db, insert_sql("nodes", node_columns())),
        update_node_health(db,
                           "UPDATE nodes SET instance_id = ?2, status = ?3, boot_id = ?4, "
                           "job_id = ?5, operation_id = ?6, deadline_at = ?7, "
                           "needs_diagnostic = ?8, last_verdict = ?9, reason = ?10, "
                           "updated_at = ?11, last_diagnostic = ?12, version = version + ?13 "
                           "WHERE name = ?1 AND version = ?14"),
        update_node_inventory(db,
                              "UPDATE nodes SET instance_ref = ?2, cluster_name = ?3, ip = ?4, "
                              "ibdev = ?5, gpus = ?6, node_type = ?7, gpu_type = ?8, "
                              "node_pool = ?9, locked = ?10, registered_at = ?11, "
                              "driver_version = ?12, inventory_version = inventory_version + ?13 "
                              "WHERE name = ?1 AND inventory_version = ?14"),
        insert_event(db, "INSERT INTO events (key, kind, at) VALUES (?1, ?2, ?3)"),
        count_duplicate(db, "UPDATE events SET duplicates = duplicates + 1 WHERE key = ?1"),
        insert_transition(db, insert_rows_sql(kInsertTransition, kTransitionColumns, 1)),
        insert_transitions(db,
                           insert_rows_sql(kInsertTransition, kTransitionColumns, kRowsPerInsert)),
        insert_action(db, insert_rows_sql(kInsertAction, kActionColumns, 1)),
        insert_actions(db, insert_rows_sql(kInsertAction, kActionColumns, kRowsPerInsert)),
        has_event(db, "SELECT 1 FROM events WHERE key = ?1"),
        pending(db,
                "SELECT id, kind, node, job_id, task_id, payload, created_at, attempts, "
                "last_error, next_attempt_at FROM outbox WHERE next_attempt_at <= ?1 "
                "AND dead_at IS NULL ORDER BY rowid LIMIT ?2"),  // commit order: a stop never
                                                                 // overtakes its start
        // Done: the outbox keeps only what is owed (migration 0003).
        mark_done(db, "DELETE FROM outbox WHERE id = ?1"),
        mark_failed(db,
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, "
                    "next_attempt_at = ?3 WHERE id = ?1"),
        timeline(db,
                 "SELECT seq, at, entity, id, from_status, to_status, reason FROM timeline "
                 "WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
        // `duplicates > 0` lets SQLite sum over the small partial index.
        duplicates(db, "SELECT COALESCE(SUM(duplicates), 0) FROM events WHERE duplicates > 0") {}

  SQLite::Statement insert_job, update_job, insert_task, update_task, insert_node;
  SQLite::Statement update_node_health, update_node_inventory;
  static constexpr const char* kInsertTransition =
      "INSERT INTO timeline (at, entity, id, from_status, to_status, reason)";
  static constexpr int kTransitionColumns = 6;
  // A repeated action id is the same action: keep the first.
  static constexpr const char* kInsertAction =
      "INSERT OR IGNORE INTO outbox (id, kind, node, job_id, task_id, payload, created_at, "
      "next_attempt_at)";
  static constexpr int kActionColumns = 8;
  static constexpr int kRowsPerInsert = 32;

  SQLite::Statement insert_event, count_duplicate;
  SQLite::Statement insert_transition, insert_transitions, insert_action, insert_actions;
  SQLite::Statement has_event, pending, mark_done, mark_failed, timeline, duplicates;
};

SqliteStore::SqliteStore(const std::string& path, SqliteOptions options)
    : path_(path), options_(std::move(options)), db_(open_database(path, options_)) {
  guarded("open " + path, [&] {
    configure();
    migrate();
    st_ = std::make_unique<Statements>(db_);
    if (!is_memory(path_) && options_.checkpoint_in_background)
      checkpointer_ = std::make_unique<WalCheckpointer>(path_, db_, options_.checkpoint_pages);
    if (!is_memory(path_) && options_.retention.interval_ms > 0)
      pruner_ = sqlite_pruner(path_, options_.retention, options_.busy_timeout_ms);
  });
}

PruneCounts SqliteStore::prune_now() {
  std::lock_guard lock(mutex_);
  return guarded("prune", [&] { return prune_sqlite(db_, options_.retention); });
}

PruneCounts SqliteStore::pruned_in_background() const {
  return pruner_ ? pruner_->pruned() : PruneCounts{};
}

SqliteStore::~SqliteStore() = default;

void SqliteStore::configure() {
  std::string sync = options_.synchronous;
  std::transform(sync.begin(), sync.end(), sync.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (sync != "OFF" && sync != "NORMAL" && sync != "FULL" && sync != "EXTRA")
    throw StoreError("sqlite: synchronous must be OFF, NORMAL, FULL or EXTRA, not '" +
                     options_.synchronous + "'");
  db_.exec("PRAGMA foreign_keys = ON");
  db_.exec("PRAGMA page_size = " + std::to_string(options_.page_size));  // new files only
  if (!is_memory(path_)) {
    // WAL: readers never block the writer, and a commit appends instead of rewriting pages.
    std::string mode = db_.execAndGet("PRAGMA journal_mode = WAL").getString();
    if (mode != "wal") throw StoreError("sqlite " + path_ + ": cannot use WAL (got " + mode + ")");
  }
  db_.exec("PRAGMA synchronous = " + sync);
  db_.exec("PRAGMA cache_size = -" + std::to_string(std::max(options_.cache_size_kib, 0)));
  if (!is_memory(path_)) {
    db_.exec("PRAGMA wal_autocheckpoint = " + std::to_string(options_.checkpoint_pages));
    db_.exec("PRAGMA journal_size_limit = " +
             std::to_string(std::int64_t{options_.checkpoint_pages} * options_.page_size));
  }
}

void SqliteStore::migrate() {
  db_.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  auto current = [&] {
    return db_.execAndGet("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").getInt();
  };
  std::span<const Migration> known = sqlite_migrations();
  if (int v = current(); v > known.back().version)
    throw StoreError("sqlite " + path_ + ": schema version " + std::to_string(v) +
                     " is newer than this build's " + std::to_string(known.back().version));
  SQLite::Statement applied(db_, "SELECT 1 FROM schema_migrations WHERE version = ?1");
  SQLite::Statement record(db_,
                           "INSERT INTO schema_migrations (version, name, applied_at) "
                           "VALUES (?1, ?2, ?3)");
  for (const Migration& m : known) {
    // Each in its own transaction, checked again under the write lock: another process may be
    // migrating the same file.
    Transaction tx(db_, "BEGIN IMMEDIATE");
    bool done = Query(applied, std::int64_t{m.version}).next();
    if (done) continue;  // tx rolls back: nothing was written
    db_.exec(std::string(m.sql));
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    run(record, std::int64_t{m.version}, std::string(m.name), std::int64_t{now});
    tx.commit();
  }
  schema_version_ = current();
}

int SqliteStore::schema_version() {
  std::lock_guard lock(mutex_);
  return schema_version_;
}

std::string SqliteStore::journal_mode() {
  std::lock_guard lock(mutex_);
  return guarded("journal_mode", [&] { return db_.execAndGet("PRAGMA journal_mode").getString(); });
}

void SqliteStore::commit(const std::vector<Commit>& batch,
                         const std::vector<std::string>& delivered) {
  std::lock_guard lock(mutex_);
  if (batch.empty() && delivered.empty()) return;
  const CoalescedBatch records(batch);
  const auto& [jobs, tasks, nodes] = records;
  guarded("commit", [&] {
    Transaction tx(db_, "BEGIN IMMEDIATE");
    std::vector<const Transition*> transitions;
    std::vector<const Action*> actions;
    for (const Commit& c : batch) {
      write_event(c);
      if (c.duplicate) continue;
      for (const Transition& t : c.decision.transitions) transitions.push_back(&t);
      for (const Action& a : c.decision.actions) actions.push_back(&a);
    }
    constexpr int rows = Statements::kRowsPerInsert;
    insert_rows(transitions, st_->insert_transitions, rows, Statements::kTransitionColumns,
                st_->insert_transition, [](SQLite::Statement& s, int at, const Transition& t) {
                  bind_at(s, at, t.at, to_string(t.entity), t.id, t.from, t.to, t.reason);
                });
    insert_rows(actions, st_->insert_actions, rows, Statements::kActionColumns, st_->insert_action,
                [](SQLite::Statement& s, int at, const Action& a) {
                  bind_at(s, at, a.id, to_string(a.kind), a.node, a.job_id, a.task_id, a.payload,
                          a.created_at, a.created_at);
                });
    for (const auto& e : jobs.entries()) write(*e.last, e.read_version, e.changes);
    for (const auto& e : tasks.entries()) write(*e.last, e.read_version, e.changes);
    for (const auto& e : nodes.entries()) write_node(e);
    for (const auto& id : delivered) run(st_->mark_done, id);
    tx.commit();
  });
}

void SqliteStore::write_event(const Commit& c) {
  if (c.duplicate) {
    run(st_->count_duplicate, c.event_key);
    return;
  }
  try {
    run(st_->insert_event, c.event_key, c.event_kind, c.at);
  } catch (const SQLite::Exception& e) {
    if (is_primary_key_clash(e)) throw VersionConflict("event " + c.event_key + " already stored");
    throw;
  }
}

// Read version 0: INSERT, where a clash means another writer created the record meanwhile.
// Otherwise an UPDATE conditional on the version read, where no row changed means a conflict.
template <typename... A>
void SqliteStore::put(std::string_view entity, const std::string& id, std::int64_t read_version,
                      std::int64_t changes,
                      std::pair<SQLite::Statement*, SQLite::Statement*> insert_update,
                      const A&... fields) {
  if (read_version == 0) {
    try {
      run(*insert_update.first, id, fields..., changes);
    } catch (const SQLite::Exception& e) {
      if (is_primary_key_clash(e))
        throw VersionConflict(std::string(entity) + " " + id + " was created meanwhile");
      throw;
    }
  } else if (run(*insert_update.second, id, fields..., changes, read_version) == 0) {
    conflict(entity, id, read_version);
  }
}

void SqliteStore::write(const Job& j, std::int64_t read_version, std::int64_t changes) {
  put("job", j.id, read_version, changes, {&st_->insert_job, &st_->update_job}, j.cluster_name,
      j.job_timestamp, j.num_nodes, json_list(j.assigned_nodes),
      json_list(j.submitted_instance_ids), json_list(j.submitted_task_ids), j.attempt,
      to_string(j.status), task_definition_json(j.task_definition), j.reason, j.recovery_started_at,
      std::string(to_string(j.recovery_cause)), j.created_at, j.updated_at);
}

void SqliteStore::write(const Task& t, std::int64_t read_version, std::int64_t changes) {
  put("task", t.id, read_version, changes, {&st_->insert_task, &st_->update_task}, t.node_name,
      t.node_index, t.job_id, t.job_timestamp, t.job_num_nodes, t.task_definition_ref,
      t.task_definition_name, t.task_definition_revision, t.cluster_name, t.instance_id,
      t.instance_ref, t.attempt, to_string(t.status), t.started, t.stop_requested, t.exit_code,
      t.reason, t.created_at, t.updated_at);
}

// A new node is inserted whole; a known one gets an UPDATE per changed half, each conditional on
// that half's version, so delivery's inventory edits and recovery's health edits never conflict.
template <typename Entry>
void SqliteStore::write_node(const Entry& e) {
  const Node& n = *e.last;
  if ((e.health.changed && e.health.read_version == 0) ||
      (e.inventory.changed && e.inventory.read_version == 0)) {
    try {
      run(st_->insert_node, n.name, n.instance_id, n.instance_ref, n.cluster_name,
          to_string(n.status), n.ip, n.ibdev, n.gpus, n.boot_id, n.job_id, n.operation_id,
          n.deadline_at, n.needs_diagnostic, to_string(n.last_verdict), n.reason, n.created_at,
          n.updated_at, n.node_type, n.gpu_type, n.node_pool, n.locked, n.registered_at,
          n.driver_version, n.last_diagnostic, std::max<std::int64_t>(1, e.inventory.changes),
          std::max<std::int64_t>(1, e.health.changes));
    } catch (const SQLite::Exception& ex) {
      if (is_primary_key_clash(ex))
        throw VersionConflict("node " + n.name + " was created meanwhile");
      throw;
    }
    return;
  }
  if (e.health.changed &&
      run(st_->update_node_health, n.name, n.instance_id, to_string(n.status), n.boot_id, n.job_id,
          n.operation_id, n.deadline_at, n.needs_diagnostic, to_string(n.last_verdict), n.reason,
          n.updated_at, n.last_diagnostic, e.health.changes, e.health.read_version) == 0)
    conflict("node", n.name, e.health.read_version);
  if (e.inventory.changed &&
      run(st_->update_node_inventory, n.name, n.instance_ref, n.cluster_name, n.ip, n.ibdev, n.gpus,
          n.node_type, n.gpu_type, n.node_pool, n.locked, n.registered_at, n.driver_version,
          e.inventory.changes, e.inventory.read_version) == 0)
    throw VersionConflict("node " + n.name + "'s inventory changed since version " +
                          std::to_string(e.inventory.read_version) + " (another writer)");
}

void SqliteStore::conflict(std::string_view entity, const std::string& id, std::int64_t expected) {
  // Off the hot path: look up what is stored, for a message that says what happened.
  std::string table = std::string(entity) + "s";
  std::string key = entity == "node" ? "name" : "id";
  SQLite::Statement q(db_, "SELECT version FROM " + table + " WHERE " + key + " = ?1");
  q.bind(1, id);
  std::string what = std::string(entity) + " " + id;
  std::string read_at = " (read at version " + std::to_string(expected) + ")";
  if (!q.executeStep()) throw VersionConflict(what + " is not stored" + read_at);
  std::int64_t stored = q.getColumn(0).getInt64();
  // Same version, yet no row matched: the update tried to change an immutable column. A bug in
  // the caller, which rereading would not fix.
  if (stored == expected)
    throw StoreError(what + ": an immutable column (a task's job_id) was changed");
  throw VersionConflict(what + " is at version " + std::to_string(stored) + read_at);
}

void SqliteStore::load(Snapshot& into) {
  std::lock_guard lock(mutex_);
  guarded("load", [&] {
    Transaction tx(db_, "BEGIN");  // one consistent read of all three tables
    SQLite::Statement jobs(db_, select_sql("jobs", job_columns()));
    while (jobs.executeStep()) into.put(read_job(jobs));
    SQLite::Statement tasks(db_, select_sql("tasks", task_columns()));
    while (tasks.executeStep()) into.put(read_task(tasks));
    SQLite::Statement nodes(db_, select_sql("nodes", node_columns()));
    while (nodes.executeStep()) into.put(read_node(nodes));
    tx.commit();
  });
}

std::unordered_set<std::string> SqliteStore::known_events(const std::vector<std::string>& keys) {
  std::lock_guard lock(mutex_);
  return guarded("known_events", [&] {
    std::unordered_set<std::string> known;
    if (keys.empty()) return known;
    Transaction tx(db_, "BEGIN");  // one read transaction for all the lookups
    for (const auto& key : keys)
      if (Query(st_->has_event, key).next()) known.insert(key);
    tx.commit();
    return known;
  });
}

std::vector<PendingAction> SqliteStore::pending_actions(TimeMs now, std::size_t limit) {
  std::lock_guard lock(mutex_);
  return guarded("pending_actions", [&] {
    std::vector<PendingAction> out;
    Query q(st_->pending, now, sql_limit(limit));
    while (q.next()) out.push_back(read_pending_action(q.s));
    return out;
  });
}

void SqliteStore::mark_actions_done(const std::vector<std::string>& action_ids) {
  std::lock_guard lock(mutex_);
  if (action_ids.empty()) return;
  guarded("mark_actions_done", [&] {
    Transaction tx(db_, "BEGIN IMMEDIATE");
    for (const auto& id : action_ids) run(st_->mark_done, id);
    tx.commit();
  });
}

void SqliteStore::mark_action_failed(const std::string& action_id, const std::string& error,
                                     TimeMs retry_at) {
  std::lock_guard lock(mutex_);
  guarded("mark_action_failed", [&] { run(st_->mark_failed, action_id, error, retry_at); });
}

void SqliteStore::mark_action_dead(const std::string& action_id, const std::string& error,
                                   TimeMs at) {
  std::lock_guard lock(mutex_);
  guarded("mark_action_dead", [&] {
    SQLite::Statement q(db_,
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, dead_at = ?3 "
                        "WHERE id = ?1");
    q.bind(1, action_id);
    q.bind(2, error);
    q.bind(3, static_cast<std::int64_t>(at));
    q.exec();
  });
}

namespace {
constexpr const char* kDeadLetterColumns =
    "SELECT id, kind, node, job_id, task_id, payload, created_at, attempts, last_error, "
    "next_attempt_at, dead_at FROM outbox ";
PendingAction read_dead_letter(const SQLite::Statement& s) {
  PendingAction p = read_pending_action(s);
  p.dead_at = s.getColumn(10).getInt64();
  return p;
}
}  // namespace

std::vector<PendingAction> SqliteStore::dead_letters(std::size_t limit) {
  std::lock_guard lock(mutex_);
  return guarded("dead_letters", [&] {
    SQLite::Statement q(db_, std::string(kDeadLetterColumns) +
                                 "WHERE dead_at IS NOT NULL ORDER BY dead_at, rowid LIMIT ?1");
    q.bind(1, sql_limit(limit));
    std::vector<PendingAction> out;
    while (q.executeStep()) out.push_back(read_dead_letter(q));
    return out;
  });
}

std::optional<PendingAction> SqliteStore::revive_action(const std::string& action_id, TimeMs at) {
  std::lock_guard lock(mutex_);
  return guarded("revive_action", [&]() -> std::optional<PendingAction> {
    Transaction tx(db_, "BEGIN IMMEDIATE");
    SQLite::Statement find(
        db_, std::string(kDeadLetterColumns) + "WHERE id = ?1 AND dead_at IS NOT NULL");
    find.bind(1, action_id);
    if (!find.executeStep()) return std::nullopt;
    PendingAction p = read_pending_action(find);
    SQLite::Statement revive(
        db_, "UPDATE outbox SET dead_at = NULL, next_attempt_at = ?2 WHERE id = ?1");
    revive.bind(1, action_id);
    revive.bind(2, static_cast<std::int64_t>(at));
    revive.exec();
    tx.commit();
    p.next_attempt_at = at;
    return p;
  });
}

std::vector<TimelineEntry> SqliteStore::timeline(std::int64_t after_seq, std::size_t limit) {
  std::lock_guard lock(mutex_);
  return guarded("timeline", [&] {
    std::vector<TimelineEntry> out;
    Query q(st_->timeline, after_seq, sql_limit(limit));
    while (q.next()) out.push_back(read_timeline_entry(q.s));
    return out;
  });
}

std::int64_t SqliteStore::begin_incarnation(TimeMs at) {
  std::lock_guard lock(mutex_);
  return guarded("begin_incarnation", [&] {
    SQLite::Statement insert(db_, "INSERT INTO controller_incarnations (started_at) VALUES (?)");
    insert.bind(1, static_cast<std::int64_t>(at));
    insert.exec();
    return db_.getLastInsertRowid();
  });
}

std::int64_t SqliteStore::duplicate_events() {
  std::lock_guard lock(mutex_);
  return guarded("duplicate_events", [&] {
    Query q(st_->duplicates);
    q.next();
    return q.s.getColumn(0).getInt64();
  });
}

}  // namespace shepherd
