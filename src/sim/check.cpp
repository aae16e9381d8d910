#include "sim/check.hpp"

namespace shepherd {

std::vector<std::string> check_expectations(const Expectations& expect,
                                            const nlohmann::json& report) {
  std::vector<std::string> problems;
  auto compare = [&](const std::string& what, const nlohmann::json& actual,
                     const nlohmann::json& wanted) {
    if (actual != wanted)
      problems.push_back(what + ": expected " + wanted.dump() + ", got " + actual.dump());
  };
  for (const auto& [job, status] : expect.jobs)
    compare("jobs." + job, report["jobs"].value(job, nlohmann::json{{"status", nullptr}})["status"],
            status);
  for (const auto& [node, status] : expect.nodes)
    compare("nodes." + node, report["nodes"].value(node, nlohmann::json(nullptr)), status);
  for (const auto& [job, retry] : expect.job_retries)
    compare("job_retries." + job,
            report["jobs"].value(job, nlohmann::json{{"retry", nullptr}})["retry"], retry);
  if (expect.notifications)
    compare("notifications", report["notifications"].size(), *expect.notifications);
  const auto& stats = report["stats"];
  if (expect.reboots) compare("stats.reboots", stats["reboots"], *expect.reboots);
  if (expect.diagnostics) compare("stats.diagnostics", stats["diagnostics"], *expect.diagnostics);
  if (expect.restarts) compare("stats.restarts", stats["restarts"], *expect.restarts);
  // Never expected: a refused decision is a bug in the rules, whatever the final states say.
  compare("stats.refused_decisions", stats.value("refused_decisions", 0), 0);
  return problems;
}

}  // namespace shepherd
