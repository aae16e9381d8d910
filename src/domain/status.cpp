#include "domain/status.hpp"

#include <array>
#include <utility>

#include "common/enum_names.hpp"

namespace shepherd {
namespace {

constexpr EnumNames<JobStatus, 7> kJobNames{{
    {JobStatus::InProgress, "IN_PROGRESS"},
    {JobStatus::PendingHealthcheck, "PENDING_HEALTHCHECK"},
    {JobStatus::PendingRestart, "PENDING_RESTART"},
    {JobStatus::Restarting, "RESTARTING"},
    {JobStatus::Complete, "COMPLETE"},
    {JobStatus::Failed, "FAILED"},
    {JobStatus::UserStopped, "USER_STOPPED"},
}};

constexpr EnumNames<TaskStatus, 3> kTaskNames{{
    {TaskStatus::InProgress, "IN_PROGRESS"},
    {TaskStatus::Complete, "COMPLETE"},
    {TaskStatus::Terminated, "TERMINATED"},
}};

constexpr EnumNames<NodeStatus, 8> kNodeNames{{
    {NodeStatus::Available, "AVAILABLE"},
    {NodeStatus::Unknown, "UNKNOWN"},
    {NodeStatus::Assigned, "ASSIGNED"},
    {NodeStatus::InProgress, "IN_PROGRESS"},
    {NodeStatus::Pending, "PENDING"},
    {NodeStatus::PendingHealthcheck, "PENDING_HEALTHCHECK"},
    {NodeStatus::Rebooting, "REBOOTING"},
    {NodeStatus::Failed, "FAILED"},
}};

using J = JobStatus;
// Job: seed 002's graph, plus the exits every wait needs (FAILED on a timeout, USER_STOPPED from
// any live state) and RESTARTING -> PENDING_HEALTHCHECK for a failure during a restart.
constexpr std::array<std::pair<J, J>, 15> kJobTransitions{{
    {J::InProgress, J::PendingHealthcheck},
    {J::InProgress, J::Complete},
    {J::InProgress, J::Failed},
    {J::InProgress, J::UserStopped},
    {J::PendingHealthcheck, J::PendingRestart},
    {J::PendingHealthcheck, J::Failed},
    {J::PendingHealthcheck, J::UserStopped},
    {J::PendingRestart, J::Restarting},
    {J::PendingRestart, J::Failed},
    {J::PendingRestart, J::UserStopped},
    {J::Restarting, J::InProgress},
    {J::Restarting, J::PendingHealthcheck},
    {J::Restarting, J::Complete},
    {J::Restarting, J::Failed},
    {J::Restarting, J::UserStopped},
}};

using T = TaskStatus;
constexpr std::array<std::pair<T, T>, 2> kTaskTransitions{{
    {T::InProgress, T::Complete},
    {T::InProgress, T::Terminated},
}};

using N = NodeStatus;
// Node: seed 002's graph; UNKNOWN when heartbeats stop and back when they resume; FAILED when a
// diagnostic or a reboot gives up, and AVAILABLE again only through an operator's repair. A node
// in doubt (PENDING) reaches AVAILABLE only through a diagnostic that ran (PENDING_HEALTHCHECK).
constexpr std::array<std::pair<N, N>, 27> kNodeTransitions{{
    {N::Available, N::Assigned},
    {N::Available, N::Unknown},
    {N::Available, N::Pending},  // a reboot-class Xid on an idle node: diagnosed before reuse
    {N::Assigned, N::InProgress},
    {N::Assigned, N::Available},
    {N::Assigned, N::Pending},
    {N::Assigned, N::Unknown},
    {N::InProgress, N::Pending},
    {N::InProgress, N::Assigned},
    {N::InProgress, N::Available},
    {N::InProgress, N::Unknown},
    {N::Pending, N::PendingHealthcheck},
    {N::Pending, N::Rebooting},
    {N::Pending, N::Failed},
    {N::Pending, N::Unknown},
    {N::PendingHealthcheck, N::Rebooting},
    {N::PendingHealthcheck, N::Available},
    {N::PendingHealthcheck, N::Assigned},
    {N::PendingHealthcheck, N::Failed},
    {N::PendingHealthcheck, N::Unknown},
    {N::Rebooting, N::Available},
    {N::Rebooting, N::Failed},
    {N::Unknown, N::Available},
    {N::Unknown, N::Pending},
    {N::Unknown, N::Assigned},
    {N::Unknown, N::Failed},
    {N::Failed, N::Available},
}};

template <typename E, std::size_t K>
bool listed(const std::array<std::pair<E, E>, K>& table, E from, E to) {
  for (const auto& [f, t] : table)
    if (f == from && t == to) return true;
  return false;
}

}  // namespace

std::string_view to_string(JobStatus s) {
  return name_of(kJobNames, s);
}
std::string_view to_string(TaskStatus s) {
  return name_of(kTaskNames, s);
}
std::string_view to_string(NodeStatus s) {
  return name_of(kNodeNames, s);
}

std::optional<JobStatus> parse_job_status(std::string_view s) {
  return value_of(kJobNames, s);
}
std::optional<TaskStatus> parse_task_status(std::string_view s) {
  return value_of(kTaskNames, s);
}
std::optional<NodeStatus> parse_node_status(std::string_view s) {
  return value_of(kNodeNames, s);
}

bool transition_allowed(JobStatus from, JobStatus to) {
  return listed(kJobTransitions, from, to);
}
bool transition_allowed(TaskStatus from, TaskStatus to) {
  return listed(kTaskTransitions, from, to);
}
bool transition_allowed(NodeStatus from, NodeStatus to) {
  return listed(kNodeTransitions, from, to);
}

bool is_terminal(JobStatus s) {
  return s == JobStatus::Complete || s == JobStatus::Failed || s == JobStatus::UserStopped;
}
bool is_terminal(TaskStatus s) {
  return s != TaskStatus::InProgress;
}

}  // namespace shepherd
