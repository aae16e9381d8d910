// `shepherd sim run FILE [--json]` and `shepherd sim check FILE`.
#include <iostream>

#include "cli/commands.hpp"
#include "sim/check.hpp"
#include "sim/simulation.hpp"
#include "sim/sweep.hpp"

namespace shepherd::cli {
namespace {

struct SimArgs {
  std::string file;
  bool json = false;
  std::string store = ":memory:";
  std::optional<double> until;
  std::optional<std::uint64_t> seed;
  bool chaos = false;
  bool invariants = false;
};

struct SweepArgs {
  std::vector<std::string> files;
  int seeds = 100;
  std::uint64_t first_seed = 1;
  bool chaos = false;
};

// Loads the scenario or prints why not (file, line, field) and returns nullopt.
std::optional<Scenario> load(const std::string& file) {
  try {
    return load_scenario(file);
  } catch (const ScenarioError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return std::nullopt;
  }
}

}  // namespace

void add_sim_commands(CLI::App& app, int& code) {
  auto* sim = app.add_subcommand("sim", "Run a simulated cluster from a scenario file");
  sim->require_subcommand(1);
  auto args = std::make_shared<SimArgs>();

  auto* run = sim->add_subcommand("run", "Run a scenario and print its timeline (or --json)");
  run->add_option("scenario", args->file, "Scenario file (YAML)")->required();
  run->add_flag("--json", args->json, "Print one JSON object: jobs, nodes, tasks, timeline, ...");
  run->add_option("--store", args->store,
                  "SQLite file for the store (default: in memory); a kept file goes on where the "
                  "last run stopped");
  run->add_option("--until", args->until, "Stop at this virtual second (default: the scenario's)")
      ->check(CLI::Range(0.0, kMaxSeconds));
  run->add_option("--seed", args->seed, "Seed for the chaos (default: the scenario's)");
  run->add_flag("--chaos", args->chaos,
                "Duplicate, delay and drop reports, delay actions and crash the controller "
                "(unless the scenario has a chaos block)");
  run->add_flag("--invariants", args->invariants,
                "Check the sweep's invariants after every step; exit 1 and print any broken");
  run->callback([args, &code] {
    auto scenario = load(args->file);
    if (!scenario) {
      code = 2;
      return;
    }
    if (args->until) scenario->until = *args->until;
    *scenario = sweep_variant(*scenario, args->seed.value_or(scenario->seed), args->chaos);
    SimOptions options;
    options.store_path = args->store;
    options.check_invariants = args->invariants;
    Simulation sim(*scenario, options);
    sim.run();
    if (args->json) {
      std::cout << sim.report().dump(2) << "\n";
    } else {
      std::cout << sim.timeline_text();
      const auto r = sim.report();
      std::cout << "\nfinal: ";
      for (const auto& [id, job] : r["jobs"].items())
        std::cout << id << " " << job["status"].get<std::string>() << " (retry " << job["retry"]
                  << ")  ";
      std::cout << "\nstats: " << r["stats"].dump() << "\n";
    }
    if (args->invariants) {
      for (const auto& v : sim.violations()) std::cerr << "invariant broken: " << v << "\n";
      if (!sim.violations().empty()) code = 1;
    }
  });

  auto* check = sim->add_subcommand("check", "Run a scenario and check its `expect:` block");
  check->add_option("scenario", args->file, "Scenario file (YAML)")->required();
  check->callback([args, &code] {
    auto scenario = load(args->file);
    if (!scenario) {
      code = 2;
      return;
    }
    if (scenario->expect.empty()) {
      std::cerr << "error: " << args->file << ": no `expect:` block to check\n";
      code = 2;
      return;
    }
    Simulation sim(*scenario);
    sim.run();
    const auto problems = check_expectations(scenario->expect, sim.report());
    for (const auto& p : problems) std::cerr << args->file << ": " << p << "\n";
    if (!problems.empty()) std::cerr << sim.timeline_text();
    std::cout << args->file << ": " << (problems.empty() ? "ok" : "FAILED") << "\n";
    code = problems.empty() ? 0 : 1;
  });

  auto sweep_args = std::make_shared<SweepArgs>();
  auto* sweep_cmd = sim->add_subcommand(
      "sweep", "Run scenarios under many seeds and check the invariants after every step");
  sweep_cmd->add_option("scenarios", sweep_args->files, "Scenario files (YAML)")->required();
  sweep_cmd->add_option("--seeds", sweep_args->seeds, "Seeds per scenario")
      ->check(CLI::Range(1, 1000000));
  sweep_cmd->add_option("--first-seed", sweep_args->first_seed, "The first seed");
  sweep_cmd->add_flag("--chaos", sweep_args->chaos,
                      "Chaos for scenarios without a chaos block (without it every seed runs "
                      "the same)");
  sweep_cmd->callback([sweep_args, &code] {
    int failed_seeds = 0;
    for (const auto& file : sweep_args->files) {
      auto scenario = load(file);
      if (!scenario) {
        code = 2;
        return;
      }
      SweepOptions options;
      options.seeds = sweep_args->seeds;
      options.first_seed = sweep_args->first_seed;
      options.chaos = sweep_args->chaos;
      const auto failures = sweep(*scenario, options);
      std::cout << file << ": " << sweep_args->seeds << " seeds, " << failures.size()
                << " failed\n";
      for (const auto& f : failures) {
        std::cout << "  seed " << f.seed << ":\n";
        for (std::size_t i = 0; i < f.problems.size() && i < 5; ++i)
          std::cout << "    " << f.problems[i] << "\n";
        std::cout << "    replay: shepherd sim run " << file << " --seed " << f.seed
                  << (sweep_args->chaos ? " --chaos" : "") << " --invariants\n";
      }
      failed_seeds += static_cast<int>(failures.size());
    }
    code = failed_seeds == 0 ? 0 : 1;
  });
}

}  // namespace shepherd::cli
