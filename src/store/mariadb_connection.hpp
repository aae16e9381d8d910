#pragma once
// Internal to the MariaDB store: one client connection (MariaDB Connector/C) with prepared
// statements, typed parameters and rows of text, and the errors mapped onto the Store's.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "store/store.hpp"

struct st_mysql;
struct st_mysql_stmt;

namespace shepherd::mariadb {

// Where the database is. The password is never part of a message.
struct Endpoint {
  std::string host = "localhost";
  unsigned port = 3306;
  std::string socket;  // a Unix socket instead of TCP (host "localhost")
  std::string user;
  std::string database;
  std::string password;  // SECRET
  int connect_timeout_s = 5;
  // A read or write that hangs this long (a dead server, a cut network) fails instead of blocking
  // the controller's loop forever.
  int io_timeout_s = 30;
  // How long a lost connection is tried again before the call fails.
  int reconnect_timeout_s = 30;

  // "mariadb://USER@HOST[:PORT]/DATABASE[?socket=PATH]" without the password.
  std::string describe() const;
};

// Parses "mariadb://USER@HOST[:PORT]/DATABASE[?socket=PATH&connect_timeout=S&io_timeout=S]".
// A password in the URL is refused: URLs end up in logs, process lists and shell histories.
// Throws StoreError naming what is wrong.
Endpoint parse_url(std::string_view url);

// A server's refusal or a lost connection, with the server's (or client's) error number.
class Error : public StoreError {
 public:
  Error(unsigned code, const std::string& message) : StoreError(message), code(code) {}
  unsigned code;
  // The connection is gone (server restarted, network cut, timed out): another connection may
  // succeed. What the lost statement did is unknown.
  bool connection_lost() const;
  bool duplicate_key() const;  // ER_DUP_ENTRY
};

// A parameter of a prepared statement.
using Value = std::variant<std::nullptr_t, std::int64_t, std::string_view>;
inline Value value(std::int64_t v) {
  return v;
}
inline Value value(int v) {
  return std::int64_t{v};
}
inline Value value(bool v) {
  return std::int64_t{v ? 1 : 0};
}
inline Value value(std::string_view v) {
  return v;
}
inline Value value(const std::string& v) {
  return std::string_view(v);
}
// A Value views its string: a temporary's would dangle before the statement runs.
Value value(std::string&&) = delete;
inline Value value(const char* v) {
  return std::string_view(v);
}
inline Value value(const std::optional<int>& v) {
  return v ? Value(std::int64_t{*v}) : Value(nullptr);
}

// One row of a result: each column as text (nullopt: NULL).
using Row = std::vector<std::optional<std::string>>;

// The cursor records.hpp's readers take, over one row.
class RowReader {
 public:
  // Reads from column `first` on.
  explicit RowReader(const Row& row, std::size_t first = 0) : row_(row), i_(first) {}
  std::string text();
  std::int64_t i64();
  int i32();
  bool flag() { return i64() != 0; }
  std::optional<int> maybe_i32();

 private:
  const Row& row_;
  std::size_t i_;
};

class Connection {
 public:
  // on_connect runs on each new connection, the first and every one made again (a session lock
  // to take again, say); what it throws fails the connect.
  explicit Connection(Endpoint endpoint, std::function<void(Connection&)> on_connect = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A statement without parameters or result, through the text protocol (DDL, START TRANSACTION).
  void exec(std::string_view sql);
  // A prepared statement (kept per SQL text) with its parameters; returns the rows it matched.
  std::uint64_t run(const std::string& sql, const std::vector<Value>& params);
  std::vector<Row> query(const std::string& sql, const std::vector<Value>& params);
  // The AUTO_INCREMENT value the last run() inserted.
  std::int64_t last_insert_id() const { return last_insert_id_; }

  template <typename... A>
  std::uint64_t run_with(const std::string& sql, const A&... args) {
    return run(sql, {value(args)...});
  }
  template <typename... A>
  std::vector<Row> query_with(const std::string& sql, const A&... args) {
    return query(sql, {value(args)...});
  }

  // Drops the connection and its statements and connects again, trying until the endpoint's
  // reconnect_timeout_s; throws Error when the server stays unreachable.
  void reconnect();
  std::uint64_t reconnects() const { return reconnects_; }
  // The server's id of this session; and of the last session fully made before it (on_connect
  // succeeded; 0: none), which on_connect may find still holding what it takes.
  std::uint64_t session_id() const { return session_id_; }
  std::uint64_t previous_session_id() const { return previous_session_id_; }
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  void connect();
  void close();
  st_mysql_stmt* prepared(const std::string& sql);
  st_mysql_stmt* execute(const std::string& sql, const std::vector<Value>& params);
  [[noreturn]] void fail(std::string_view what);
  [[noreturn]] void fail(st_mysql_stmt* stmt, std::string_view what);

  Endpoint endpoint_;
  std::function<void(Connection&)> on_connect_;
  st_mysql* db_ = nullptr;
  std::unordered_map<std::string, st_mysql_stmt*> statements_;
  std::uint64_t reconnects_ = 0;
  std::int64_t last_insert_id_ = 0;
  std::uint64_t session_id_ = 0, previous_session_id_ = 0;
};

// `name` quoted as an identifier (`name`), after checking it is a plain one: letters, digits and
// '_', not starting with a digit, at most 64 characters. Throws StoreError naming `what`.
std::string quoted_identifier(std::string_view name, std::string_view what);

}  // namespace shepherd::mariadb
