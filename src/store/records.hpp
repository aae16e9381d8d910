#pragma once
// Internal to the stores: how records map onto rows, shared by every dialect. A dialect reads a
// row through its own cursor type, which hands out the current row's columns in order:
//   text() -> std::string, i64() -> std::int64_t, i32() -> int, flag() -> bool,
//   maybe_i32() -> std::optional<int> (NULL: nullopt).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace shepherd::records {

using Columns = std::vector<std::string>;

// "a, b, c" -> {"a", "b", "c"}.
Columns split(std::string_view list);

// Column orders of the record tables, key first; the writers and readers follow them. A dialect
// may name a column otherwise (seed 004's `is_locked`) but keeps the order.
const Columns& job_columns();
const Columns& task_columns();
const Columns& node_columns();

// Lists and the task definition are stored as JSON text.
std::string json_list(const std::vector<std::string>& items);
std::string task_definition_json(const TaskDefinition& d);
std::vector<std::string> parse_list(const std::string& text);
TaskDefinition parse_task_definition(const std::string& text);

// A stored status (or kind) this build does not know: a newer build wrote it, or a hand's edit.
[[noreturn]] void unknown_value(std::string_view what, const std::string& text);

template <typename T>
T parsed(std::optional<T> (*parse)(std::string_view), const std::string& text,
         std::string_view what) {
  if (auto v = parse(text)) return *v;
  unknown_value(what, text);
}

template <typename Row>
Job read_job(Row r) {
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

template <typename Row>
Task read_task(Row r) {
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

template <typename Row>
Node read_node(Row r) {
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

// Columns: id, kind, node, job_id, task_id, payload, created_at, attempts, last_error,
// next_attempt_at.
template <typename Row>
PendingAction read_pending_action(Row r) {
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

// Columns: seq, at, entity, id, from_status, to_status, reason.
template <typename Row>
TimelineEntry read_timeline_entry(Row r) {
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

}  // namespace shepherd::records
