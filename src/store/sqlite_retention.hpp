#pragma once
#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "store/retention.hpp"

namespace shepherd {

// One pass on `db`: deletes what the policy no longer keeps, oldest first, `chunk_rows` rows per
// transaction, so a commit on another connection waits at most one chunk.
// `stop`, when given and set, ends the pass between chunks.
PruneCounts prune_sqlite(SQLite::Database& db, const RetentionPolicy& policy,
                         const std::atomic<bool>* stop = nullptr);

// Prunes a file database on a thread and connection of its own, every interval_ms.
std::unique_ptr<RetentionPruner> sqlite_pruner(const std::string& path, RetentionPolicy policy,
                                               int busy_timeout_ms);

}  // namespace shepherd
