// `shepherd sim run FILE [--json]` and `shepherd sim check FILE`.
#include <iostream>

#include "cli/commands.hpp"
#include "sim/check.hpp"
#include "sim/simulation.hpp"

namespace shepherd::cli {
namespace {

struct SimArgs {
  std::string file;
  bool json = false;
  std::string store = ":memory:";
  std::optional<double> until;
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
  run->callback([args, &code] {
    auto scenario = load(args->file);
    if (!scenario) {
      code = 2;
      return;
    }
    if (args->until) scenario->until = *args->until;
    SimOptions options;
    options.store_path = args->store;
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
}

}  // namespace shepherd::cli
