#include "domain/snapshot.hpp"

#include <algorithm>

namespace shepherd {

const Job* Snapshot::job(const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const Task* Snapshot::task(const std::string& id) const {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

const Node* Snapshot::node(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<const Task*> Snapshot::tasks_of(const std::string& job_id, int attempt) const {
  std::vector<const Task*> out;
  auto it = task_ids_by_job_.find(job_id);
  if (it == task_ids_by_job_.end()) return out;
  for (const auto& id : it->second) {
    const Task* t = task(id);
    if (t && t->attempt == attempt) out.push_back(t);
  }
  std::sort(out.begin(), out.end(),
            [](const Task* a, const Task* b) { return a->node_index < b->node_index; });
  return out;
}

std::vector<std::string> Snapshot::available_nodes(std::size_t limit) const {
  std::vector<std::string> out;
  for (const auto& name : available_) {
    if (out.size() >= limit) break;
    out.push_back(name);
  }
  return out;
}

namespace {
template <typename Record>
std::vector<const Record*> ordered(const std::unordered_map<std::string, Record>& records) {
  std::vector<std::pair<const std::string*, const Record*>> keyed;
  keyed.reserve(records.size());
  for (const auto& [id, r] : records) keyed.emplace_back(&id, &r);
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return *a.first < *b.first; });
  std::vector<const Record*> out;
  out.reserve(keyed.size());
  for (const auto& [id, r] : keyed) out.push_back(r);
  return out;
}
}  // namespace

std::vector<const Job*> Snapshot::jobs_by_id() const {
  return ordered(jobs_);
}
std::vector<const Node*> Snapshot::nodes_by_name() const {
  return ordered(nodes_);
}
std::vector<const Task*> Snapshot::tasks_by_id() const {
  return ordered(tasks_);
}

// insert_or_assign copies the key before it moves the record, so passing the record's own id is
// safe.
void Snapshot::put(Job job) {
  jobs_.insert_or_assign(job.id, std::move(job));
}

void Snapshot::put(Task task) {
  auto [it, inserted] = tasks_.insert_or_assign(task.id, std::move(task));
  if (inserted) task_ids_by_job_[it->second.job_id].push_back(it->first);
}

void Snapshot::put(Node node) {
  if (node.status == NodeStatus::Available && node.job_id.empty())
    available_.insert(node.name);
  else
    available_.erase(node.name);
  nodes_.insert_or_assign(node.name, std::move(node));
}

}  // namespace shepherd
