#include "common/yaml_checks.hpp"

#include <algorithm>

namespace shepherd::yaml_checks {
namespace {

bool is_marker(std::string_view line, std::string_view marker) {
  if (line.substr(0, 3) != marker) return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

// Blank, a comment, or a directive (`%YAML 1.2`): not document content.
bool is_content(std::string_view line) {
  const auto first = line.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return false;
  return line[first] != '#' && !(first == 0 && line[0] == '%');
}

}  // namespace

std::optional<int> nul_line(std::string_view text) {
  const auto nul = text.find('\0');
  if (nul == std::string_view::npos) return std::nullopt;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + nul, '\n'));
}

std::optional<int> second_document_line(std::string_view text) {
  bool content = false;  // of the current document
  bool ended = false;    // `...` closed the first document
  int line_no = 0;
  for (std::size_t start = 0; start <= text.size();) {
    const auto end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    ++line_no;
    if (is_marker(line, "---")) {
      if (content || ended) return line_no;
    } else if (is_marker(line, "...")) {
      ended = ended || content;
    } else if (is_content(line)) {
      if (ended) return line_no;
      content = true;
    }
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace shepherd::yaml_checks
