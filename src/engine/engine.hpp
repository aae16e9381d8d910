#pragma once
#include <string>

#include "domain/decision.hpp"
#include "domain/events.hpp"
#include "domain/snapshot.hpp"

namespace shepherd {

// The recovery rules of DESIGN.md as a pure function: an event and the state it applies to in,
// a decision out. No I/O, no clock (time is the event's), no randomness.
class Engine {
 public:
  explicit Engine(Policy policy, std::string cluster_name = "shepherd")
      : policy_(std::move(policy)), cluster_name_(std::move(cluster_name)) {}
  Decision decide(const Event& event, const Snapshot& snapshot) const;
  const Policy& policy() const { return policy_; }

 private:
  Policy policy_;
  std::string cluster_name_;
};

// The exit codes a stopped task reports for Shepherd's own SIGTERM / SIGKILL.
bool is_stop_result(int exit_code, int signal);

// "<job>.<attempt>.<node index>": a task's identity carries its attempt, so a stale report of
// an earlier attempt can never touch the current one.
std::string task_id_for(const std::string& job_id, int attempt, int node_index);

}  // namespace shepherd
