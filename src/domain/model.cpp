#include "domain/model.hpp"

#include <cctype>

#include "common/clock.hpp"

namespace shepherd {

namespace {

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
  switch (c) {
    case RecoveryCause::None:
      return "";
    case RecoveryCause::TaskFailed:
      return "task_failed";
    case RecoveryCause::NodeLost:
      return "node_lost";
    case RecoveryCause::NodeCrashed:
      return "node_crashed";
  }
  return "";
}

std::optional<RecoveryCause> parse_recovery_cause(std::string_view s) {
  for (auto c : {RecoveryCause::None, RecoveryCause::TaskFailed, RecoveryCause::NodeLost,
                 RecoveryCause::NodeCrashed})
    if (to_string(c) == s) return c;
  return std::nullopt;
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

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char ch : id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
      return false;
  return true;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::None:
      return "none";
    case Verdict::Pass:
      return "pass";
    case Verdict::Fail:
      return "fail";
    case Verdict::Inconclusive:
      return "inconclusive";
  }
  return "?";
}

std::optional<Verdict> parse_verdict(std::string_view s) {
  for (Verdict v : {Verdict::None, Verdict::Pass, Verdict::Fail, Verdict::Inconclusive})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

std::string_view to_string(OtherExitCodes v) {
  return v == OtherExitCodes::Ignore ? "ignore" : "diagnose";
}

std::optional<OtherExitCodes> parse_other_exit_codes(std::string_view s) {
  for (OtherExitCodes v : {OtherExitCodes::Diagnose, OtherExitCodes::Ignore})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

}  // namespace shepherd
