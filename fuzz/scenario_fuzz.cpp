// libFuzzer target: the scenario reader. Any input is either a Scenario or a ScenarioError with a
// message; anything else (another exception, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "scenario/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)shepherd::parse_scenario(text, "fuzz.yaml");
  } catch (const shepherd::ScenarioError& e) {
    if (std::string(e.what()).empty()) __builtin_trap();  // every error says what is wrong
  }
  return 0;
}
