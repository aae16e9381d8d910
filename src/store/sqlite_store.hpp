#pragma once
#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/migration.hpp"
#include "store/sqlite_checkpointer.hpp"
#include "store/sqlite_retention.hpp"
#include "store/store.hpp"

namespace shepherd {

struct SqliteOptions {
  // PRAGMA synchronous: "OFF", "NORMAL" or "FULL" (or "EXTRA"). FULL, the default, loses no
  // commit on a power cut. NORMAL (WAL) stays consistent but may lose the last commits, and one of
  // them may be a decision whose reboot was already sent: the node then reboots again on restart
  // and the recovery may be decided anew. NORMAL is a setting for those who take that risk.
  std::string synchronous = "FULL";
  int busy_timeout_ms = 5000;      // how long to wait for another connection's write lock
  int cache_size_kib = 64 * 1024;  // page cache per connection
  // File databases: when the WAL passes this many pages (80 MB at 8 KiB) they are copied back
  // into the database file (and fsynced). Larger means fewer copies of pages that change often;
  // SQLite's default, 1000, cost ~10% of commit throughput here. The WAL file is cut back to this
  // size after each reset; under a write load the checkpoint cannot keep up with, it may reach 4x.
  int checkpoint_pages = 10000;
  // Bytes per page of a new database file (an existing one keeps its own). Rows are a few hundred
  // bytes and written in large batches: 8 KiB pages made commits ~10% faster than 4 KiB.
  int page_size = 8192;
  // File databases: checkpoint on a thread of the store's own (sqlite_checkpointer.hpp) instead of
  // inside the commit that crosses checkpoint_pages.
  bool checkpoint_in_background = true;
  // What the event keys and the timeline keep; file databases prune on a thread of their own.
  RetentionPolicy retention;
};

// The embedded Store: one SQLite database file (or ":memory:"), in WAL mode for files. Opening
// applies the migrations the database lacks. All calls are serialised by an internal mutex, so one
// instance may be shared between threads.
class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path, SqliteOptions options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

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

  // The journal mode in effect ("wal" for a file database, "memory" for ":memory:").
  std::string journal_mode();
  // One retention pass now, on the store's connection (an in-memory store has no background one).
  PruneCounts prune_now();
  // What the background retention thread removed so far, and its passes (0 without one).
  PruneCounts pruned_in_background() const;
  long retention_passes() const { return pruner_ ? pruner_->passes() : 0; }
  // Checkpoints the background thread has run (0 without one).
  long background_checkpoints() const { return checkpointer_ ? checkpointer_->checkpoints() : 0; }

 private:
  struct Statements;

  void configure();
  void migrate();
  void write_event(const Commit& c);
  void write(const Job& job, std::int64_t read_version, std::int64_t changes);
  void write(const Task& task, std::int64_t read_version, std::int64_t changes);
  template <typename Entry>
  void write_node(const Entry& coalesced);
  template <typename... A>
  void put(std::string_view entity, const std::string& id, std::int64_t read_version,
           std::int64_t changes, std::pair<SQLite::Statement*, SQLite::Statement*> insert_update,
           const A&... fields);
  [[noreturn]] void conflict(std::string_view entity, const std::string& id, std::int64_t expected);

  std::string path_;
  SqliteOptions options_;
  std::mutex mutex_;
  SQLite::Database db_;
  std::unique_ptr<Statements> st_;                 // prepared once the schema exists
  std::unique_ptr<WalCheckpointer> checkpointer_;  // after db_: stopped before it closes
  std::unique_ptr<RetentionPruner> pruner_;        // likewise
  int schema_version_ = 0;
};

}  // namespace shepherd
