#include "health/dcgm_diag.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <set>

#include "common/enum_names.hpp"
#include "common/json_depth.hpp"

namespace shepherd::health {
namespace {

using nlohmann::json;

constexpr EnumNames<TestStatus, 5> kTestStatusNames{{
    {TestStatus::Pass, "pass"},
    {TestStatus::Warn, "warn"},
    {TestStatus::Fail, "fail"},
    {TestStatus::Skip, "skip"},
    {TestStatus::NotRun, "not_run"},
}};

constexpr EnumNames<DiagProblem, 7> kDiagProblemNames{{
    {DiagProblem::None, "none"},
    {DiagProblem::CommandMissing, "command_missing"},
    {DiagProblem::NotJson, "not_json"},
    {DiagProblem::NoVerdict, "no_verdict"},
    {DiagProblem::Malformed, "malformed"},
    {DiagProblem::RuntimeError, "runtime_error"},
    {DiagProblem::TimedOut, "timed_out"},
}};

// Limits on what untrusted output can make us hold. DCGM itself caps a run at 32 GPUs
// (DCGM_MAX_NUM_DEVICES) and a message at a few hundred bytes.
constexpr std::size_t kMaxText = 2000;       // one stored message or info text
constexpr std::size_t kMaxIds = 1024;        // GPUs named by one result
constexpr std::size_t kMaxResults = 100000;  // results in one report
constexpr int kMaxEntityId = 1 << 20;
constexpr int kMaxDepth = 64;  // diagnostic JSON nests about 8 deep

// The longest prefix of `s` of at most `max` bytes that does not end inside a UTF-8 sequence.
std::size_t utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

// One line, at most `max` bytes: control characters become spaces, a longer text is cut with
// "...". Keeps valid UTF-8 valid.
std::string one_line(std::string_view s, std::size_t max) {
  std::string out;
  const bool cut = s.size() > max;
  out.assign(s.substr(0, utf8_prefix(s, cut ? max - 3 : max)));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (cut) out += "...";
  return out;
}

// Raw command output for a message: printable ASCII only (it may not be UTF-8).
std::string ascii_excerpt(std::string_view s, std::size_t max) {
  std::string out;
  for (const char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  if (s.size() > max) out += "...";
  return out;
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The spellings of DCGM 2.x-4.x ("Pass", "PASS", "Not Run", ...) and NVVS.
std::optional<TestStatus> parse_status(std::string_view s) {
  const std::string l = lower(trim(s));
  if (l == "pass" || l == "passed") return TestStatus::Pass;
  if (l == "fail" || l == "failed") return TestStatus::Fail;
  if (l == "warn" || l == "warning") return TestStatus::Warn;
  if (l == "skip" || l == "skipped") return TestStatus::Skip;
  if (l == "not run" || l == "notrun" || l == "not_run" || l == "not-run")
    return TestStatus::NotRun;
  return std::nullopt;
}

// A GPU or entity id: a JSON integer or a string of digits, 0..kMaxEntityId.
std::optional<int> parse_id(const json& v) {
  if (v.is_number_unsigned()) {
    const auto n = v.get<std::uint64_t>();
    if (n <= static_cast<std::uint64_t>(kMaxEntityId)) return static_cast<int>(n);
    return std::nullopt;
  }
  if (v.is_number_integer()) {
    const auto n = v.get<std::int64_t>();
    if (n >= 0 && n <= kMaxEntityId) return static_cast<int>(n);
    return std::nullopt;
  }
  if (!v.is_string()) return std::nullopt;
  const std::string_view s = trim(v.get_ref<const std::string&>());
  int n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 0 || n > kMaxEntityId)
    return std::nullopt;
  return n;
}

const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string text_of(const json& v) {
  return v.is_string() ? one_line(v.get_ref<const std::string&>(), kMaxText) : std::string();
}

// "info": a string or a list of strings.
std::string info_of(const json* v) {
  if (v == nullptr) return {};
  if (v->is_string()) return text_of(*v);
  std::string out;
  if (!v->is_array()) return out;
  for (const auto& line : *v) {
    if (!line.is_string() || out.size() >= kMaxText) continue;
    out += (out.empty() ? "" : "; ") + text_of(line);
  }
  return one_line(out, kMaxText);
}

// "warnings": a list of {"warning" (3.x Deployment tests: "warnings"), "error_id", ...} or of
// strings, or one string.
std::vector<DiagError> errors_of(const json* v) {
  std::vector<DiagError> out;
  if (v == nullptr) return out;
  auto add = [&](const json& w) {
    if (w.is_string()) {
      out.push_back({-1, text_of(w)});
      return;
    }
    if (!w.is_object()) return;
    DiagError e;
    for (const char* key : {"warning", "warnings", "message", "msg"})
      if (const json* m = member(w, key); m != nullptr && m->is_string()) {
        e.message = text_of(*m);
        break;
      }
    if (const json* id = member(w, "error_id"))
      if (const auto n = parse_id(*id)) e.error_id = *n;
    if (!e.message.empty() || e.error_id >= 0) out.push_back(std::move(e));
  };
  if (v->is_array()) {
    for (const auto& w : *v)
      if (out.size() < 64) add(w);
  } else {
    add(*v);
  }
  return out;
}

struct Entity {
  int gpu = -1;
  std::string name;  // for entities that are not GPUs
};

// Walks diagnostic documents, collecting results and the first thing it could not read.
class Reader {
 public:
  std::vector<GpuTestResult> results;
  std::string unreadable;     // "<path>: <why>" of the first field that could not be read
  std::string runtime_error;  // DCGM's own "cannot run" message
  std::string overall_fail;   // an iterations run's "Overall Result": "Fail" (with its warning)

  void root(const json& doc) {
    if (!doc.is_object()) return;  // no diagnostic here: NoVerdict
    if (const json* iterations = member(doc, "iterations"); iterations != nullptr) {
      if (!iterations->is_array()) return note("iterations", "expected a list");
      for (std::size_t i = 0; i < iterations->size(); ++i)
        document((*iterations)[i], "iterations[" + std::to_string(i) + "]");
      if (const json* overall = member(doc, "Overall Result");
          overall != nullptr && overall->is_string() &&
          parse_status(overall->get_ref<const std::string&>()) == TestStatus::Fail) {
        const json* warning = member(doc, "Warning");
        overall_fail = warning != nullptr && warning->is_string() ? text_of(*warning) : "Fail";
      }
      return;
    }
    document(doc, "");
  }

 private:
  void note(const std::string& path, const std::string& why) {
    if (unreadable.empty()) unreadable = path + ": " + why;
  }
  bool refuse(const std::string& path, const std::string& why) {
    note(path, why);
    return false;
  }

  void document(const json& doc, const std::string& at) {
    if (!doc.is_object()) return note(at.empty() ? "output" : at, "expected an object");
    for (const char* key : {"DCGM Diagnostic", "DCGM GPU Diagnostic"}) {
      const json* diag = member(doc, key);
      if (diag == nullptr) continue;
      const std::string path = (at.empty() ? "" : at + ".") + key;
      if (!diag->is_object()) return note(path, "expected an object");
      if (const json* e = member(*diag, "runtime_error"); e != nullptr && runtime_error.empty())
        runtime_error = e->is_string() ? text_of(*e) : "(no message)";
      const json* categories = member(*diag, "test_categories");
      if (categories == nullptr) return;
      if (!categories->is_array()) return note(path + ".test_categories", "expected a list");
      for (std::size_t i = 0; i < categories->size(); ++i)
        category((*categories)[i], path + ".test_categories[" + std::to_string(i) + "]");
      return;
    }
  }

  void category(const json& c, const std::string& path) {
    if (c.is_null()) return;
    if (!c.is_object()) return note(path, "expected an object");
    std::string name;
    if (const json* n = member(c, "category")) {
      if (!n->is_string()) return note(path + ".category", "expected a string");
      name = text_of(*n);
    }
    const json* tests = member(c, "tests");
    if (tests == nullptr) return;
    if (!tests->is_array()) return note(path + ".tests", "expected a list");
    for (std::size_t i = 0; i < tests->size(); ++i)
      test((*tests)[i], name, path + ".tests[" + std::to_string(i) + "]");
  }

  void test(const json& t, const std::string& category, const std::string& path) {
    if (t.is_null()) return;  // DCGM 3.x leaves nulls where a test was not run
    if (!t.is_object()) return note(path, "expected an object");
    std::string name;
    if (const json* n = member(t, "name")) {
      if (!n->is_string()) return note(path + ".name", "expected a string");
      name = text_of(*n);
    }
    const std::size_t first = results.size();
    if (const json* list = member(t, "results")) {
      if (!list->is_array()) return note(path + ".results", "expected a list");
      for (std::size_t i = 0; i < list->size(); ++i)
        result((*list)[i], category, name, path + ".results[" + std::to_string(i) + "]", false);
    }
    // DCGM 4.x sums each test up in "test_summary", with the errors of no entity (a failed
    // system check). It counts where the entity results do not already say as much: when there
    // are none, or when it fails and none of them does.
    const json* summary = member(t, "test_summary");
    if (summary == nullptr || summary->is_null()) return;
    if (!summary->is_object()) return note(path + ".test_summary", "expected an object");
    const bool none = results.size() == first;
    const bool entity_failed =
        std::any_of(results.begin() + static_cast<std::ptrdiff_t>(first), results.end(),
                    [](const GpuTestResult& r) { return r.status == TestStatus::Fail; });
    const json* status = member(*summary, "status");
    const bool summary_failed =
        status != nullptr && status->is_string() &&
        parse_status(status->get_ref<const std::string&>()) == TestStatus::Fail;
    if (none || (summary_failed && !entity_failed))
      result(*summary, category, name, path + ".test_summary", true);
  }

  void result(const json& r, const std::string& category, const std::string& test,
              const std::string& path, bool summary) {
    if (r.is_null()) return;
    if (!r.is_object()) return note(path, "expected an object");
    const json* status = member(r, "status");
    if (status == nullptr) return note(path + ".status", "missing");
    if (!status->is_string()) return note(path + ".status", "expected a string");
    const auto parsed = parse_status(status->get_ref<const std::string&>());
    if (!parsed)
      return note(path + ".status",
                  "unknown status '" + one_line(status->get_ref<const std::string&>(), 40) + "'");
    std::vector<Entity> entities;
    if (summary) {
      entities.push_back({});
    } else if (!entities_of(r, path, entities)) {
      return;
    }
    const std::vector<DiagError> errors = errors_of(member(r, "warnings"));
    const std::string info = info_of(member(r, "info"));
    for (auto& e : entities) {
      if (results.size() >= kMaxResults) return note(path, "too many results");
      results.push_back({category, test, e.gpu, std::move(e.name), *parsed, errors, info});
    }
  }

  // Who a result is about: DCGM 4.x "entity_group"/"entity_id", DCGM 3.x "gpu_id", NVVS
  // "gpu_ids" ("0,1,2" or a number), or nobody (the system).
  bool entities_of(const json& r, const std::string& path, std::vector<Entity>& out) {
    const json* group = member(r, "entity_group");
    const json* id = member(r, "entity_id");
    if (group != nullptr || id != nullptr) {
      if (group != nullptr && !group->is_string())
        return refuse(path + ".entity_group", "expected a string");
      const auto n = id == nullptr ? std::nullopt : parse_id(*id);
      if (!n) return refuse(path + ".entity_id", "expected a non-negative integer");
      const std::string g = group == nullptr ? "GPU" : text_of(*group);
      if (lower(g) == "gpu")
        out.push_back({*n, ""});
      else
        out.push_back({-1, one_line(g, 40) + " " + std::to_string(*n)});
      return true;
    }
    if (const json* gpu = member(r, "gpu_id")) {
      const auto n = parse_id(*gpu);
      if (!n) return refuse(path + ".gpu_id", "expected a GPU id");
      out.push_back({*n, ""});
      return true;
    }
    if (const json* gpus = member(r, "gpu_ids")) {
      if (!gpus->is_string()) {
        const auto n = parse_id(*gpus);
        if (!n) return refuse(path + ".gpu_ids", "expected GPU ids");
        out.push_back({*n, ""});
        return true;
      }
      std::string_view rest = trim(gpus->get_ref<const std::string&>());
      if (rest.empty()) {
        out.push_back({});  // no GPU named: the system
        return true;
      }
      while (true) {
        const auto comma = rest.find(',');
        const auto n = parse_id(json(std::string(trim(rest.substr(0, comma)))));
        if (!n || out.size() >= kMaxIds) return refuse(path + ".gpu_ids", "expected GPU ids");
        out.push_back({*n, ""});
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      return true;
    }
    out.push_back({});
    return true;
  }
};

// Deeper nesting than any diagnostic output, refused before parsing (recursion on the way out).
bool too_deep(std::string_view text) {
  return json_nests_deeper_than(text, kMaxDepth);
}

std::string where(const GpuTestResult& r) {
  if (r.gpu >= 0) return "gpu " + std::to_string(r.gpu);
  return r.entity.empty() ? "system" : r.entity;
}

std::string describe(const GpuTestResult& r) {
  std::string out =
      where(r) + ": " + r.category + "/" + r.test + ": " + std::string(to_string(r.status));
  std::string errors;
  for (const auto& e : r.errors) {
    errors += errors.empty() ? "" : "; ";
    if (e.error_id >= 0) errors += "DCGM error " + std::to_string(e.error_id) + ": ";
    errors += e.message;
  }
  if (!errors.empty()) out += " (" + errors + ")";
  return out;
}

// The results with `status`, described one after the other, up to the detail's length.
std::string list(const std::vector<GpuTestResult>& results, TestStatus status) {
  std::string out;
  for (const auto& r : results) {
    if (r.status != status) continue;
    if (out.size() > kMaxDetail) break;
    out += (out.empty() ? "" : "; ") + describe(r);
  }
  return out;
}

DiagReport inconclusive(DiagProblem problem, std::string detail) {
  DiagReport report;
  report.verdict = Verdict::Inconclusive;
  report.problem = problem;
  report.detail = one_line(detail, kMaxDetail);
  return report;
}

}  // namespace

std::string_view to_string(TestStatus s) {
  return name_of(kTestStatusNames, s);
}

std::string_view to_string(DiagProblem p) {
  return name_of(kDiagProblemNames, p);
}

nlohmann::json DiagReport::to_json() const {
  json results_json = json::array();
  for (const auto& r : results) {
    json errors = json::array();
    for (const auto& e : r.errors)
      errors.push_back({{"error_id", e.error_id}, {"message", e.message}});
    results_json.push_back({{"category", r.category},
                            {"test", r.test},
                            {"gpu", r.gpu >= 0 ? json(r.gpu) : json(nullptr)},
                            {"entity", r.entity},
                            {"status", std::string(health::to_string(r.status))},
                            {"errors", std::move(errors)},
                            {"info", r.info}});
  }
  return {{"verdict", std::string(shepherd::to_string(verdict))},
          {"problem", std::string(health::to_string(problem))},
          {"failing_gpus", failing_gpus},
          {"detail", detail},
          {"results", std::move(results_json)}};
}

DiagReport parse_dcgm_diag(std::string_view output, int exit_code) {
  const std::string exit_note =
      exit_code == 0 ? std::string() : " (exit status " + std::to_string(exit_code) + ")";
  if (trim(output).empty())
    return inconclusive(DiagProblem::NotJson, "the diagnostic printed nothing" + exit_note);

  // The whole output, else from its first `{` to its last `}` (text around the document).
  std::string_view text = output;
  json doc = too_deep(text) ? json(json::value_t::discarded)
                            : json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    const auto open = output.find('{');
    const auto close = output.rfind('}');
    if (open != std::string_view::npos && close != std::string_view::npos && open < close) {
      text = output.substr(open, close - open + 1);
      if (!too_deep(text)) doc = json::parse(text.begin(), text.end(), nullptr, false);
    }
  }
  if (doc.is_discarded())
    return inconclusive(DiagProblem::NotJson, "the diagnostic output is not JSON" + exit_note +
                                                  ": " + ascii_excerpt(trim(output), 120));

  Reader reader;
  reader.root(doc);
  DiagReport report;
  report.results = std::move(reader.results);

  const auto count = [&](TestStatus s) {
    return std::count_if(report.results.begin(), report.results.end(),
                         [s](const GpuTestResult& r) { return r.status == s; });
  };
  if (count(TestStatus::Fail) > 0) {
    // Any failure fails the node, whatever the exit status says.
    report.verdict = Verdict::Fail;
    std::set<int> gpus;
    for (const auto& r : report.results)
      if (r.status == TestStatus::Fail && r.gpu >= 0) gpus.insert(r.gpu);
    report.failing_gpus.assign(gpus.begin(), gpus.end());
    report.detail = one_line(list(report.results, TestStatus::Fail), kMaxDetail);
    return report;
  }

  DiagProblem problem = DiagProblem::None;
  std::string why;
  if (!reader.runtime_error.empty()) {
    problem = DiagProblem::RuntimeError;
    why = "DCGM could not run the diagnostic" + exit_note + ": " + reader.runtime_error;
  } else if (!reader.unreadable.empty()) {
    problem = DiagProblem::Malformed;
    why = "unreadable diagnostic output" + exit_note + " at " + reader.unreadable;
  } else if (report.results.empty()) {
    problem = DiagProblem::NoVerdict;
    why = "no test results in the diagnostic output" + exit_note;
  } else if (exit_code != 0) {
    // A non-zero exit without a failure in the output is never a pass.
    problem = DiagProblem::NoVerdict;
    why = "the diagnostic exited with status " + std::to_string(exit_code) +
          " and reported no failing test";
  } else if (!reader.overall_fail.empty()) {
    problem = DiagProblem::NoVerdict;
    why = "the diagnostic's overall result is Fail with no failing test: " + reader.overall_fail;
  } else if (count(TestStatus::Pass) + count(TestStatus::Warn) == 0) {
    // Skipped tests verified nothing: a run where every test was skipped is no pass.
    problem = DiagProblem::NoVerdict;
    why =
        "every test was skipped or not run (" + std::to_string(report.results.size()) + " results)";
  }
  if (problem != DiagProblem::None) {
    DiagReport out = inconclusive(problem, why);
    out.results = std::move(report.results);
    return out;
  }

  // Warnings alone pass the node: DCGM reports as Warn what does not stop the GPU from working
  // (a clock event, a non-default setting) and as Fail what does; the warnings are kept in the
  // results and named in the detail for a person to follow up.
  report.verdict = Verdict::Pass;
  std::set<int> gpus;
  for (const auto& r : report.results)
    if (r.gpu >= 0) gpus.insert(r.gpu);
  const std::string summary = std::to_string(report.results.size()) + " results on " +
                              std::to_string(gpus.size()) + " gpus";
  const std::string warnings = list(report.results, TestStatus::Warn);
  report.detail = one_line(
      warnings.empty() ? "pass: " + summary : "pass with warnings (" + summary + "): " + warnings,
      kMaxDetail);
  return report;
}

DiagReport diag_command_missing(std::string_view command) {
  return inconclusive(DiagProblem::CommandMissing,
                      "the diagnostic command is not installed: " + ascii_excerpt(command, 200));
}

DiagReport diag_timed_out(double seconds) {
  std::string s = seconds >= 0 && seconds < 1e9 ? std::to_string(static_cast<long long>(seconds))
                                                : std::string("?");
  return inconclusive(DiagProblem::TimedOut, "the diagnostic did not finish within " + s + " s");
}

}  // namespace shepherd::health
