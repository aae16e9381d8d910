#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "scenario/scenario.hpp"

namespace shepherd {

struct Event;
struct Decision;

struct SweepOptions {
  std::uint64_t first_seed = 1;
  int seeds = 100;
  // Chaos::standard() for a scenario whose file has no chaos block of its own (without chaos
  // every seed gives the same run: the seed only draws the chaos).
  bool chaos = false;
  std::function<void(const Event&, Decision&)> tamper;  // tests only: a planted bug
};

struct SweepFailure {
  std::uint64_t seed = 0;
  std::vector<std::string> problems;
};

// Runs the scenario once per seed with the invariants checked at every step and at the end (no
// record stuck in a transient state without a deadline, no node running two jobs' tasks, no old
// attempt beside a new one, no more reboots than decided, no refused decision) and returns the
// seeds that broke one.
std::vector<SweepFailure> sweep(const Scenario& scenario, const SweepOptions& options);

// The scenario as one seed of a sweep runs it.
Scenario sweep_variant(Scenario scenario, std::uint64_t seed, bool chaos);

}  // namespace shepherd
