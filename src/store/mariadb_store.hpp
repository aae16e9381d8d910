#pragma once
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "store/credentials.hpp"
#include "store/mariadb_connection.hpp"
#include "store/migration.hpp"
#include "store/retention.hpp"
#include "store/store.hpp"

namespace shepherd {

// The names of the tables a shared database (seed 004's devops_platform) may already use for
// something else: settings, with seed 001's variables (JOB_TABLE_NAME, TASK_TABLE_NAME,
// NODE_TABLE_NAME). The node inventory is seed 004's `nodes`, shared with delivery.
struct MariadbTables {
  std::string jobs = "training_jobs";
  std::string tasks = "training_tasks";
  std::string nodes = "nodes";
};

struct MariadbOptions {
  mariadb::Endpoint endpoint;
  MariadbTables tables;
  // The schema changes to apply (tests give others); empty: this build's (mariadb_migrations()).
  std::span<const Migration> migrations;
  // The leader's store: the epoch of its lease (MariadbLease). Every write checks, under a shared
  // lock on the lease's row, that this epoch still holds, and fails with FencedOut once another
  // controller took over: a deposed leader that wakes up late writes nothing. Its connection is
  // recorded in the row (a controller taking over a silent leader ends it). 0: no lease (one
  // controller alone, tests, tools).
  std::int64_t fence_epoch = 0;
  // What the event keys and the timeline keep; pruned on a thread and connection of their own
  // (interval_ms 0: not in the background).
  RetentionPolicy retention;
};

// The shared Store: a MariaDB (or MySQL) database on InnoDB, for several controllers. The same
// guarantees as SqliteStore: every record write conditional on its version, a batch in one
// transaction with its transitions, outbox actions and event keys, unique keys for events and
// actions, versioned migrations. Opening applies the migrations the database lacks, one controller
// at a time (a named lock). A connection lost under a call (MariaDB restarted, a network cut) is
// made again: a read is tried again on the new connection; a commit is not (whether it was written
// is unknown) and fails with StoreError, which the runtime answers by deciding its events again,
// their keys telling what was written. All calls are serialised by an internal mutex.
class MariadbStore final : public Store {
 public:
  explicit MariadbStore(MariadbOptions options);
  ~MariadbStore() override;
  MariadbStore(const MariadbStore&) = delete;
  MariadbStore& operator=(const MariadbStore&) = delete;

  void load(Snapshot& into) override;
  std::unordered_set<std::string> known_events(const std::vector<std::string>& keys) override;
  void commit(const std::vector<Commit>& batch,
              const std::vector<std::string>& delivered = {}) override;
  std::vector<PendingAction> pending_actions(TimeMs now, std::size_t limit) override;
  void mark_actions_done(const std::vector<std::string>& action_ids) override;
  void mark_action_failed(const std::string& action_id, const std::string& error,
                          TimeMs retry_at) override;
  void mark_action_dead(const std::string& action_id, const std::string& error, TimeMs at) override;
  std::vector<PendingAction> dead_letters(std::size_t limit) override;
  std::optional<PendingAction> revive_action(const std::string& action_id, TimeMs at) override;
  std::vector<TimelineEntry> timeline(std::int64_t after_seq, std::size_t limit) override;
  std::int64_t begin_incarnation(TimeMs at) override;
  std::int64_t duplicate_events() override;
  int schema_version() override;

  // Connections made again after one was lost.
  std::uint64_t reconnects();
  // One retention pass now, on the store's connection.
  PruneCounts prune_now();

 private:
  struct Sql;
  template <typename F>
  auto reading(std::string_view what, F&& f);
  template <typename F>
  auto writing(std::string_view what, F&& f);
  void migrate(std::span<const Migration> migrations);
  void register_writer(mariadb::Connection& db);
  void check_fence();
  template <typename F>
  void fenced(F&& statements);
  void write_batch(const std::vector<Commit>& batch, const std::vector<std::string>& delivered);
  void write(const Job& job, std::int64_t read_version, std::int64_t changes);
  void write(const Task& task, std::int64_t read_version, std::int64_t changes);
  template <typename Entry>
  void write_node(const Entry& coalesced);
  [[noreturn]] void conflict(const std::string& table, std::string_view entity,
                             const std::string& key_column, const std::string& id,
                             std::int64_t expected);

  MariadbOptions options_;
  std::mutex mutex_;
  std::unique_ptr<mariadb::Connection> db_;
  std::unique_ptr<Sql> sql_;
  int schema_version_ = 0;
  std::unique_ptr<RetentionPruner> pruner_;  // last: stopped first
};

// The agents' credentials in the same database, on a connection of their own.
class MariadbCredentials final : public CredentialStore {
 public:
  explicit MariadbCredentials(const mariadb::Endpoint& endpoint);
  ~MariadbCredentials() override;
  std::string enrol(const std::string& node, TimeMs now) override;
  Check verify(const std::string& node, const std::string& secret) override;
  bool revoke(const std::string& node, TimeMs now) override;
  bool allow_enrolment(const std::string& node) override;

 private:
  template <typename F>
  auto call(F&& f);
  std::mutex mu_;
  std::unique_ptr<mariadb::Connection> db_;
};

// One retention pass on `db` (see RetentionPolicy); `stop`, when set, ends it between chunks.
PruneCounts prune_mariadb(mariadb::Connection& db, const RetentionPolicy& policy,
                          const std::atomic<bool>* stop = nullptr);
std::unique_ptr<RetentionPruner> mariadb_pruner(const mariadb::Endpoint& endpoint,
                                                RetentionPolicy policy);

// The migration's SQL with its table placeholders ({jobs}, {tasks}, {nodes}) replaced by the
// quoted names, cut into statements; throws StoreError if it breaks the MariaDB migration rules
// (only CREATE TABLEs, or one statement).
std::vector<std::string> mariadb_statements(const Migration& m, const MariadbTables& tables);

}  // namespace shepherd
