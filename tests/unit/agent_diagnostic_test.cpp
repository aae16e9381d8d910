// run_command and run_diagnostic on real processes: a fake dcgmi (a shell script printing a
// fixture of tests/fixtures/dcgm) stands in for DCGM.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "agent/diagnostic_runner.hpp"
#include "support/temp_dir.hpp"

namespace shepherd::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using health::DiagProblem;

using shepherd::test::TempDir;

using shepherd::test::read_file;

std::string fixture(const std::string& name) {
  return std::string(SHEPHERD_SOURCE_DIR) + "/tests/fixtures/dcgm/" + name;
}

// An executable script in `dir` that records its arguments in <dir>/args and runs `body`.
std::string fake_dcgmi(const TempDir& dir, const std::string& body) {
  const std::string path = dir / "dcgmi";
  std::ofstream(path) << "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" << (dir / "args") << "'\n"
                      << body << "\n";
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

std::vector<std::string> diag_template(const std::string& dcgmi) {
  return {dcgmi, "diag", "-r", "{level}", "-j"};
}

// Running: there and not a zombie (an orphan's zombie may wait for a busy init).
bool alive(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' &&
         stat[close + 2] != 'X';
}

double elapsed_s(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

TEST(Diagnostic, PassFromTheFixture) {
  TempDir dir;
  const auto dcgmi = fake_dcgmi(dir, "cat '" + fixture("nvvs-3.1.0-deployment-pass.txt") + "'");
  const auto r = run_diagnostic(diag_template(dcgmi), 1, 30);
  EXPECT_EQ(r.verdict, Verdict::Pass) << r.detail;
  EXPECT_EQ(r.problem, DiagProblem::None);
  EXPECT_EQ(read_file(dir / "args"), "diag\n-r\n1\n-j\n");
}

TEST(Diagnostic, FailNamesTheFailingGpus) {
  TempDir dir;
  const auto dcgmi =
      fake_dcgmi(dir, "cat '" + fixture("synthetic-4x-multi-gpu-fail.json") + "'; exit 226");
  const auto r = run_diagnostic(diag_template(dcgmi), 3, 30);
  EXPECT_EQ(r.verdict, Verdict::Fail) << r.detail;
  EXPECT_EQ(r.failing_gpus, (std::vector<int>{1, 3}));
}

TEST(Diagnostic, RuntimeErrorWithItsExitStatus) {
  TempDir dir;
  const auto dcgmi =
      fake_dcgmi(dir, "cat '" + fixture("synthetic-4x-runtime-error.json") + "'; exit 226");
  const auto r = run_diagnostic(diag_template(dcgmi), 2, 30);
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::RuntimeError);
}

TEST(Diagnostic, MissingCommand) {
  const auto r = run_diagnostic({"shepherd-no-such-dcgmi", "diag", "-r", "{level}", "-j"}, 1, 30);
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::CommandMissing);
  EXPECT_NE(r.detail.find("shepherd-no-such-dcgmi"), std::string::npos) << r.detail;
  EXPECT_EQ(run_diagnostic({}, 1, 30).problem, DiagProblem::CommandMissing);
}

TEST(Diagnostic, TimeoutKillsTheGroup) {
  TempDir dir;
  const auto dcgmi = fake_dcgmi(dir, "sleep 30 & echo $! > '" + (dir / "bg.pid") + "'; sleep 30");
  const auto started = std::chrono::steady_clock::now();
  const auto r = run_diagnostic(diag_template(dcgmi), 1, 0.3);
  EXPECT_LT(elapsed_s(started), 2.0);  // SIGTERM was enough
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::TimedOut);
  pid_t background = 0;
  std::ifstream(dir / "bg.pid") >> background;
  ASSERT_GT(background, 0);
  for (int i = 0; i < 200 && alive(background); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(alive(background));
}

TEST(Diagnostic, NotJsonKeepsStderrInTheDetail) {
  TempDir dir;
  const auto dcgmi = fake_dcgmi(dir, "cat '" + fixture("malformed-not-json.txt") +
                                         "'; echo 'Error: unable to connect to host engine' >&2; "
                                         "echo 'second line' >&2; exit 1");
  const auto r = run_diagnostic(diag_template(dcgmi), 1, 30);
  EXPECT_EQ(r.verdict, Verdict::Inconclusive);
  EXPECT_EQ(r.problem, DiagProblem::NotJson);
  EXPECT_NE(r.detail.find("(stderr: Error: unable to connect to host engine)"), std::string::npos)
      << r.detail;
  EXPECT_EQ(r.detail.find('\n'), std::string::npos);
  EXPECT_LE(r.detail.size(), health::kMaxDetail);
}

TEST(Diagnostic, LevelIsSubstitutedInEachWordWithoutAShell) {
  TempDir dir;
  const auto dcgmi = fake_dcgmi(dir, "cat '" + fixture("nvvs-3.1.0-deployment-pass.txt") + "'");
  const auto r = run_diagnostic(
      {dcgmi, "diag", "-r", "{level}", "--tag=l{level}-{level}", "$(touch pwned); {x}", "-j"}, 4,
      30);
  EXPECT_EQ(r.verdict, Verdict::Pass) << r.detail;
  EXPECT_EQ(read_file(dir / "args"), "diag\n-r\n4\n--tag=l4-4\n$(touch pwned); {x}\n-j\n");
  EXPECT_FALSE(fs::exists(dir / "pwned"));
  EXPECT_FALSE(fs::exists("pwned"));
  EXPECT_EQ(diag_argv(kDefaultDiagCommand, 2),
            (std::vector<std::string>{"dcgmi", "diag", "-r", "2", "-j"}));
  EXPECT_EQ(diag_argv({"x{level}{level}"}, 10), std::vector<std::string>{"x1010"});
}

TEST(RunCommand, ExitStatusSignalAndOutputs) {
  auto o = run_command({"sh", "-c", "echo out; echo err >&2; exit 7"}, 10s);
  EXPECT_EQ(o.exit_code, 7);
  EXPECT_EQ(o.signal, 0);
  EXPECT_FALSE(o.timed_out);
  EXPECT_FALSE(o.not_found);
  EXPECT_EQ(o.out, "out\n");
  EXPECT_EQ(o.err, "err\n");

  o = run_command({"sh", "-c", "kill -9 $$"}, 10s);
  EXPECT_EQ(o.signal, SIGKILL);
  EXPECT_EQ(o.exit_code, 128 + SIGKILL);

  o = run_command({"shepherd-no-such-command"}, 10s);
  EXPECT_TRUE(o.not_found);
  EXPECT_EQ(o.exit_code, 127);
}

TEST(RunCommand, OutputIsCutAtItsLimitWithoutBlockingTheCommand) {
  const auto o = run_command(
      {"sh", "-c", "head -c 3000000 /dev/zero; head -c 100000 /dev/zero >&2"}, 10s, 1000, 100);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out.size(), 1000u);
  EXPECT_TRUE(o.out_truncated);
  EXPECT_EQ(o.err.size(), 100u);
}

TEST(RunCommand, TermIgnoredGetsKill) {
  const auto started = std::chrono::steady_clock::now();
  const auto o = run_command({"sh", "-c", "trap '' TERM; sleep 30"}, 200ms);
  EXPECT_TRUE(o.timed_out);
  EXPECT_EQ(o.signal, SIGKILL);
  EXPECT_GE(elapsed_s(started), 2.0);
  EXPECT_LT(elapsed_s(started), 5.0);
}

TEST(RunCommand, AProcessLeftHoldingThePipeIsNotWaitedFor) {
  TempDir dir;
  const auto started = std::chrono::steady_clock::now();
  const auto o =
      run_command({"sh", "-c", "sleep 30 & echo $! > '" + (dir / "bg.pid") + "'; echo done"}, 20s);
  EXPECT_LT(elapsed_s(started), 5.0);
  EXPECT_FALSE(o.timed_out);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "done\n");
  pid_t background = 0;
  std::ifstream(dir / "bg.pid") >> background;
  if (background > 0) ::kill(background, SIGKILL);
}

}  // namespace
}  // namespace shepherd::agent
