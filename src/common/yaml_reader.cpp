#include "common/yaml_reader.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.hpp"
#include "common/yaml_checks.hpp"

namespace shepherd::yaml_reader {
namespace {

std::string join(std::initializer_list<std::string_view> words) {
  std::string out;
  for (auto w : words) out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? printable(key) : parent + "." + printable(key);
}

std::string error_text(const std::string& file, int line, const std::string& path,
                       const std::string& problem) {
  std::string out = file;
  if (line >
      0) {  // appended piecewise: GCC 12 at -O3 warns falsely on ":" + to_string (bug 105329)
    out += ':';
    out += std::to_string(line);
  }
  out += ": ";
  if (!path.empty()) out += path + ": ";
  return out + problem;
}

}  // namespace

YamlError::YamlError(std::string file, int line, std::string path, const std::string& problem)
    : std::runtime_error(error_text(file, line, path, problem)),
      file_(std::move(file)),
      line_(line),
      path_(std::move(path)) {}

YAML::Node load_document(std::string_view text, const std::string& file, std::string_view kind) {
  if (const auto line = yaml_checks::nul_line(text))
    throw YamlError(file, *line, "", fmt::format("the file contains a NUL byte: {} is text", kind));
  if (const auto line = yaml_checks::second_document_line(text))
    throw YamlError(file, *line, "",
                    fmt::format("{} holds one YAML document; a second begins here (`---`)", kind));
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {  // yaml-cpp's marks are 0-based
    throw YamlError(
        file, e.mark.is_null() ? 0 : e.mark.line + 1, "",
        "YAML syntax error: " + e.msg + " (column " + std::to_string(e.mark.column + 1) + ")");
  }
}

std::string read_file_text(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw YamlError(path, 0, "", "is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw YamlError(path, 0, "", std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw YamlError(path, 0, "", "cannot read the file");
  return text.str();
}

std::string printable(std::string_view text) {
  constexpr std::size_t kMost = 80;
  std::string out;
  for (unsigned char c : text.substr(0, kMost)) {
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMost) out += "...";
  return out;
}

std::string describe(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing";
  return fmt::format("'{}'", printable(n.Scalar()));
}

Map::Map(const Reader& reader, const Field& self) : reader_(reader), self_(self) {
  if (!self.node.IsMap()) reader.fail(self, "expected a mapping, got " + describe(self.node));
  for (auto it = self.node.begin(); it != self.node.end(); ++it) {
    // Copies: `it->` yields a temporary pair, so references into it would dangle.
    const YAML::Node k = it->first;
    const YAML::Node v = it->second;
    const int key_line = k.Mark().line + 1;
    if (!k.IsScalar()) reader.fail({k, self.path, key_line}, "keys must be names");
    const std::string key = k.Scalar();
    const std::string path = child_path(self.path, key);
    if (auto prev = key_lines_.find(key); prev != key_lines_.end()) {
      reader.fail({v, path, key_line},
                  "duplicate key (first on line " + std::to_string(prev->second) + ")");
    }
    // A scalar or a flow collection is reported where it is. A block collection starts on a later
    // line than its key and a null value's mark points past it: report those at the key's line.
    const bool here =
        v.IsScalar() || ((v.IsMap() || v.IsSequence()) && v.Style() == YAML::EmitterStyle::Flow);
    const int line = here && !v.Mark().is_null() ? v.Mark().line + 1 : key_line;
    key_lines_[key] = key_line;
    entries_.emplace_back(key, Field{v, path, line});
  }
}

void Map::allow(std::initializer_list<std::string_view> allowed, const std::string& what) const {
  for (const auto& [key, f] : entries_) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == key;
    if (!ok) {
      reader_.fail(key_of(key), "unknown key" + (what.empty() ? "" : " for " + what) +
                                    "; expected one of " + join(allowed));
    }
  }
}

std::optional<Field> Map::get(std::string_view key) const {
  for (const auto& [k, f] : entries_)
    if (k == key) return f;
  return std::nullopt;
}

Field Map::need(std::string_view key) const {
  if (auto f = get(key)) return *f;
  reader_.fail({self_.node, child_path(self_.path, key), self_.line}, "required field is missing");
}

Field Map::key_of(const std::string& key) const {
  auto f = *get(key);
  f.line = key_lines_.at(key);
  return f;
}

void Reader::fail(const Field& f, const std::string& problem) const {
  throw YamlError(file_, f.line, f.path, problem);
}

std::vector<Field> Reader::list(const Field& f) const {
  if (!f.node.IsSequence()) fail(f, "expected a list, got " + describe(f.node));
  std::vector<Field> out;
  out.reserve(f.node.size());
  std::size_t i = 0;
  for (const YAML::Node& e : f.node) {
    const int line = e.IsNull() || e.Mark().is_null() ? f.line : e.Mark().line + 1;
    out.push_back({e, f.path + "[" + std::to_string(i++) + "]", line});
  }
  return out;
}

std::string Reader::text(const Field& f) const {
  if (!f.node.IsScalar()) fail(f, "expected a string, got " + describe(f.node));
  return f.node.Scalar();
}

// A plain (unquoted) scalar meant as a number: "42" in quotes is a string in YAML.
std::string Reader::number_text(const Field& f, const char* what) const {
  if (!f.node.IsScalar()) fail(f, std::string("expected ") + what + ", got " + describe(f.node));
  if (f.node.Tag() == "!")
    fail(f, std::string("expected ") + what + ", got the quoted string '" + f.node.Scalar() + "'");
  std::string s = f.node.Scalar();
  if (s.size() > 1 && s[0] == '+') s.erase(0, 1);  // from_chars does not take a '+' sign
  return s;
}

template <typename T>
static T parse_integer(const Reader& r, const Field& f, const std::string& s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) r.fail(f, "'" + f.node.Scalar() + "' is out of range");
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    r.fail(f, "expected an integer, got " + describe(f.node));
  return v;
}

int Reader::integer(const Field& f, std::int64_t lo, std::int64_t hi) const {
  const auto v = parse_integer<std::int64_t>(*this, f, number_text(f, "an integer"));
  if (v < lo || v > hi) {
    const std::string range = hi == INT32_MAX
                                  ? "at least " + std::to_string(lo)
                                  : "between " + std::to_string(lo) + " and " + std::to_string(hi);
    fail(f, "must be " + range + ", got " + f.node.Scalar());
  }
  return static_cast<int>(v);
}

std::uint64_t Reader::unsigned64(const Field& f) const {
  const std::string s = number_text(f, "a non-negative integer");
  if (!s.empty() && s[0] == '-') fail(f, "must be at least 0, got " + s);
  return parse_integer<std::uint64_t>(*this, f, s);
}

double Reader::seconds(const Field& f, bool positive) const {
  const std::string s = number_text(f, "a number of seconds");
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !std::isfinite(v))
    fail(f, "expected a number of seconds, got " + describe(f.node));
  if (positive ? v <= 0 : v < 0)
    fail(f, std::string("must be ") + (positive ? "> 0" : ">= 0") + ", got " + f.node.Scalar());
  if (v > kMaxSeconds)
    fail(f, "must be at most " + std::to_string(static_cast<long long>(kMaxSeconds)) +
                " seconds, got " + f.node.Scalar());
  return v;
}

double Reader::fraction(const Field& f) const {
  const std::string s = number_text(f, "a number from 0 to 1");
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !(v >= 0 && v <= 1))
    fail(f, "expected a number from 0 to 1, got " + describe(f.node));
  return v;
}

bool Reader::boolean(const Field& f) const {
  const std::string s = f.node.IsScalar() ? f.node.Scalar() : "";
  if (s == "true") return true;
  if (s == "false") return false;
  fail(f, "expected true or false, got " + describe(f.node));
}

}  // namespace shepherd::yaml_reader
