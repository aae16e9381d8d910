#include "store/mariadb_connection.hpp"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

namespace shepherd::mariadb {
namespace {

using Clock = std::chrono::steady_clock;

int parse_seconds(std::string_view text, std::string_view key) {
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 1 || v > 3600)
    throw StoreError("store URL: " + std::string(key) +
                     " must be whole seconds from 1 to 3600, not '" + std::string(text) + "'");
  return v;
}

std::string_view without_prefix(std::string_view s, std::string_view prefix) {
  return s.substr(prefix.size());
}

}  // namespace

std::string Endpoint::describe() const {
  std::string out = "mariadb://" + user + "@" + host;
  if (socket.empty()) out += ":" + std::to_string(port);
  out += "/" + database;
  if (!socket.empty()) out += "?socket=" + socket;
  return out;
}

Endpoint parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "mariadb://";
  if (url.substr(0, kScheme.size()) != kScheme)
    throw StoreError("store URL must start with mariadb:// (MariaDB or MySQL), e.g. " +
                     std::string("mariadb://shepherd@db1:3306/devops_platform"));
  std::string_view rest = without_prefix(url, kScheme);
  Endpoint e;
  const auto at = rest.find('@');
  const auto slash = rest.find('/');
  if (at == std::string_view::npos || (slash != std::string_view::npos && at > slash))
    throw StoreError("store URL: no user (mariadb://USER@HOST/DATABASE)");
  std::string_view user = rest.substr(0, at);
  if (user.find(':') != std::string_view::npos)
    throw StoreError(
        "store URL: a password does not belong in the URL (it would reach logs and process "
        "lists); give it in SHEPHERD_STORE_PASSWORD or a file named by store.password_file");
  if (user.empty()) throw StoreError("store URL: the user is empty");
  e.user = std::string(user);
  rest = rest.substr(at + 1);
  const auto path = rest.find('/');
  if (path == std::string_view::npos)
    throw StoreError("store URL: no database (mariadb://USER@HOST/DATABASE)");
  std::string_view hostport = rest.substr(0, path);
  std::string_view tail = rest.substr(path + 1);
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) throw StoreError("store URL: unclosed [ in the host");
    e.host = std::string(hostport.substr(1, close - 1));
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport.front() != ':')
      throw StoreError("store URL: unexpected text after the host");
  } else {
    const auto colon = hostport.find(':');
    e.host = std::string(hostport.substr(0, colon));
    hostport = colon == std::string_view::npos ? std::string_view() : hostport.substr(colon);
  }
  if (e.host.empty()) throw StoreError("store URL: the host is empty");
  if (!hostport.empty()) {
    std::string_view digits = hostport.substr(1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535)
      throw StoreError("store URL: the port must be a number from 1 to 65535, not '" +
                       std::string(digits) + "'");
    e.port = port;
  }
  const auto question = tail.find('?');
  e.database = std::string(tail.substr(0, question));
  if (e.database.empty()) throw StoreError("store URL: the database is empty");
  quoted_identifier(e.database, "store URL: the database");
  if (question != std::string_view::npos) {
    std::string_view query = tail.substr(question + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos)
        throw StoreError("store URL: option '" + std::string(pair) + "' has no value");
      std::string_view key = pair.substr(0, eq), val = pair.substr(eq + 1);
      if (key == "socket") {
        if (val.empty() || val.front() != '/')
          throw StoreError("store URL: socket must be an absolute path");
        e.socket = std::string(val);
      } else if (key == "connect_timeout") {
        e.connect_timeout_s = parse_seconds(val, key);
      } else if (key == "io_timeout") {
        e.io_timeout_s = parse_seconds(val, key);
      } else if (key == "reconnect_timeout") {
        e.reconnect_timeout_s = parse_seconds(val, key);
      } else {
        throw StoreError("store URL: unknown option '" + std::string(key) +
                         "' (known: socket, connect_timeout, io_timeout, reconnect_timeout)");
      }
    }
  }
  return e;
}

bool Error::connection_lost() const {
  switch (code) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_CONN_HOST_ERROR:
    case CR_CONNECTION_ERROR:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MariaDB 10.5+), absent from older headers
      return true;
    default:
      return false;
  }
}

bool Error::duplicate_key() const {
  return code == ER_DUP_ENTRY;
}

std::string RowReader::text() {
  const auto& v = row_.at(i_++);
  return v ? *v : std::string();
}

std::int64_t RowReader::i64() {
  const auto& v = row_.at(i_++);
  if (!v) return 0;
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size())
    throw StoreError("mariadb: column " + std::to_string(i_ - 1) + " is not an integer: '" + *v +
                     "'");
  return out;
}

int RowReader::i32() {
  return static_cast<int>(i64());
}

std::optional<int> RowReader::maybe_i32() {
  if (!row_.at(i_)) {
    ++i_;
    return std::nullopt;
  }
  return i32();
}

std::string quoted_identifier(std::string_view name, std::string_view what) {
  bool ok = !name.empty() && name.size() <= 64 && !(name.front() >= '0' && name.front() <= '9');
  for (char c : name)
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok)
    throw StoreError(std::string(what) + " '" + std::string(name) +
                     "' must be letters, digits and '_', not starting with a digit, at most 64");
  return "`" + std::string(name) + "`";
}

Connection::Connection(Endpoint endpoint, std::function<void(Connection&)> on_connect)
    : endpoint_(std::move(endpoint)), on_connect_(std::move(on_connect)) {
  connect();
}

Connection::~Connection() {
  close();
}

void Connection::close() {
  for (auto& [sql, stmt] : statements_) mysql_stmt_close(stmt);
  statements_.clear();
  if (db_) mysql_close(db_);
  db_ = nullptr;
}

void Connection::connect() {
  db_ = mysql_init(nullptr);
  if (!db_) throw StoreError("mariadb: out of memory");
  unsigned connect_timeout = static_cast<unsigned>(endpoint_.connect_timeout_s);
  unsigned io_timeout = static_cast<unsigned>(endpoint_.io_timeout_s);
  my_bool no = 0;
  mysql_options(db_, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(db_, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_options(db_, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  // The store reconnects itself: the library's silent reconnect would lose a transaction's state.
  mysql_options(db_, MYSQL_OPT_RECONNECT, &no);
  mysql_options(db_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const char* socket = endpoint_.socket.empty() ? nullptr : endpoint_.socket.c_str();
  // FOUND_ROWS: an UPDATE reports the rows it matched, which the version checks count.
  if (!mysql_real_connect(db_, endpoint_.host.c_str(), endpoint_.user.c_str(),
                          endpoint_.password.c_str(), endpoint_.database.c_str(), endpoint_.port,
                          socket, CLIENT_FOUND_ROWS))
    fail("connect");
  session_id_ = mysql_thread_id(db_);
  // Strict: a value that does not fit is an error, never silently cut. UTC, so no time moves.
  exec(
      "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,"
      "ERROR_FOR_DIVISION_BY_ZERO', time_zone = '+00:00'");
  if (on_connect_) {
    try {
      on_connect_(*this);
    } catch (...) {
      close();  // never left connected without what on_connect holds (the writer lock)
      throw;
    }
  }
  previous_session_id_ = session_id_;  // for the next connect: the last session fully made
}

void Connection::reconnect() {
  const auto deadline = Clock::now() + std::chrono::seconds(endpoint_.reconnect_timeout_s);
  for (;;) {
    close();
    try {
      connect();
      ++reconnects_;
      return;
    } catch (const Error& e) {
      if (!e.connection_lost() || Clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void Connection::fail(std::string_view what) {
  const unsigned code = db_ ? mysql_errno(db_) : 0;
  const std::string message = db_ ? mysql_error(db_) : "no connection";
  throw Error(code, "mariadb " + endpoint_.describe() + ": " + std::string(what) + ": " + message +
                        " (error " + std::to_string(code) + ")");
}

void Connection::fail(st_mysql_stmt* stmt, std::string_view what) {
  const unsigned code = mysql_stmt_errno(stmt);
  throw Error(code, "mariadb " + endpoint_.describe() + ": " + std::string(what) + ": " +
                        mysql_stmt_error(stmt) + " (error " + std::to_string(code) + ")");
}

void Connection::exec(std::string_view sql) {
  if (!db_) reconnect();
  if (mysql_real_query(db_, sql.data(), static_cast<unsigned long>(sql.size())) != 0)
    fail(sql.substr(0, 80));
  // A statement that returns rows (SELECT GET_LOCK, ...) through exec: read and drop them.
  if (MYSQL_RES* res = mysql_store_result(db_))
    mysql_free_result(res);
  else if (mysql_field_count(db_) != 0)
    fail(sql.substr(0, 80));
}

st_mysql_stmt* Connection::prepared(const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  MYSQL_STMT* stmt = mysql_stmt_init(db_);
  if (!stmt) fail("prepare");
  if (mysql_stmt_prepare(stmt, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    const unsigned code = mysql_stmt_errno(stmt);
    const std::string message = mysql_stmt_error(stmt);
    mysql_stmt_close(stmt);
    throw Error(code, "mariadb " + endpoint_.describe() + ": prepare " + sql.substr(0, 80) + ": " +
                          message + " (error " + std::to_string(code) + ")");
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

st_mysql_stmt* Connection::execute(const std::string& sql, const std::vector<Value>& params) {
  if (!db_) reconnect();
  MYSQL_STMT* stmt = prepared(sql);
  if (mysql_stmt_param_count(stmt) != params.size())
    throw StoreError("mariadb: " + std::to_string(params.size()) + " parameters for " +
                     std::to_string(mysql_stmt_param_count(stmt)) + " in " + sql.substr(0, 80));
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<long long> ints(params.size());
  std::vector<unsigned long> lengths(params.size());
  static char empty[1] = {0};
  for (std::size_t i = 0; i < params.size(); ++i) {
    MYSQL_BIND& b = binds[i];
    std::memset(&b, 0, sizeof b);
    if (const auto* n = std::get_if<std::int64_t>(&params[i])) {
      ints[i] = *n;
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &ints[i];
    } else if (const auto* s = std::get_if<std::string_view>(&params[i])) {
      lengths[i] = static_cast<unsigned long>(s->size());
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = s->empty() ? empty : const_cast<char*>(s->data());
      b.buffer_length = lengths[i];
      b.length = &lengths[i];
    } else {
      b.buffer_type = MYSQL_TYPE_NULL;
    }
  }
  if (!binds.empty() && mysql_stmt_bind_param(stmt, binds.data()) != 0) fail(stmt, "bind");
  if (mysql_stmt_execute(stmt) != 0) fail(stmt, sql.substr(0, 80));
  return stmt;
}

std::uint64_t Connection::run(const std::string& sql, const std::vector<Value>& params) {
  MYSQL_STMT* stmt = execute(sql, params);
  last_insert_id_ = static_cast<std::int64_t>(mysql_stmt_insert_id(stmt));
  const auto rows = mysql_stmt_affected_rows(stmt);
  return rows == static_cast<my_ulonglong>(-1) ? 0 : rows;
}

std::vector<Row> Connection::query(const std::string& sql, const std::vector<Value>& params) {
  MYSQL_STMT* stmt = execute(sql, params);
  const unsigned columns = mysql_stmt_field_count(stmt);
  std::vector<Row> out;
  if (columns == 0) return out;
  if (mysql_stmt_store_result(stmt) != 0) fail(stmt, "read result");
  struct Freed {
    MYSQL_STMT* s;
    ~Freed() { mysql_stmt_free_result(s); }
  } freed{stmt};
  constexpr std::size_t kBuffer = 256;  // longer values are fetched again at their size
  std::vector<std::string> buffers(columns, std::string(kBuffer, '\0'));
  std::vector<MYSQL_BIND> binds(columns);
  std::vector<unsigned long> lengths(columns);
  std::vector<my_bool> nulls(columns), errors(columns);
  for (unsigned i = 0; i < columns; ++i) {
    MYSQL_BIND& b = binds[i];
    std::memset(&b, 0, sizeof b);
    b.buffer_type = MYSQL_TYPE_STRING;
    b.buffer = buffers[i].data();
    b.buffer_length = kBuffer;
    b.length = &lengths[i];
    b.is_null = &nulls[i];
    b.error = &errors[i];
  }
  if (mysql_stmt_bind_result(stmt, binds.data()) != 0) fail(stmt, "bind result");
  for (;;) {
    const int rc = mysql_stmt_fetch(stmt);
    if (rc == MYSQL_NO_DATA) break;
    if (rc == 1) fail(stmt, "fetch");
    Row row(columns);
    for (unsigned i = 0; i < columns; ++i) {
      if (nulls[i]) continue;
      if (lengths[i] <= kBuffer) {
        row[i].emplace(buffers[i].data(), lengths[i]);
        continue;
      }
      std::string whole(lengths[i], '\0');
      MYSQL_BIND b = binds[i];
      b.buffer = whole.data();
      b.buffer_length = lengths[i];
      if (mysql_stmt_fetch_column(stmt, &b, i, 0) != 0) fail(stmt, "fetch column");
      row[i] = std::move(whole);
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace shepherd::mariadb
