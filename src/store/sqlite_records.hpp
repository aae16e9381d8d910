#pragma once
// Internal to the SQLite store: how records map onto rows, and small helpers around SQLiteCpp's
// prepared statements.
#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/records.hpp"
#include "store/store.hpp"

namespace shepherd::sqlite {

using records::Columns;
using records::job_columns;
using records::json_list;
using records::node_columns;
using records::task_columns;
using records::task_definition_json;

// INSERT of every column; parameters ?1..?n in column order, the version ?n+1.
std::string insert_sql(const std::string& table, const Columns& cols);
// UPDATE of every column but the key (?1), adding ?n+1 to the version, conditional on the version
// read (?n+2).
// `immutable` columns are compared instead of set (no index or foreign-key upkeep), so the update
// fails rather than changes them.
std::string update_sql(const std::string& table, const Columns& cols,
                       const Columns& immutable = {});
// SELECT of every column, then version.
std::string select_sql(const std::string& table, const Columns& cols);

// Read the current row of a select_sql() / the outbox and timeline queries.
Job read_job(const SQLite::Statement& s);
Task read_task(const SQLite::Statement& s);
Node read_node(const SQLite::Statement& s);
PendingAction read_pending_action(const SQLite::Statement& s);
TimelineEntry read_timeline_entry(const SQLite::Statement& s);

bool is_primary_key_clash(const SQLite::Exception& e);

// Binds one parameter. Strings are bound without a copy: run() executes within the caller's full
// expression, so even temporaries outlive the step. Statuses (string_view) are copied.
void bind_one(SQLite::Statement& s, int i, const std::string& v);
void bind_one(SQLite::Statement& s, int i, std::string_view v);
void bind_one(SQLite::Statement& s, int i, std::int64_t v);
void bind_one(SQLite::Statement& s, int i, const std::optional<int>& v);  // nullopt: NULL

template <typename... A>
SQLite::Statement& bind(SQLite::Statement& s, const A&... args) {
  s.reset();
  int i = 1;
  (bind_one(s, i++, args), ...);
  return s;
}

// Binds args to ?first, ?first+1, ...: one row of a many-row INSERT.
template <typename... A>
void bind_at(SQLite::Statement& s, int first, const A&... args) {
  int i = first;
  (bind_one(s, i++, args), ...);
}

// "INSERT INTO table (columns) VALUES (?1, ...), (...), ..." with `rows` rows of `columns` values.
std::string insert_rows_sql(std::string_view head, int columns, int rows);

// Inserts items with one statement per `per_statement` items (statement `many`, made by
// insert_rows_sql) and the rest one by one (`one`): SQLite's cost is mostly per statement, not
// per row. bind_row(statement, first_parameter, item) binds one item's columns.
template <typename Item, typename BindRow>
void insert_rows(const std::vector<const Item*>& items, SQLite::Statement& many, int per_statement,
                 int columns, SQLite::Statement& one, BindRow bind_row) {
  std::size_t i = 0;
  const auto full = static_cast<std::size_t>(per_statement);
  for (; items.size() - i >= full; i += full) {
    many.reset();
    for (std::size_t r = 0; r < full; ++r)
      bind_row(many, 1 + static_cast<int>(r) * columns, *items[i + r]);
    many.exec();
    many.tryReset();
  }
  for (; i < items.size(); ++i) {
    one.reset();
    bind_row(one, 1, *items[i]);
    one.exec();
    one.tryReset();
  }
}

// Executes a write with these parameters (?1, ?2, ... in order); returns the rows changed.
template <typename... A>
int run(SQLite::Statement& s, const A&... args) {
  int changes = bind(s, args...).exec();
  s.tryReset();
  return changes;
}

// A query with its parameters bound, reset when done so that no read stays open.
struct Query {
  template <typename... A>
  explicit Query(SQLite::Statement& st, const A&... args) : s(bind(st, args...)) {}
  ~Query() { s.tryReset(); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  bool next() { return s.executeStep(); }
  SQLite::Statement& s;
};

}  // namespace shepherd::sqlite
