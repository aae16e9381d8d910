#pragma once
// Checks on YAML text made before yaml-cpp parses it, shared by the scenario and config readers.
// yaml-cpp 0.7 loops forever in YAML::LoadAll on some inputs (",  :" is one) and on some with a
// NUL byte, both found by fuzz/: so the readers parse one document with YAML::Load and find a
// second one here, in the text.
#include <optional>
#include <string_view>

namespace shepherd::yaml_checks {

// The 1-based line of the first NUL byte, if any (YAML files are text).
std::optional<int> nul_line(std::string_view text);

// The 1-based line where a second document begins: a `---` marker at the start of a line (YAML
// markers are always at column 0) after content, or after a first `---` that followed content.
std::optional<int> second_document_line(std::string_view text);

}  // namespace shepherd::yaml_checks
