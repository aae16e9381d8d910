#include "store/records.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace shepherd::records {
namespace {

using Json = nlohmann::json;

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

}  // namespace

Columns split(std::string_view list) {
  Columns out;
  for (std::size_t at = 0; at < list.size();) {
    std::size_t end = std::min(list.find(',', at), list.size());
    out.emplace_back(list.substr(at, end - at));
    at = list.find_first_not_of(' ', end + 1);
  }
  return out;
}

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

void unknown_value(std::string_view what, const std::string& text) {
  throw StoreError("stored " + std::string(what) + " '" + text + "' is not known");
}

}  // namespace shepherd::records
