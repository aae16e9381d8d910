#pragma once
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/model.hpp"

namespace shepherd {

// The state the engine decides on. The runtime keeps the whole fleet's state in one (a
// write-through cache of the store); a test builds a small one by hand.
class Snapshot {
 public:
  const Job* job(const std::string& id) const;
  const Task* task(const std::string& id) const;
  const Node* node(const std::string& name) const;

  // The tasks of one attempt of a job, by node index.
  std::vector<const Task*> tasks_of(const std::string& job_id, int attempt) const;
  // Free AVAILABLE nodes, in name order, at most `limit`.
  std::vector<std::string> available_nodes(std::size_t limit) const;

  void put(Job job);
  void put(Task task);
  void put(Node node);

  // In no particular order: sort where the order shows (reports, API answers).
  const std::unordered_map<std::string, Job>& jobs() const { return jobs_; }
  const std::unordered_map<std::string, Node>& nodes() const { return nodes_; }
  const std::unordered_map<std::string, Task>& tasks() const { return tasks_; }

  // The same, ordered by id or name.
  std::vector<const Job*> jobs_by_id() const;
  std::vector<const Node*> nodes_by_name() const;
  std::vector<const Task*> tasks_by_id() const;

 private:
  // Hash maps: the engine looks records up by id on every decision.
  std::unordered_map<std::string, Job> jobs_;
  std::unordered_map<std::string, Node> nodes_;
  std::unordered_map<std::string, Task> tasks_;
  std::unordered_map<std::string, std::vector<std::string>> task_ids_by_job_;
  std::set<std::string> available_;
};

}  // namespace shepherd
