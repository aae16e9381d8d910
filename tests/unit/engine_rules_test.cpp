// One test per recovery rule and open case (tests/unit/engine_cases.hpp), plus the transition
// tables: every legal transition is exercised by some case, every other one is refused.
#include <gmock/gmock.h>

#include "engine_agent_cases.hpp"
#include "engine_cases.hpp"

namespace shepherd::testing {
namespace {

Policy app_codes_policy() {
  Policy p;
  p.app_exit_codes = {2};
  return p;
}

using Case = void (*)(EngineHarness&);
struct NamedCase {
  const char* name;
  Case run;
};

void PrintTo(const NamedCase& c, std::ostream* os) {
  *os << c.name;
}

#define CASE(fn) \
  NamedCase {    \
#fn, &fn     \
  }
const NamedCase kCases[] = {
    CASE(rule1_all_tasks_exit_0_completes_job),
    CASE(rule2_exit_1_stops_peers_and_diagnoses_failed_node),
    CASE(rule3_diagnostic_pass_fails_job_and_frees_node),
    CASE(rule4_gpu_fault_with_retry_left_reboots),
    CASE(rule5_gpu_fault_without_retry_fails_job_and_node),
    CASE(rule6_rebooted_node_restarts_job_same_indices),
    CASE(rule7_user_stop_in_progress),
    CASE(reboot_timeout_fails_node_and_job),
    CASE(diagnostic_timeout_is_inconclusive_and_reboots),
    CASE(heartbeat_loss_of_running_node_recovers_on_return),
    CASE(heartbeat_loss_without_return_fails_job),
    CASE(heartbeat_loss_of_free_node_and_return),
    CASE(heartbeat_loss_of_free_node_past_deadline_fails_node),
    CASE(exit_code_137_is_a_failure_that_gets_diagnosed),
    CASE(exit_code_139_segfault_is_a_failure_that_gets_diagnosed),
    CASE(app_exit_code_policy_fails_without_diagnostic),
    CASE(duplicate_event_changes_nothing),
    CASE(stale_task_event_after_restart_is_ignored),
    CASE(two_tasks_failing_at_once_one_recovery),
    CASE(failure_while_restarting_uses_no_second_retry),
    CASE(user_stop_pending_healthcheck_lets_diagnostic_finish),
    CASE(user_stop_pending_restart_lets_reboot_finish),
    CASE(user_stop_restarting),
    CASE(user_stop_finished_job_is_refused),
    CASE(node_lost_during_diagnosis_is_diagnosed_again_on_return),
    CASE(held_node_lost_during_pending_restart_delays_restart),
    CASE(diagnostic_fault_on_free_node_fails_it),
    CASE(failed_task_before_start_is_recovered),
    CASE(operator_marks_free_node_failed_path),
    CASE(restarted_tasks_can_finish_before_all_report_running),
    CASE(app_exit_code_while_restarting_fails_job),
    CASE(verdict_before_start_report),
    CASE(mixed_verdicts_reboot_only_the_faulty_node),
    CASE(lost_node_back_healthy_restarts_without_reboot),
    CASE(task_that_never_starts_times_out_and_is_recovered),
    CASE(start_payload_environment_overrides_definition),
    CASE(xid_reboot_class_under_running_task_starts_recovery),
    CASE(xid_reboot_class_under_starting_task_starts_recovery),
    CASE(xid_application_class_is_recorded_only),
    CASE(xid_reboot_class_on_idle_node_diagnoses_it),
    CASE(task_interrupted_by_agent_restart_restarts_after_pass),
    CASE(task_killed_without_agent_restart_fails_after_pass),
};
#undef CASE

class EngineCase : public ::testing::TestWithParam<NamedCase> {};

TEST_P(EngineCase, Holds) {
  EngineHarness h(app_codes_policy());
  GetParam().run(h);
}

INSTANTIATE_TEST_SUITE_P(Rules, EngineCase, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

template <typename E>
void check_table(const char* entity, std::initializer_list<E> all,
                 const std::set<std::string>& seen) {
  for (E from : all)
    for (E to : all) {
      const std::string key = std::string(entity) + ":" + std::string(to_string(from)) + ">" +
                              std::string(to_string(to));
      if (transition_allowed(from, to))
        EXPECT_TRUE(seen.count(key)) << key << " is legal but no case exercises it";
      else
        EXPECT_FALSE(seen.count(key)) << key << " is illegal but was written";
    }
}

TEST(TransitionTables, EveryLegalTransitionIsExercisedAndNoOtherIsWritten) {
  std::set<std::string> seen;
  for (const auto& c : kCases) {
    EngineHarness h(app_codes_policy());
    c.run(h);
    seen.insert(h.transitions.begin(), h.transitions.end());
  }
  check_table("job",
              {J::InProgress, J::PendingHealthcheck, J::PendingRestart, J::Restarting, J::Complete,
               J::Failed, J::UserStopped},
              seen);
  check_table("task", {T::InProgress, T::Complete, T::Terminated}, seen);
  check_table("node",
              {N::Available, N::Unknown, N::Assigned, N::InProgress, N::Pending,
               N::PendingHealthcheck, N::Rebooting, N::Failed},
              seen);
}

TEST(TransitionTables, TerminalStatesHaveNoExit) {
  for (J from : {J::Complete, J::Failed, J::UserStopped})
    for (J to : {J::InProgress, J::PendingHealthcheck, J::PendingRestart, J::Restarting,
                 J::Complete, J::Failed, J::UserStopped})
      EXPECT_FALSE(transition_allowed(from, to));
  EXPECT_FALSE(transition_allowed(T::Complete, T::Terminated));
  EXPECT_FALSE(transition_allowed(T::Terminated, T::InProgress));
}

TEST(TransitionTables, StatusNamesRoundTrip) {
  for (J s : {J::InProgress, J::PendingHealthcheck, J::PendingRestart, J::Restarting, J::Complete,
              J::Failed, J::UserStopped})
    EXPECT_EQ(parse_job_status(to_string(s)), s);
  for (N s : {N::Available, N::Unknown, N::Assigned, N::InProgress, N::Pending,
              N::PendingHealthcheck, N::Rebooting, N::Failed})
    EXPECT_EQ(parse_node_status(to_string(s)), s);
  EXPECT_EQ(parse_job_status("FAILED_OTHERS"), std::nullopt);  // the seeds' undefined state
}

}  // namespace
}  // namespace shepherd::testing
