#pragma once
// Reads what `dcgmi diag -r LEVEL -j` printed into a verdict on the node. Pure: the caller runs
// the command and hands over its output and exit status.
//
// Formats read (tests/fixtures/dcgm/README.md shows one of each):
//  - DCGM 4.x: {"DCGM Diagnostic": {"test_categories": [{"category", "tests": [{"name",
//    "results": [{"entity_group", "entity_id", "status", "warnings": [{"error_id", "warning"}],
//    "info": [...]}], "test_summary": {...}}]}]}, "entity_groups", "metadata"}
//  - DCGM 2.x/3.x: the root key is "DCGM GPU Diagnostic"; results name their GPU as "gpu_id" (a
//    string), or as "gpu_ids" (NVVS's "0,1,2" or a number), or not at all (system tests).
//  - `dcgmi diag --iterations N -j`: {"iterations": [one document per run], "Overall Result"}.
//  - `{"DCGM Diagnostic": {"runtime_error": "..."}}`: DCGM could not run the diagnostic.
// Text before the first `{` (a warning line, "Successfully ran diagnostic for group.") is skipped.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "domain/model.hpp"

namespace shepherd::health {

enum class TestStatus { Pass, Warn, Fail, Skip, NotRun };
std::string_view to_string(TestStatus s);  // "pass", "warn", "fail", "skip", "not_run"

struct DiagError {
  int error_id = -1;  // DCGM's dcgmError_t (dcgmlib/dcgm_errors.h); -1: none given
  std::string message;
  bool operator==(const DiagError&) const = default;
};

// One test's result on one GPU, or on the system (gpu -1, entity empty), or on another entity
// (gpu -1, entity "CPU 0", "Switch 1", ...).
struct GpuTestResult {
  std::string category;  // "Deployment", "Hardware", ...
  std::string test;      // "software", "memory", "Persistence Mode", ...
  int gpu = -1;
  std::string entity;
  TestStatus status = TestStatus::Pass;
  std::vector<DiagError> errors;
  std::string info;  // the result's info lines joined with "; "
};

// Why no verdict could be read. Each is Inconclusive, never a pass.
enum class DiagProblem {
  None,
  CommandMissing,  // the diagnostic command is not installed
  NotJson,         // the output is empty or not JSON
  NoVerdict,       // valid JSON without test results, every test skipped, or a non-zero exit
                   // status with no failure in the output
  Malformed,       // diagnostic JSON with a field of the wrong type or an unknown status where a
                   // result should be: part of the run cannot be read
  RuntimeError,    // DCGM reported it could not run the diagnostic ("runtime_error")
  TimedOut,        // the command did not finish in time
};
std::string_view to_string(DiagProblem p);  // "none", "command_missing", "not_json", ...

struct DiagReport {
  Verdict verdict = Verdict::Inconclusive;  // Pass, Fail or Inconclusive
  DiagProblem problem = DiagProblem::None;  // None exactly when the verdict is Pass or Fail
  std::vector<GpuTestResult> results;
  std::vector<int> failing_gpus;  // sorted, unique
  std::string detail;             // one line for a person, at most kMaxDetail bytes
  // {"verdict", "problem", "failing_gpus", "detail", "results": [{"category", "test", "gpu" (a
  // number, or null for system and other entities), "entity", "status", "errors": [{"error_id",
  // "message"}], "info"}]}
  nlohmann::json to_json() const;
};

inline constexpr std::size_t kMaxDetail = 500;

// Parses what the command printed; exit_code is its exit status. Never throws.
DiagReport parse_dcgm_diag(std::string_view output, int exit_code);

// The inconclusive reports that do not come from output.
DiagReport diag_command_missing(std::string_view command);
DiagReport diag_timed_out(double seconds);

}  // namespace shepherd::health
