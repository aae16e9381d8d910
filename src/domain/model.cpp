#include "domain/model.hpp"

namespace shepherd {

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

}  // namespace shepherd
