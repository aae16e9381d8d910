#include "sim/sweep.hpp"

#include "sim/simulation.hpp"

namespace shepherd {

Scenario sweep_variant(Scenario scenario, std::uint64_t seed, bool chaos) {
  scenario.seed = seed;
  if (chaos && !scenario.chaos.any()) scenario.chaos = Chaos::standard();
  return scenario;
}

std::vector<SweepFailure> sweep(const Scenario& scenario, const SweepOptions& options) {
  std::vector<SweepFailure> failures;
  for (int i = 0; i < options.seeds; ++i) {
    const std::uint64_t seed = options.first_seed + static_cast<std::uint64_t>(i);
    SimOptions sim_options;
    sim_options.check_invariants = true;
    sim_options.tamper = options.tamper;
    SweepFailure failure{seed, {}};
    try {
      Simulation sim(sweep_variant(scenario, seed, options.chaos), sim_options);
      sim.run();
      failure.problems = sim.violations();
    } catch (const std::exception& e) {
      failure.problems.push_back(std::string("the run stopped with an error: ") + e.what());
    }
    if (!failure.problems.empty()) failures.push_back(std::move(failure));
  }
  return failures;
}

}  // namespace shepherd
