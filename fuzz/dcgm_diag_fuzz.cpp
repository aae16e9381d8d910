// libFuzzer target: the reader of `dcgmi diag -j` output (parse_dcgm_diag), with a zero and a
// non-zero exit status. It never throws (dcgm_diag.hpp) and never passes on garbage: a finding is
// an exception, a verdict its results do not support, or a report that cannot be stored.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>
#include <vector>

#include "health/dcgm_diag.hpp"

namespace {

using shepherd::Verdict;
using namespace shepherd::health;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool one_line(const std::string& s, std::size_t max) {
  return s.size() <= max && std::none_of(s.begin(), s.end(), [](char c) {
           return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
         });
}

void check(std::string_view text, int exit_code, const DiagReport& r) {
  require(r.verdict == Verdict::Pass || r.verdict == Verdict::Fail ||
          r.verdict == Verdict::Inconclusive);
  require((r.problem == DiagProblem::None) == (r.verdict != Verdict::Inconclusive));
  require(!r.detail.empty() && one_line(r.detail, kMaxDetail));

  std::set<int> failing;
  std::size_t fails = 0, passes = 0;
  for (const auto& t : r.results) {
    require(t.gpu >= -1 && t.gpu <= (1 << 20));
    require(t.gpu < 0 || t.entity.empty());
    require(one_line(t.category, 2000) && one_line(t.test, 2000) && one_line(t.info, 2000));
    require(t.errors.size() <= 64);
    for (const auto& e : t.errors) require(e.error_id >= -1 && one_line(e.message, 2000));
    if (t.status == TestStatus::Fail) {
      ++fails;
      if (t.gpu >= 0) failing.insert(t.gpu);
    }
    if (t.status == TestStatus::Pass || t.status == TestStatus::Warn) ++passes;
  }
  // Any failure fails the node; nothing else does.
  require((r.verdict == Verdict::Fail) == (fails > 0));
  require(r.failing_gpus == std::vector<int>(failing.begin(), failing.end()));
  // A pass needs a clean exit and a test that ran, in something that can be a JSON object.
  if (r.verdict == Verdict::Pass)
    require(exit_code == 0 && passes > 0 && text.find('{') != std::string_view::npos);
  // It is stored and sent as JSON: a byte that is not UTF-8 would throw here.
  (void)r.to_json().dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const DiagReport clean = parse_dcgm_diag(text, 0);  // an exception escapes: a finding
  const DiagReport failed = parse_dcgm_diag(text, 1);
  check(text, 0, clean);
  check(text, 1, failed);
  // The exit status changes the verdict only from a pass to no verdict, never what was read.
  require(clean.results.size() == failed.results.size());
  require((clean.verdict == Verdict::Fail) == (failed.verdict == Verdict::Fail));
  return 0;
}
