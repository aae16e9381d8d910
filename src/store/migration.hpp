#pragma once
#include <span>
#include <string_view>

namespace shepherd {

// One versioned schema change, embedded at build time from
// src/store/migrations/<dialect>/NNNN_<name>.sql (see src/store/migrations.cmake).
struct Migration {
  int version = 0;
  std::string_view name;  // the file name without ".sql", e.g. "0001_initial"
  std::string_view sql;
};

// Each dialect's migrations, by ascending version.
std::span<const Migration> sqlite_migrations();
std::span<const Migration> mariadb_migrations();

}  // namespace shepherd
