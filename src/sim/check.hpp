#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scenario/scenario.hpp"

namespace shepherd {
// Compares a simulation report with the scenario's `expect:` block; returns one line per mismatch.
std::vector<std::string> check_expectations(const Expectations& expect,
                                            const nlohmann::json& report);
}  // namespace shepherd
