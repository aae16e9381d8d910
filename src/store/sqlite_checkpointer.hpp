#pragma once
#include <SQLiteCpp/SQLiteCpp.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace shepherd {

// Copies a WAL database's log back into its file on its own thread and connection. SQLite's own
// automatic checkpoint runs inside the commit that crosses the threshold, which then waits for
// the copy (and, with synchronous=NORMAL, the fsync); here commits only append to the log.
// If the thread falls far behind, a commit checkpoints itself, so the log stays bounded.
class WalCheckpointer {
 public:
  // `writer` is the connection that commits; `pages` the log size that calls for a checkpoint.
  WalCheckpointer(const std::string& path, SQLite::Database& writer, int pages);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  long checkpoints() const;  // run by the thread so far

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int frames);
  void run();

  SQLite::Database& writer_;
  SQLite::Database connection_;
  int pages_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool due_ = false;
  bool stop_ = false;
  long checkpoints_ = 0;
  std::thread thread_;
};

}  // namespace shepherd
