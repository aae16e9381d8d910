#include "engine/builder.hpp"

#include <stdexcept>

namespace shepherd {

DecisionBuilder::DecisionBuilder(const Snapshot& snapshot, const Event& event)
    : snapshot_(snapshot), event_(event) {
  decision_.transitions.reserve(4);  // most decisions make one to three
}

namespace {
const std::string& id_of(const Job& r) {
  return r.id;
}
const std::string& id_of(const Task& r) {
  return r.id;
}
const std::string& id_of(const Node& r) {
  return r.name;
}
}  // namespace

template <typename Record>
const Record* DecisionBuilder::Written<Record>::find(const std::string& id) const {
  auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : it->second;
}

const Job* DecisionBuilder::job(const std::string& id) const {
  const Job* j = jobs_.find(id);
  return j ? j : snapshot_.job(id);
}

const Task* DecisionBuilder::task(const std::string& id) const {
  const Task* t = tasks_.find(id);
  return t ? t : snapshot_.task(id);
}

const Node* DecisionBuilder::node(const std::string& name) const {
  const Node* n = nodes_.find(name);
  return n ? n : snapshot_.node(name);
}

std::vector<const Task*> DecisionBuilder::tasks_of(const Job& job) const {
  std::vector<const Task*> out;
  out.reserve(job.submitted_task_ids.size());
  for (const auto& id : job.submitted_task_ids)
    if (const Task* t = task(id)) out.push_back(t);
  return out;
}

template <typename Record>
Record& DecisionBuilder::edit(Written<Record>& written, const Record* current,
                              const std::string& id, const char* what) {
  if (auto it = written.by_id.find(id); it != written.by_id.end()) return *it->second;
  if (!current) throw std::logic_error(std::string("engine edits a missing ") + what + " " + id);
  Record& copy = *written.records.emplace_back(std::make_unique<Record>(*current));
  written.by_id.emplace(id_of(copy), &copy);
  copy.updated_at = now();
  return copy;
}

Job& DecisionBuilder::edit_job(const std::string& id) {
  return edit(jobs_, snapshot_.job(id), id, "job");
}
Task& DecisionBuilder::edit_task(const std::string& id) {
  return edit(tasks_, snapshot_.task(id), id, "task");
}
Node& DecisionBuilder::edit_node(const std::string& name) {
  return edit(nodes_, snapshot_.node(name), name, "node");
}

template <typename Record>
Record& DecisionBuilder::create(Written<Record>& written, Record record, Entity what) {
  record.created_at = record.updated_at = now();
  record.version = 0;
  decision_.transitions.push_back(
      {what, id_of(record), "", std::string(to_string(record.status)), record.reason, now()});
  if (written.by_id.count(id_of(record)))
    throw std::logic_error("engine creates " + std::string(to_string(what)) + " " + id_of(record) +
                           " twice");
  Record& created = *written.records.emplace_back(std::make_unique<Record>(std::move(record)));
  written.by_id.emplace(id_of(created), &created);
  return created;
}

Job& DecisionBuilder::create_job(Job job) {
  return create(jobs_, std::move(job), Entity::Job);
}
Task& DecisionBuilder::create_task(Task task) {
  return create(tasks_, std::move(task), Entity::Task);
}
Node& DecisionBuilder::create_node(Node node) {
  return create(nodes_, std::move(node), Entity::Node);
}

namespace {
template <typename Status>
bool change(Decision& d, Entity entity, const std::string& id, Status& current, Status to,
            std::string& reason_field, const std::string& reason, TimeMs at) {
  if (current == to) return true;
  if (!transition_allowed(current, to)) {
    d.refused.push_back(std::string(to_string(entity)) + " " + id + ": " +
                        std::string(to_string(current)) + " -> " + std::string(to_string(to)) +
                        " is not a legal transition (" + reason + ")");
    return false;
  }
  d.transitions.push_back(
      {entity, id, std::string(to_string(current)), std::string(to_string(to)), reason, at});
  current = to;
  reason_field = reason;
  return true;
}
}  // namespace

bool DecisionBuilder::set_job_status(const std::string& job_id, JobStatus to,
                                     const std::string& reason) {
  const Job* j = job(job_id);
  if (!j) return false;
  if (j->status == to) return true;
  Job& e = edit_job(job_id);
  return change(decision_, Entity::Job, job_id, e.status, to, e.reason, reason, now());
}

bool DecisionBuilder::set_task_status(const std::string& task_id, TaskStatus to,
                                      const std::string& reason) {
  const Task* t = task(task_id);
  if (!t) return false;
  if (t->status == to) return true;
  Task& e = edit_task(task_id);
  return change(decision_, Entity::Task, task_id, e.status, to, e.reason, reason, now());
}

bool DecisionBuilder::set_node_status(const std::string& name, NodeStatus to,
                                      const std::string& reason) {
  const Node* n = node(name);
  if (!n) return false;
  if (n->status == to) return true;
  Node& e = edit_node(name);
  return change(decision_, Entity::Node, name, e.status, to, e.reason, reason, now());
}

Action& DecisionBuilder::add_action(ActionKind kind, const std::string& node,
                                    const std::string& job_id, const std::string& task_id) {
  Action a;
  a.id = event_.key + "/" + std::to_string(decision_.actions.size());
  a.kind = kind;
  a.node = node;
  a.job_id = job_id;
  a.task_id = task_id;
  a.created_at = now();
  decision_.actions.push_back(std::move(a));
  return decision_.actions.back();
}

void DecisionBuilder::notify(std::string_view kind, const std::string& job_id,
                             const std::vector<std::string>& nodes, const std::string& reason,
                             int attempt) {
  Action& a = add_action(ActionKind::Notify, nodes.empty() ? "" : nodes.front(), job_id);
  a.payload = notify_payload(kind, job_id, nodes, reason, attempt);
}

void DecisionBuilder::reject(RejectionCode code, std::string field, std::string message) {
  decision_.rejection = Rejection{code, std::move(field), std::move(message)};
}

void DecisionBuilder::ignore(std::string note) {
  decision_.note = std::move(note);
}

Decision DecisionBuilder::finish() {
  if (decision_.rejection) {  // a refused command writes nothing
    Decision refused;
    refused.rejection = std::move(decision_.rejection);
    return refused;
  }
  if (!decision_.refused.empty()) {  // a decision is all or nothing: one illegal step voids it
    Decision refused;
    refused.refused = std::move(decision_.refused);
    refused.note = "decision refused whole: " + refused.refused.front();
    return refused;
  }
  auto take = [](auto& written, auto& out) {
    out.reserve(written.records.size());
    for (auto& r : written.records) out.push_back(std::move(*r));
  };
  take(jobs_, decision_.jobs);
  take(tasks_, decision_.tasks);
  take(nodes_, decision_.nodes);
  return std::move(decision_);
}

}  // namespace shepherd
