#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "domain/decision.hpp"
#include "domain/events.hpp"
#include "domain/snapshot.hpp"

namespace shepherd {

// Accumulates one Decision. Reads see the decision's own earlier changes on top of the snapshot;
// every status change goes through the transition tables. An illegal one voids the whole decision:
// finish() then returns nothing to write, only Decision::refused (a bug in the rules, never a
// partial write).
class DecisionBuilder {
 public:
  DecisionBuilder(const Snapshot& snapshot, const Event& event);

  // A record read here stays valid for the builder's life. It shows this decision's later changes
  // only if the decision had already written the record when it was read.

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

  bool set_job_status(const std::string& job_id, JobStatus to, const std::string& reason);
  bool set_task_status(const std::string& task_id, TaskStatus to, const std::string& reason);
  bool set_node_status(const std::string& node, NodeStatus to, const std::string& reason);

  // Appends an action with a stable id derived from the event key; returns it for the payload.
  Action& add_action(ActionKind kind, const std::string& node, const std::string& job_id = {},
                     const std::string& task_id = {});
  void notify(std::string_view kind, const std::string& job_id,
              const std::vector<std::string>& nodes, const std::string& reason, int attempt);

  void reject(RejectionCode code, std::string field, std::string message);
  void ignore(std::string note);

  TimeMs now() const { return event_.at; }
  const std::string& event_key() const { return event_.key; }
  Decision finish();

 private:
  // The records one kind this decision wrote, in first-write order (which keeps output
  // deterministic). Each is heap-held so a reference the rules hold stays valid as others are
  // added.
  template <typename Record>
  struct Written {
    std::vector<std::unique_ptr<Record>> records;
    std::unordered_map<std::string_view, Record*> by_id;  // keys view the records' own ids
    const Record* find(const std::string& id) const;
  };
  template <typename Record>
  Record& create(Written<Record>& written, Record record, Entity what);
  template <typename Record>
  Record& edit(Written<Record>& written, const Record* current, const std::string& id,
               const char* what);

  const Snapshot& snapshot_;
  const Event& event_;
  Written<Job> jobs_;
  Written<Task> tasks_;
  Written<Node> nodes_;
  Decision decision_;
};

}  // namespace shepherd
