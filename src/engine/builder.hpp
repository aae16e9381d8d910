#pragma once
#include <string>
#include <unordered_map>

#include "domain/decision.hpp"
#include "domain/events.hpp"
#include "domain/snapshot.hpp"

namespace shepherd {

// Accumulates one Decision. Reads see the decision's own earlier changes on top of the snapshot;
// every status change goes through the transition tables, and an illegal one is refused (listed
// in Decision::refused) instead of written.
class DecisionBuilder {
 public:
  DecisionBuilder(const Snapshot& snapshot, const Event& event);

  const Job* job(const std::string& id) const;
  const Task* task(const std::string& id) const;
  const Node* node(const std::string& name) const;
  std::vector<const Task*> tasks_of(const Job& job) const;  // the current attempt's
  std::vector<std::string> snapshot_available(std::size_t limit) const {
    return snapshot_.available_nodes(limit);
  }

  // Mutable copies, recorded as written.
  Job& edit_job(const std::string& id);
  Task& edit_task(const std::string& id);
  Node& edit_node(const std::string& name);

  Job& create_job(Job job);
  Task& create_task(Task task);
  Node& create_node(Node node);

  bool set_status(const std::string& job_id, JobStatus to, const std::string& reason);
  bool set_status_task(const std::string& task_id, TaskStatus to, const std::string& reason);
  bool set_status_node(const std::string& node, NodeStatus to, const std::string& reason);

  // Appends an action with a stable id derived from the event key; returns it for the payload.
  Action& add_action(ActionKind kind, const std::string& node, const std::string& job_id = {},
                     const std::string& task_id = {});
  void notify(std::string_view kind, const std::string& job_id,
              const std::vector<std::string>& nodes, const std::string& reason, int attempt);

  void reject(std::string code, std::string field, std::string message);
  void ignore(std::string note);

  TimeMs now() const { return event_.at; }
  const std::string& event_key() const { return event_.key; }
  Decision finish();

 private:
  template <typename Record>
  Record& create(std::unordered_map<std::string, Record>& changed, Record record,
                 const std::string& id, const char* what);
  template <typename Record>
  Record& edit(std::unordered_map<std::string, Record>& changed, const Record* current,
               const std::string& id, const char* what);

  const Snapshot& snapshot_;
  const Event& event_;
  std::unordered_map<std::string, Job> jobs_;
  std::unordered_map<std::string, Task> tasks_;
  std::unordered_map<std::string, Node> nodes_;
  std::vector<std::string> order_;  // "j:id", "t:id", "n:id" in first-write order (determinism)
  Decision decision_;
};

}  // namespace shepherd
