#pragma once
#include "engine/builder.hpp"

namespace shepherd::rules {

// Shared steps of the recovery rules; each takes the builder of the decision being made.
struct Context {
  DecisionBuilder& b;
  const Policy& policy;
};

void launch_attempt(Context c, const std::string& job_id);
void begin_recovery(Context c, const std::string& job_id, const std::string& failed_node,
                    const std::string& reason, RecoveryCause cause = RecoveryCause::TaskFailed);
void start_diagnostic(Context c, const std::string& node, const std::string& reason);
void conclude_diagnosis(Context c, const std::string& job_id);
void conclude_node_alone(Context c, const std::string& node);
void try_restart(Context c, const std::string& job_id);
void fail_job(Context c, const std::string& job_id, const std::string& reason);
void release_node(Context c, const std::string& node, const std::string& job_id,
                  const std::string& reason);
void end_job(Context c, const std::string& job_id, JobStatus final_status,
             const std::string& reason);
// Ends a running task: TERMINATED now, and a stop_task for the node (delivered when reachable).
void stop_task(Context c, const std::string& task_id, const std::string& reason);
void stop_running_tasks(Context c, const std::string& job_id, const std::string& reason);

std::string seconds_text(double s);

}  // namespace shepherd::rules
