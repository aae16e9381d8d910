#include "domain/model.hpp"

#include <cctype>

namespace shepherd {

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
