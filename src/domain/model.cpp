#include "domain/model.hpp"

#include <cctype>

#include "common/clock.hpp"
#include "common/enum_names.hpp"

namespace shepherd {

namespace {

constexpr EnumNames<Verdict, 4> kVerdictNames{{
    {Verdict::None, "none"},
    {Verdict::Pass, "pass"},
    {Verdict::Fail, "fail"},
    {Verdict::Inconclusive, "inconclusive"},
}};

constexpr EnumNames<OtherExitCodes, 2> kOtherExitCodeNames{{
    {OtherExitCodes::Diagnose, "diagnose"},
    {OtherExitCodes::Ignore, "ignore"},
}};

constexpr EnumNames<RecoveryCause, 6> kRecoveryCauseNames{{
    {RecoveryCause::None, ""},
    {RecoveryCause::TaskFailed, "task_failed"},
    {RecoveryCause::NodeLost, "node_lost"},
    {RecoveryCause::NodeCrashed, "node_crashed"},
    {RecoveryCause::GpuError, "gpu_error"},
    {RecoveryCause::AgentRestarted, "agent_restarted"},
}};

std::string number_text(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::optional<std::string> seconds_problem(double v) {
  if (!(v > 0)) return "must be > 0, got " + number_text(v);
  if (v > kMaxSeconds)
    return "must be at most " + number_text(kMaxSeconds) + " seconds, got " + number_text(v);
  return std::nullopt;
}

constexpr std::string_view kPolicyFields[] = {
    "max_retries",       "diag_level",    "diag_timeout",  "reboot_timeout",
    "heartbeat_timeout", "start_timeout", "app_exit_codes"};

}  // namespace

std::string_view to_string(RecoveryCause c) {
  return name_of(kRecoveryCauseNames, c);
}

std::optional<RecoveryCause> parse_recovery_cause(std::string_view s) {
  return value_of(kRecoveryCauseNames, s);
}

std::optional<std::string> policy_problem(std::string_view field, const Policy& p) {
  if (field == "max_retries" && p.max_retries < 0)
    return "must be at least 0, got " + std::to_string(p.max_retries);
  if (field == "diag_level" && (p.diag_level < 1 || p.diag_level > 4))
    return "must be in 1..4, got " + std::to_string(p.diag_level);
  if (field == "diag_timeout") return seconds_problem(p.diag_timeout);
  if (field == "reboot_timeout") return seconds_problem(p.reboot_timeout);
  if (field == "heartbeat_timeout") return seconds_problem(p.heartbeat_timeout);
  if (field == "start_timeout") return seconds_problem(p.start_timeout);
  if (field == "app_exit_codes")
    for (int code : p.app_exit_codes)
      if (code < 0 || code > 255) return "exit codes are 0..255, got " + std::to_string(code);
  return std::nullopt;
}

std::optional<std::string> policy_problem(const Policy& p) {
  for (auto field : kPolicyFields)
    if (auto why = policy_problem(field, p)) return std::string(field) + ": " + *why;
  return std::nullopt;
}

bool same_inventory(const Node& a, const Node& b) {
  return a.instance_ref == b.instance_ref && a.cluster_name == b.cluster_name && a.ip == b.ip &&
         a.ibdev == b.ibdev && a.gpus == b.gpus && a.node_type == b.node_type &&
         a.gpu_type == b.gpu_type && a.node_pool == b.node_pool && a.locked == b.locked &&
         a.registered_at == b.registered_at && a.driver_version == b.driver_version &&
         a.created_at == b.created_at;
}

bool same_health(const Node& a, const Node& b) {
  return a.instance_id == b.instance_id && a.status == b.status && a.boot_id == b.boot_id &&
         a.job_id == b.job_id && a.operation_id == b.operation_id &&
         a.deadline_at == b.deadline_at && a.needs_diagnostic == b.needs_diagnostic &&
         a.last_verdict == b.last_verdict && a.last_diagnostic == b.last_diagnostic &&
         a.reason == b.reason && a.updated_at == b.updated_at;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char ch : id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
      return false;
  return true;
}

std::string_view to_string(Verdict v) {
  return name_of(kVerdictNames, v);
}

std::optional<Verdict> parse_verdict(std::string_view s) {
  return value_of(kVerdictNames, s);
}

std::string_view to_string(OtherExitCodes v) {
  return name_of(kOtherExitCodeNames, v);
}

std::optional<OtherExitCodes> parse_other_exit_codes(std::string_view s) {
  return value_of(kOtherExitCodeNames, s);
}

}  // namespace shepherd
