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
    if (t && t->retry == attempt) out.push_back(t);
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

void Snapshot::put(const Job& job) {
  jobs_[job.id] = job;
}

void Snapshot::put(const Task& task) {
  auto [it, inserted] = tasks_.insert_or_assign(task.id, task);
  if (inserted) task_ids_by_job_[task.job_id].push_back(task.id);
}

void Snapshot::put(const Node& node) {
  nodes_[node.name] = node;
  if (node.status == NodeStatus::Available && node.job_id.empty())
    available_.insert(node.name);
  else
    available_.erase(node.name);
}

}  // namespace shepherd
