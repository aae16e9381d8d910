#include "store/sqlite_records.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace shepherd::sqlite {
namespace {

using Json = nlohmann::json;

Columns split(std::string_view list) {
  Columns out;
  for (std::size_t at = 0; at < list.size();) {
    std::size_t end = std::min(list.find(',', at), list.size());
    out.emplace_back(list.substr(at, end - at));
    at = list.find_first_not_of(' ', end + 1);
  }
  return out;
}

std::string param(std::size_t i) {
  return std::string("?").append(std::to_string(i));
}

// Hot path: most strings need no escaping, so skip building a json value for them.
void append_json_string(std::string& out, const std::string& s) {
  bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += Json(s).dump();  // escapes; throws on invalid UTF-8
  }
}

void append_json_list(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, items[i]);
  }
  out += ']';
}

std::vector<std::string> parse_list(const std::string& text) {
  return Json::parse(text).get<std::vector<std::string>>();
}

// Missing keys keep their defaults, so a field added later reads back from older rows.
TaskDefinition parse_task_definition(const std::string& text) {
  Json j = Json::parse(text);
  TaskDefinition d;
  d.name = j.value("name", d.name);
  d.revision = j.value("revision", d.revision);
  d.ref = j.value("ref", d.ref);
  d.command = j.value("command", d.command);
  d.env = j.value("env", d.env);
  d.working_dir = j.value("working_dir", d.working_dir);
  if (auto it = j.find("runtime_seconds"); it != j.end() && it->is_number())
    d.runtime_seconds = it->get<double>();
  return d;
}

template <typename T>
T parsed(std::optional<T> (*parse)(std::string_view), const std::string& text,
         std::string_view what) {
  if (auto v = parse(text)) return *v;
  throw StoreError("sqlite: stored " + std::string(what) + " '" + text + "' is not known");
}

// Reads the columns of the current row in order.
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

const Columns& job_columns() {
  static const Columns cols = split(
      "id, cluster_name, job_timestamp, num_nodes, assigned_nodes, submitted_instance_ids, "
      "submitted_task_ids, retry, status, task_definition, reason, recovery_started_at, "
      "recovery_cause, "
      "created_at, updated_at");
  return cols;
}

const Columns& task_columns() {
  static const Columns cols = split(
      "id, node_name, node_index, job_id, job_timestamp, job_num_nodes, task_definition_ref, "
      "task_definition_name, task_definition_revision, cluster_name, instance_id, instance_ref, "
      "retry, status, started, stop_requested, exit_code, reason, created_at, updated_at");
  return cols;
}

const Columns& node_columns() {
  static const Columns cols = split(
      "name, instance_id, instance_ref, cluster_name, status, ip, ibdev, gpus, boot_id, job_id, "
      "operation_id, deadline_at, needs_diagnostic, last_verdict, reason, created_at, updated_at, "
      "node_type, gpu_type, node_pool, locked, registered_at, driver_version, last_diagnostic, "
      "inventory_version");
  return cols;
}

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

std::string json_list(const std::vector<std::string>& items) {
  std::string out;
  append_json_list(out, items);
  return out;
}

// Written by hand rather than through a json value: this runs for every job written.
std::string task_definition_json(const TaskDefinition& d) {
  std::string out = "{\"name\":";
  append_json_string(out, d.name);
  out.append(",\"revision\":").append(std::to_string(d.revision)).append(",\"ref\":");
  append_json_string(out, d.ref);
  out.append(",\"command\":");
  append_json_list(out, d.command);
  out.append(",\"env\":{");
  for (auto it = d.env.begin(); it != d.env.end(); ++it) {
    if (it != d.env.begin()) out += ',';
    append_json_string(out, it->first);
    out += ':';
    append_json_string(out, it->second);
  }
  out.append("},\"working_dir\":");
  append_json_string(out, d.working_dir);
  out.append(",\"runtime_seconds\":");
  if (std::isfinite(d.runtime_seconds)) {
    char buf[32];
    auto end = std::to_chars(buf, buf + sizeof buf, d.runtime_seconds).ptr;  // round-trips
    out.append(buf, end);
  } else {
    out.append("null");  // JSON has no inf/nan; reads back as the default
  }
  return out + "}";
}

Job read_job(const SQLite::Statement& s) {
  Row r(s);
  Job j;
  j.id = r.text();
  j.cluster_name = r.text();
  j.job_timestamp = r.i64();
  j.num_nodes = r.i32();
  j.assigned_nodes = parse_list(r.text());
  j.submitted_instance_ids = parse_list(r.text());
  j.submitted_task_ids = parse_list(r.text());
  j.attempt = r.i32();
  j.status = parsed(parse_job_status, r.text(), "job status");
  j.task_definition = parse_task_definition(r.text());
  j.reason = r.text();
  j.recovery_started_at = r.i64();
  j.recovery_cause = parsed(parse_recovery_cause, r.text(), "recovery cause");
  j.created_at = r.i64();
  j.updated_at = r.i64();
  j.version = r.i64();
  return j;
}

Task read_task(const SQLite::Statement& s) {
  Row r(s);
  Task t;
  t.id = r.text();
  t.node_name = r.text();
  t.node_index = r.i32();
  t.job_id = r.text();
  t.job_timestamp = r.i64();
  t.job_num_nodes = r.i32();
  t.task_definition_ref = r.text();
  t.task_definition_name = r.text();
  t.task_definition_revision = r.i32();
  t.cluster_name = r.text();
  t.instance_id = r.text();
  t.instance_ref = r.text();
  t.attempt = r.i32();
  t.status = parsed(parse_task_status, r.text(), "task status");
  t.started = r.flag();
  t.stop_requested = r.flag();
  t.exit_code = r.maybe_i32();
  t.reason = r.text();
  t.created_at = r.i64();
  t.updated_at = r.i64();
  t.version = r.i64();
  return t;
}

Node read_node(const SQLite::Statement& s) {
  Row r(s);
  Node n;
  n.name = r.text();
  n.instance_id = r.text();
  n.instance_ref = r.text();
  n.cluster_name = r.text();
  n.status = parsed(parse_node_status, r.text(), "node status");
  n.ip = r.text();
  n.ibdev = r.text();
  n.gpus = r.i32();
  n.boot_id = r.text();
  n.job_id = r.text();
  n.operation_id = r.text();
  n.deadline_at = r.i64();
  n.needs_diagnostic = r.flag();
  n.last_verdict = parsed(parse_verdict, r.text(), "verdict");
  n.reason = r.text();
  n.created_at = r.i64();
  n.updated_at = r.i64();
  n.node_type = r.text();
  n.gpu_type = r.text();
  n.node_pool = r.text();
  n.locked = r.flag();
  n.registered_at = r.i64();
  n.driver_version = r.text();
  n.last_diagnostic = r.text();
  n.inventory_version = r.i64();
  n.version = r.i64();
  return n;
}

PendingAction read_pending_action(const SQLite::Statement& s) {
  Row r(s);
  PendingAction p;
  p.action.id = r.text();
  p.action.kind = parsed(parse_action_kind, r.text(), "action kind");
  p.action.node = r.text();
  p.action.job_id = r.text();
  p.action.task_id = r.text();
  p.action.payload = r.text();
  p.action.created_at = r.i64();
  p.attempts = r.i32();
  p.last_error = r.text();
  p.next_attempt_at = r.i64();
  return p;
}

TimelineEntry read_timeline_entry(const SQLite::Statement& s) {
  Row r(s);
  TimelineEntry e;
  e.seq = r.i64();
  e.transition.at = r.i64();
  e.transition.entity = parsed(parse_entity, r.text(), "timeline entity");
  e.transition.id = r.text();
  e.transition.from = r.text();
  e.transition.to = r.text();
  e.transition.reason = r.text();
  return e;
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
