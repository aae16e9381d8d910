// The simulator's chaos and seed sweep: it finds a planted hang, sweeps the real rules clean,
// survives controller crashes with every reboot carried out once, and gives the same bytes for the
// same seed.
#include <gtest/gtest.h>

#include "scenario/scenario.hpp"
#include "sim/simulation.hpp"
#include "sim/sweep.hpp"

namespace shepherd {
namespace {

Scenario scenario(const std::string& name) {
  return load_scenario(std::string(SHEPHERD_SOURCE_DIR) + "/tests/scenarios/" + name + ".yaml");
}

// A rule that forgets a deadline: a reboot that never ends then leaves the job waiting forever.
TEST(SimSweep, FindsAPlantedHang) {
  SweepOptions options;
  options.seeds = 3;
  options.chaos = true;
  options.tamper = [](const Event&, Decision& d) {
    for (Node& n : d.nodes)
      if (n.status == NodeStatus::Rebooting) n.deadline_at = 0;
  };
  const auto failures = sweep(scenario("reboot_hang_times_out"), options);
  ASSERT_EQ(failures.size(), 3u);
  bool stuck = false;
  for (const auto& p : failures[0].problems) stuck = stuck || p.find("stuck") != std::string::npos;
  EXPECT_TRUE(stuck) << failures[0].problems.front();
}

TEST(SimSweep, TheRulesSweepClean) {
  SweepOptions options;
  options.seeds = 5;
  options.chaos = true;
  for (const char* name :
       {"reboot_hang_times_out", "gpu_fault_recovers", "agent_lost_returns_healthy"}) {
    const auto failures = sweep(scenario(name), options);
    EXPECT_TRUE(failures.empty()) << name << ": seed " << failures.front().seed << ": "
                                  << failures.front().problems.front();
  }
}

// Crashes between commit and dispatch, between delivery and acknowledgement and mid-batch, each
// followed by a restart on the same file: the recovery still ends, and the node is rebooted once.
TEST(SimSweep, ControllerCrashesLoseNothingAndRepeatNothing) {
  Scenario s = scenario("gpu_fault_recovers");
  s.chaos.crashes = 6;
  s.chaos.crash_rate = 0.3;
  int crashed_runs = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    s.seed = seed;
    SimOptions options;
    options.check_invariants = true;
    Simulation sim(s, options);
    sim.run();
    const auto r = sim.report();
    crashed_runs += r["chaos"]["controller_crashes"].empty() ? 0 : 1;
    EXPECT_EQ(r["jobs"]["train"]["status"], "COMPLETE") << "seed " << seed;
    EXPECT_EQ(r["stats"]["reboots"], 1) << "seed " << seed;
    EXPECT_TRUE(sim.violations().empty()) << sim.violations().front();
  }
  EXPECT_GT(crashed_runs, 0);
}

TEST(SimSweep, SameSeedSameBytes) {
  Scenario s = sweep_variant(scenario("two_failures_at_once"), 7, true);
  Simulation a(s), b(s);
  a.run();
  b.run();
  EXPECT_EQ(a.report().dump(), b.report().dump());
  Simulation c(sweep_variant(scenario("two_failures_at_once"), 8, true));
  c.run();
  EXPECT_NE(a.report().dump(), c.report().dump());  // the seed does draw the chaos
}

TEST(SimSweep, ChaosKeysParseAndAreRangeChecked) {
  const std::string base = "cluster: {nodes: 1}\n";
  const Scenario s =
      parse_scenario(base +
                         "chaos: {duplicate_events: true, reorder_window: 2, drop_started: 0.5, "
                         "action_delay: 1, crashes: 2, crash_rate: 0.1}\n",
                     "t.yaml");
  EXPECT_TRUE(s.chaos.duplicate_events);
  EXPECT_EQ(s.chaos.crashes, 2);
  EXPECT_THROW(parse_scenario(base + "chaos: {drop_started: 2}\n", "t.yaml"), ScenarioError);
  EXPECT_THROW(parse_scenario(base + "chaos: {duplicate_events: yes}\n", "t.yaml"), ScenarioError);
  EXPECT_THROW(parse_scenario(base + "chaos: {meteors: 1}\n", "t.yaml"), ScenarioError);
}

}  // namespace
}  // namespace shepherd
