#include "store/sqlite_records.hpp"

#include <sqlite3.h>

#include <algorithm>

namespace shepherd::sqlite {
namespace {

std::string param(std::size_t i) {
  return std::string("?").append(std::to_string(i));
}

// The cursor the records' readers take (records.hpp): reads the columns of the current row in
// order.
class Row {
 public:
  explicit Row(const SQLite::Statement& s) : s_(s) {}
  std::string text() { return s_.getColumn(i_++).getString(); }
  std::int64_t i64() { return s_.getColumn(i_++).getInt64(); }
  int i32() { return s_.getColumn(i_++).getInt(); }
  bool flag() { return i32() != 0; }
  std::optional<int> maybe_i32() {
    bool null = s_.isColumnNull(i_);
    int v = i32();
    return null ? std::nullopt : std::optional<int>(v);
  }

 private:
  const SQLite::Statement& s_;
  int i_ = 0;
};

}  // namespace

std::string insert_rows_sql(std::string_view head, int columns, int rows) {
  std::string sql(head);
  sql.append(" VALUES ");
  int n = 1;
  for (int r = 0; r < rows; ++r) {
    sql.append(r == 0 ? "(" : ", (");
    for (int c = 0; c < columns; ++c)
      sql.append(c == 0 ? "" : ", ").append(param(static_cast<std::size_t>(n++)));
    sql.append(")");
  }
  return sql;
}

std::string insert_sql(const std::string& table, const Columns& cols) {
  std::string names, params;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    names.append(cols[i]).append(", ");
    params.append(param(i + 1)).append(", ");
  }
  return "INSERT INTO " + table + " (" + names + "version) VALUES (" + params +
         param(cols.size() + 1) + ")";
}

std::string update_sql(const std::string& table, const Columns& cols, const Columns& immutable) {
  std::string sql = "UPDATE " + table + " SET ";
  std::string where = " WHERE " + cols[0] + " = ?1";
  for (std::size_t i = 1; i < cols.size(); ++i) {
    if (std::count(immutable.begin(), immutable.end(), cols[i]))
      where.append(" AND ").append(cols[i]).append(" = ").append(param(i + 1));
    else
      sql.append(cols[i]).append(" = ").append(param(i + 1)).append(", ");
  }
  return sql.append("version = version + ")
      .append(param(cols.size() + 1))
      .append(where)
      .append(" AND version = ")
      .append(param(cols.size() + 2));
}

std::string select_sql(const std::string& table, const Columns& cols) {
  std::string sql = "SELECT ";
  for (const auto& c : cols) sql.append(c).append(", ");
  return sql.append("version FROM ").append(table);
}

Job read_job(const SQLite::Statement& s) {
  return records::read_job(Row(s));
}
Task read_task(const SQLite::Statement& s) {
  return records::read_task(Row(s));
}
Node read_node(const SQLite::Statement& s) {
  return records::read_node(Row(s));
}
PendingAction read_pending_action(const SQLite::Statement& s) {
  return records::read_pending_action(Row(s));
}
TimelineEntry read_timeline_entry(const SQLite::Statement& s) {
  return records::read_timeline_entry(Row(s));
}

bool is_primary_key_clash(const SQLite::Exception& e) {
  return e.getExtendedErrorCode() == SQLITE_CONSTRAINT_PRIMARYKEY;
}

void bind_one(SQLite::Statement& s, int i, const std::string& v) {
  s.bindNoCopy(i, v);
}
void bind_one(SQLite::Statement& s, int i, std::string_view v) {
  s.bind(i, std::string(v));
}
void bind_one(SQLite::Statement& s, int i, std::int64_t v) {
  s.bind(i, v);
}
void bind_one(SQLite::Statement& s, int i, const std::optional<int>& v) {
  if (v)
    s.bind(i, *v);
  else
    s.bind(i);
}

}  // namespace shepherd::sqlite
