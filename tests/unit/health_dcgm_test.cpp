// The reader of `dcgmi diag -j` output, on real outputs (tests/fixtures/dcgm/README.md says where
// each comes from), on malformed ones, and on hostile input.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "health/dcgm_diag.hpp"

namespace shepherd::health {
namespace {

std::string fixture(const std::string& name) {
  const std::string path = std::string(SHEPHERD_SOURCE_DIR) + "/tests/fixtures/dcgm/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<int> error_ids(const DiagReport& r, TestStatus status) {
  std::set<int> ids;
  for (const auto& result : r.results)
    if (result.status == status)
      for (const auto& e : result.errors) ids.insert(e.error_id);
  return {ids.begin(), ids.end()};
}

std::size_t count(const DiagReport& r, TestStatus status) {
  std::size_t n = 0;
  for (const auto& result : r.results) n += result.status == status;
  return n;
}

// The invariants of every report, whatever the input.
void expect_well_formed(const DiagReport& r, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_LE(r.detail.size(), kMaxDetail);
  EXPECT_EQ(r.detail.find('\n'), std::string::npos);
  EXPECT_FALSE(r.detail.empty());
  EXPECT_TRUE(r.verdict == Verdict::Pass || r.verdict == Verdict::Fail ||
              r.verdict == Verdict::Inconclusive);
  EXPECT_EQ(r.problem == DiagProblem::None, r.verdict != Verdict::Inconclusive);
  EXPECT_TRUE(std::is_sorted(r.failing_gpus.begin(), r.failing_gpus.end()));
  EXPECT_EQ(std::adjacent_find(r.failing_gpus.begin(), r.failing_gpus.end()), r.failing_gpus.end());
  if (r.verdict != Verdict::Fail) {
    EXPECT_TRUE(r.failing_gpus.empty());
  }
  EXPECT_NO_THROW((void)r.to_json().dump());
}

// --- Real outputs ---------------------------------------------------------------------------

TEST(DcgmDiag, Dcgm423Level1FailsOnPersistenceMode) {
  const auto r = parse_dcgm_diag(fixture("dcgm-4.2.3-gb10-level1.json"), 0);
  expect_well_formed(r, "4.2.3 level 1");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_EQ(r.problem, DiagProblem::None);
  EXPECT_EQ(r.failing_gpus, std::vector<int>{0});
  ASSERT_EQ(r.results.size(), 1u);  // the test_summary repeats the GPU's failure: not counted
  const auto& res = r.results[0];
  EXPECT_EQ(res.category, "Deployment");
  EXPECT_EQ(res.test, "software");
  EXPECT_EQ(res.gpu, 0);
  EXPECT_EQ(res.status, TestStatus::Fail);
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].error_id, 29);  // DCGM_FR_PERSISTENCE_MODE
  EXPECT_NE(res.errors[0].message.find("Persistence mode for GPU 0 is disabled"),
            std::string::npos);
  EXPECT_EQ(r.detail.rfind("gpu 0: Deployment/software: fail (DCGM error 29: Persistence Mode:", 0),
            0u)
      << r.detail;
}

TEST(DcgmDiag, Dcgm423Level2PartialSkip) {
  const auto r = parse_dcgm_diag(fixture("dcgm-4.2.3-gb10-level2-partial-skip.json"), 0);
  expect_well_formed(r, "4.2.3 level 2");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_EQ(r.failing_gpus, std::vector<int>{0});
  EXPECT_EQ(count(r, TestStatus::Fail), 1u);
  EXPECT_EQ(count(r, TestStatus::Skip), 2u);
  EXPECT_EQ(error_ids(r, TestStatus::Fail), std::vector<int>{29});
}

TEST(DcgmDiag, Dcgm452Level2TabIndented) {
  const auto r = parse_dcgm_diag(fixture("dcgm-4.5.2-gb10-level2.json"), 0);
  expect_well_formed(r, "4.5.2 level 2");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_EQ(r.failing_gpus, std::vector<int>{0});
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_EQ(r.results[1].test, "memory");
  EXPECT_EQ(r.results[1].status, TestStatus::Pass);
  EXPECT_EQ(r.results[1].info, "Allocated 112427837082 bytes (87.5%)");
  EXPECT_EQ(r.results[2].test, "pcie");
  EXPECT_EQ(r.results[2].category, "Integration");
  EXPECT_EQ(r.results[2].status, TestStatus::Pass);
  // Info lines are joined into one line: their tabs become spaces.
  EXPECT_EQ(r.results[2].info.find('\t'), std::string::npos);
  EXPECT_NE(r.results[2].info.find("GPU to Host bandwidth:  58.62 GB/s; Host to GPU"),
            std::string::npos)
      << r.results[2].info;
}

TEST(DcgmDiag, Dcgm3xEverythingSkippedIsNoVerdict) {
  const auto r = parse_dcgm_diag(fixture("dcgm-3.x-issue139-all-skip.json"), 0);
  expect_well_formed(r, "3.x all skipped");
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::NoVerdict);
  ASSERT_EQ(r.results.size(), 5u);  // kept for a person to read
  EXPECT_EQ(count(r, TestStatus::Skip), 5u);
  EXPECT_EQ(r.results[0].gpu, 0);  // "gpu_id": "0", a string in 3.x
  EXPECT_EQ(r.results[1].test, "GPU Memory");
  EXPECT_NE(r.detail.find("every test was skipped"), std::string::npos) << r.detail;
}

TEST(DcgmDiag, Nvvs310WithLeadingWarningAndNullsPasses) {
  const auto r = parse_dcgm_diag(fixture("nvvs-3.1.0-deployment-pass.txt"), 0);
  expect_well_formed(r, "nvvs 3.1.0");
  EXPECT_EQ(r.verdict, Verdict::Pass);
  EXPECT_EQ(r.problem, DiagProblem::None);
  // 9 Deployment tests on "gpu_ids": "0,1,2,3,4,5,6,7" and "software" once per GPU (a number).
  EXPECT_EQ(r.results.size(), 9u * 8u + 8u);
  EXPECT_EQ(count(r, TestStatus::Pass), r.results.size());
  std::set<int> gpus;
  for (const auto& res : r.results) gpus.insert(res.gpu);
  EXPECT_EQ(gpus, (std::set<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(r.detail, "pass: 80 results on 8 gpus");
}

TEST(DcgmDiag, NvvsPerGpuSampleFailsThreeGpus) {
  const auto r = parse_dcgm_diag(fixture("nvvs-per-gpu-sample.json"), 0);
  expect_well_formed(r, "nvvs per gpu");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_EQ(r.failing_gpus, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(error_ids(r, TestStatus::Fail), std::vector<int>{50});  // DCGM_FR_STRESS_LEVEL
  EXPECT_EQ(error_ids(r, TestStatus::Skip), (std::vector<int>{1, 48, 55}));
  EXPECT_EQ(r.detail.rfind("gpu 0: Stress/sm_stress: fail (DCGM error 50: Max stress level", 0), 0u)
      << r.detail;
}

// --- Shapes from DCGM's writer (synthetic) -------------------------------------------------

TEST(DcgmDiag, Dcgm4xMultiGpuFailure) {
  const auto r = parse_dcgm_diag(fixture("synthetic-4x-multi-gpu-fail.json"), 0);
  expect_well_formed(r, "4.x multi gpu");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_EQ(r.failing_gpus, (std::vector<int>{1, 3}));
  EXPECT_EQ(error_ids(r, TestStatus::Fail), (std::vector<int>{30, 83}));
  const auto cpu = std::find_if(r.results.begin(), r.results.end(),
                                [](const GpuTestResult& x) { return x.test == "cpu_eud"; });
  ASSERT_NE(cpu, r.results.end());
  EXPECT_EQ(cpu->gpu, -1);
  EXPECT_EQ(cpu->entity, "CPU 0");
  EXPECT_NE(r.detail.find("gpu 1: Hardware/memory: fail (DCGM error 83: Pending page retirements"),
            std::string::npos)
      << r.detail;
  EXPECT_NE(r.detail.find("gpu 3: Integration/pcie: fail (DCGM error 30:"), std::string::npos);
}

TEST(DcgmDiag, WarningsAlonePassWithTheWarningsInTheDetail) {
  const auto r = parse_dcgm_diag(fixture("synthetic-4x-warn-only.json"), 0);
  expect_well_formed(r, "warn only");
  EXPECT_EQ(r.verdict, Verdict::Pass);
  EXPECT_TRUE(r.failing_gpus.empty());
  EXPECT_EQ(count(r, TestStatus::Warn), 1u);
  EXPECT_EQ(
      r.detail,
      "pass with warnings (4 results on 2 gpus): gpu 1: Hardware/memory: warn (DCGM error 55: "
      "ECC memory is disabled right now on GPU 1.)");
}

TEST(DcgmDiag, FailedSystemTestFailsWithNoGpu) {
  const auto r = parse_dcgm_diag(fixture("synthetic-3x-system-fail.json"), 0);
  expect_well_formed(r, "3.x system fail");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_TRUE(r.failing_gpus.empty());
  const auto failed = std::find_if(r.results.begin(), r.results.end(),
                                   [](const auto& x) { return x.status == TestStatus::Fail; });
  ASSERT_NE(failed, r.results.end());
  EXPECT_EQ(failed->gpu, -1);
  EXPECT_EQ(failed->test, "Environment Variables");
  ASSERT_EQ(failed->errors.size(), 1u);
  EXPECT_EQ(failed->errors[0].error_id, 28);  // DCGM_FR_BAD_CUDA_ENV, message under "warnings"
  EXPECT_NE(failed->errors[0].message.find("CUDA_LAUNCH_BLOCKING"), std::string::npos);
  EXPECT_EQ(r.detail.rfind("system: Deployment/Environment Variables: fail (DCGM error 28:", 0), 0u)
      << r.detail;
}

TEST(DcgmDiag, IterationsAreReadEach) {
  const auto r = parse_dcgm_diag(fixture("synthetic-4x-iterations.json"), 0);
  expect_well_formed(r, "iterations");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  EXPECT_EQ(r.failing_gpus, std::vector<int>{0});
  EXPECT_EQ(r.results.size(), 4u);
  EXPECT_EQ(error_ids(r, TestStatus::Fail), std::vector<int>{52});  // DCGM_FR_FAULTY_MEMORY
}

TEST(DcgmDiag, OverallFailWithoutAFailingTestIsNoVerdict) {
  const std::string text =
      R"({"iterations": [{"DCGM Diagnostic": {"test_categories": [{"category": "Hardware",
          "tests": [{"name": "memory", "results": [{"entity_group": "GPU", "entity_id": 0,
          "status": "Pass"}]}]}]}}], "Overall Result": "Fail", "Warning": "Host engine error"})";
  const auto r = parse_dcgm_diag(text, 0);
  expect_well_formed(r, "overall fail");
  EXPECT_EQ(r.problem, DiagProblem::NoVerdict);
  EXPECT_NE(r.detail.find("Host engine error"), std::string::npos);
}

TEST(DcgmDiag, RuntimeErrorIsItsOwnProblem) {
  const auto r = parse_dcgm_diag(fixture("synthetic-4x-runtime-error.json"), 226);
  expect_well_formed(r, "runtime error");
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::RuntimeError);
  EXPECT_NE(r.detail.find("unable to establish a connection"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("exit status 226"), std::string::npos) << r.detail;
}

// --- Malformed output: each inconclusive, for its own reason ---------------------------------

TEST(DcgmDiag, MalformedFixturesAreInconclusive) {
  const std::pair<const char*, DiagProblem> cases[] = {
      {"malformed-truncated.json", DiagProblem::NotJson},
      {"malformed-not-json.txt", DiagProblem::NotJson},
      {"malformed-empty.txt", DiagProblem::NotJson},
      {"malformed-no-diag-keys.json", DiagProblem::NoVerdict},
      {"malformed-wrong-type.json", DiagProblem::Malformed},
  };
  for (const auto& [name, problem] : cases) {
    for (const int exit_code : {0, 1, 226}) {
      const auto r = parse_dcgm_diag(fixture(name), exit_code);
      expect_well_formed(r, name);
      EXPECT_EQ(r.verdict, Verdict::Inconclusive) << name;
      EXPECT_EQ(r.problem, problem) << name << ": " << r.detail;
    }
  }
  EXPECT_NE(parse_dcgm_diag(fixture("malformed-wrong-type.json"), 0)
                .detail.find("test_categories[1].tests[0].results[1].status: expected a string"),
            std::string::npos);
  EXPECT_NE(parse_dcgm_diag(fixture("malformed-not-json.txt"), 1)
                .detail.find("not JSON (exit status 1): Error: unable to establish"),
            std::string::npos);
}

TEST(DcgmDiag, ShapesThatAreNotResults) {
  const std::pair<const char*, DiagProblem> cases[] = {
      {"[]", DiagProblem::NoVerdict},
      {"null", DiagProblem::NoVerdict},
      {"42", DiagProblem::NoVerdict},
      {R"({"DCGM Diagnostic": {}})", DiagProblem::NoVerdict},
      {R"({"DCGM Diagnostic": {"test_categories": []}})", DiagProblem::NoVerdict},
      {R"({"DCGM Diagnostic": []})", DiagProblem::Malformed},
      {R"({"DCGM Diagnostic": {"test_categories": {}}})", DiagProblem::Malformed},
      {R"({"DCGM Diagnostic": {"test_categories": [{"category": 1, "tests": []}]}})",
       DiagProblem::Malformed},
      {R"({"DCGM Diagnostic": {"test_categories": [{"tests": "x"}]}})", DiagProblem::Malformed},
      {R"({"DCGM Diagnostic": {"test_categories": [{"tests": [{"name": "t", "results": [
          {"status": "Maybe"}]}]}]}})",
       DiagProblem::Malformed},
      {R"({"DCGM Diagnostic": {"test_categories": [{"tests": [{"name": "t", "results": [
          {"entity_group": "GPU", "entity_id": -1, "status": "Pass"}]}]}]}})",
       DiagProblem::Malformed},
      {R"({"DCGM Diagnostic": {"test_categories": [{"tests": [{"name": "t", "results": [
          {"gpu_id": 1.5, "status": "Pass"}]}]}]}})",
       DiagProblem::Malformed},
      {R"({"DCGM GPU Diagnostic": {"test_categories": [{"tests": [{"name": "t", "results": [
          {"gpu_ids": "0,x", "status": "Pass"}]}]}]}})",
       DiagProblem::Malformed},
      {R"({"iterations": {}})", DiagProblem::Malformed},
  };
  for (const auto& [text, problem] : cases) {
    const auto r = parse_dcgm_diag(text, 0);
    expect_well_formed(r, text);
    EXPECT_EQ(r.problem, problem) << text << ": " << r.detail;
  }
}

// --- Exit status ---------------------------------------------------------------------------

TEST(DcgmDiag, NonZeroExitWithoutFailureIsNeverAPass) {
  const auto r = parse_dcgm_diag(fixture("nvvs-3.1.0-deployment-pass.txt"), 226);
  expect_well_formed(r, "exit 226");
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::NoVerdict);
  EXPECT_EQ(r.detail, "the diagnostic exited with status 226 and reported no failing test");
  EXPECT_EQ(r.results.size(), 80u);
  EXPECT_EQ(parse_dcgm_diag(fixture("synthetic-4x-warn-only.json"), -1).problem,
            DiagProblem::NoVerdict);
}

TEST(DcgmDiag, FailureFailsWhateverTheExitStatus) {
  for (const int exit_code : {0, 1, 226}) {
    const auto r = parse_dcgm_diag(fixture("nvvs-per-gpu-sample.json"), exit_code);
    EXPECT_EQ(r.verdict, Verdict::Fail) << exit_code;
    EXPECT_EQ(r.failing_gpus, (std::vector<int>{0, 2, 3}));
  }
}

// --- Results that do not come from output --------------------------------------------------

TEST(DcgmDiag, CommandMissingAndTimedOut) {
  const auto missing = diag_command_missing("dcgmi");
  expect_well_formed(missing, "missing");
  EXPECT_EQ(missing.problem, DiagProblem::CommandMissing);
  EXPECT_EQ(missing.detail, "the diagnostic command is not installed: dcgmi");
  const auto timed_out = diag_timed_out(1800);
  expect_well_formed(timed_out, "timed out");
  EXPECT_EQ(timed_out.problem, DiagProblem::TimedOut);
  EXPECT_EQ(timed_out.detail, "the diagnostic did not finish within 1800 s");
  EXPECT_EQ(diag_timed_out(-1).verdict, Verdict::Inconclusive);
  expect_well_formed(diag_command_missing(std::string(5000, '\xff')), "odd command");
}

// --- The detail and the JSON view -----------------------------------------------------------

TEST(DcgmDiag, DetailIsBoundedAndOneLine) {
  std::string text = R"({"DCGM Diagnostic": {"test_categories": [{"category": "Hardware",
      "tests": [{"name": "memory", "results": [)";
  for (int gpu = 0; gpu < 32; ++gpu)
    text += std::string(gpu ? "," : "") + R"({"entity_group": "GPU", "entity_id": )" +
            std::to_string(gpu) + R"(, "status": "Fail", "warnings": [{"error_id": 52,
            "warning": "Found 3 faulty memory elements on GPU\n)" +
            std::to_string(gpu) + R"( \u00e9\u00e9\u00e9 )" + std::string(300, 'x') + R"("}]})";
  text += "]}]}]}}";
  const auto r = parse_dcgm_diag(text, 0);
  expect_well_formed(r, "32 failures");
  EXPECT_EQ(r.failing_gpus.size(), 32u);
  EXPECT_EQ(r.detail.substr(r.detail.size() - 3), "...");
}

TEST(DcgmDiag, ToJsonShape) {
  const auto r = parse_dcgm_diag(fixture("synthetic-4x-multi-gpu-fail.json"), 0);
  const auto j = r.to_json();
  EXPECT_EQ(j.at("verdict"), "fail");
  EXPECT_EQ(j.at("problem"), "none");
  EXPECT_EQ(j.at("failing_gpus"), nlohmann::json({1, 3}));
  EXPECT_EQ(j.at("detail"), r.detail);
  ASSERT_EQ(j.at("results").size(), r.results.size());
  const auto& memory_fail = j.at("results").at(5);
  EXPECT_EQ(memory_fail.at("category"), "Hardware");
  EXPECT_EQ(memory_fail.at("test"), "memory");
  EXPECT_EQ(memory_fail.at("gpu"), 1);
  EXPECT_EQ(memory_fail.at("status"), "fail");
  EXPECT_EQ(memory_fail.at("errors").at(0).at("error_id"), 83);
  EXPECT_TRUE(j.at("results").back().at("gpu").is_null());  // the CPU
  EXPECT_EQ(j.at("results").back().at("entity"), "CPU 0");

  const auto none = parse_dcgm_diag("", 0).to_json();
  EXPECT_EQ(none.at("verdict"), "inconclusive");
  EXPECT_EQ(none.at("problem"), "not_json");
  EXPECT_TRUE(none.at("results").empty());
}

// --- Hostile input -------------------------------------------------------------------------

TEST(DcgmDiag, DeepNestingAndHugeStringsDoNotCrash) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(parse_dcgm_diag(deep, 0).problem, DiagProblem::NotJson);
  const std::string deep_objects = R"({"DCGM Diagnostic": )" + std::string(100000, '[');
  EXPECT_EQ(parse_dcgm_diag(deep_objects, 0).problem, DiagProblem::NotJson);

  const std::string huge = R"({"DCGM Diagnostic": {"test_categories": [{"category": ")" +
                           std::string(1 << 20, 'c') + R"(", "tests": [{"name": "t", "results":
      [{"gpu_id": "0", "status": "Fail", "info": ")" +
                           std::string(1 << 20, 'i') + R"(", "warnings": [{"warning": ")" +
                           std::string(1 << 20, 'w') + R"("}]}]}]}]}})";
  const auto r = parse_dcgm_diag(huge, 0);
  expect_well_formed(r, "huge");
  EXPECT_EQ(r.verdict, Verdict::Fail);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_LE(r.results[0].info.size(), 2000u);
  EXPECT_LE(r.results[0].errors.at(0).message.size(), 2000u);

  expect_well_formed(parse_dcgm_diag(std::string(1 << 16, '\0'), 0), "NULs");
  expect_well_formed(parse_dcgm_diag("\xff\xfe{\"a\":\"\xc3\"}", 0), "bad UTF-8");
  expect_well_formed(parse_dcgm_diag(R"({"DCGM Diagnostic": {"test_categories": [{"tests": [
      {"results": [{"gpu_ids": ")" + std::string(100000, ',') +
                                         R"(", "status": "Pass"}]}]}]}})",
                                     0),
                     "many commas");
}

// Every fixture cut and mutated at random never throws and always gives a well-formed report.
TEST(DcgmDiag, MutatedFixturesNeverThrow) {
  const char* names[] = {"dcgm-4.5.2-gb10-level2.json", "nvvs-per-gpu-sample.json",
                         "synthetic-4x-multi-gpu-fail.json", "synthetic-3x-system-fail.json",
                         "synthetic-4x-iterations.json"};
  std::mt19937 rng(20240611);
  const std::string alphabet = "{}[]\":,0123456789-.eE \\nutfalsxPF\x01\xff";
  for (const char* name : names) {
    const std::string original = fixture(name);
    for (int round = 0; round < 300; ++round) {
      std::string text = original;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && !text.empty(); ++e) {
        const std::size_t at = rng() % text.size();
        switch (rng() % 4) {
          case 0:
            text[at] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            text.erase(at, 1 + rng() % 16);
            break;
          case 2:
            text.insert(at, 1, alphabet[rng() % alphabet.size()]);
            break;
          default:
            text.resize(at);
            break;
        }
      }
      DiagReport r;
      ASSERT_NO_THROW(r = parse_dcgm_diag(text, static_cast<int>(rng() % 3))) << text;
      expect_well_formed(r, name);
    }
  }
}

}  // namespace
}  // namespace shepherd::health
