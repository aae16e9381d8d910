#pragma once
#include <optional>
#include <string_view>

namespace shepherd {

// The three state machines of seed 000 / 002. Names are the seeds' own.
enum class JobStatus {
  InProgress,
  PendingHealthcheck,
  PendingRestart,
  Restarting,
  Complete,
  Failed,
  UserStopped,
};

enum class TaskStatus { InProgress, Complete, Terminated };

enum class NodeStatus {
  Available,
  Unknown,
  Assigned,
  InProgress,
  Pending,
  PendingHealthcheck,
  Rebooting,
  Failed,
};

std::string_view to_string(JobStatus s);
std::string_view to_string(TaskStatus s);
std::string_view to_string(NodeStatus s);

std::optional<JobStatus> parse_job_status(std::string_view s);
std::optional<TaskStatus> parse_task_status(std::string_view s);
std::optional<NodeStatus> parse_node_status(std::string_view s);

// The transition tables. A transition not listed is illegal: the engine refuses it and logs it.
bool transition_allowed(JobStatus from, JobStatus to);
bool transition_allowed(TaskStatus from, TaskStatus to);
bool transition_allowed(NodeStatus from, NodeStatus to);

bool is_terminal(JobStatus s);
bool is_terminal(TaskStatus s);

}  // namespace shepherd
