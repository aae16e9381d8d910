#include "store/sqlite_checkpointer.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

namespace shepherd {

WalCheckpointer::WalCheckpointer(const std::string& path, SQLite::Database& writer, int pages)
    : writer_(writer),
      connection_(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX, 5000),  // RESTART waits
      pages_(pages) {
  sqlite3_wal_hook(writer_.getHandle(), &WalCheckpointer::on_commit, this);  // replaces SQLite's
  thread_ = std::thread([this] { run(); });
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_hook(writer_.getHandle(), nullptr, nullptr);
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

long WalCheckpointer::checkpoints() const {
  std::lock_guard lock(mutex_);
  return checkpoints_;
}

// Called by SQLite in the writer's thread after each commit, with the log's size in pages.
int WalCheckpointer::on_commit(void* self, sqlite3* db, const char* name, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (frames >= 4 * c->pages_) {  // the thread cannot keep up: this commit pays, as by default
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  if (frames >= c->pages_) {
    {
      std::lock_guard lock(c->mutex_);
      c->due_ = true;
    }
    c->wake_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return due_ || stop_; });
    if (stop_) return;
    due_ = false;
    lock.unlock();
    // PASSIVE copies what no reader still needs and never blocks the writer. But the log only
    // starts over when a checkpoint has caught up with the writer: if commits keep it from doing
    // so, RESTART waits for a gap between commits (holding the next one back) to make sure.
    int log = 0;
    int rc = sqlite3_wal_checkpoint_v2(connection_.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, nullptr);
    if (rc == SQLITE_OK && log >= 2 * pages_)
      rc = sqlite3_wal_checkpoint_v2(connection_.getHandle(), nullptr, SQLITE_CHECKPOINT_RESTART,
                                     nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      spdlog::warn("sqlite checkpoint failed: {}", sqlite3_errstr(rc));
    lock.lock();
    ++checkpoints_;
  }
}

}  // namespace shepherd
