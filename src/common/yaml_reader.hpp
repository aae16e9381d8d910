#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// Typed, strict reads of a yaml-cpp tree for the scenario parser: every failure throws
// ScenarioError naming the file, the 1-based line and the field's path ("events[2].node").
namespace shepherd::yaml_reader {

// A value in the document with what an error about it must say: its path and its line.
struct Field {
  YAML::Node node;
  std::string path;  // "events[2].node"; "" for the document
  int line = 1;      // 1-based
};

class Reader;

// "a list", "a mapping", "nothing" or the scalar in quotes: what an error says was found.
std::string describe(const YAML::Node& n);
// `text` fit for a message: control bytes (a NUL in a key) as \xNN, at most 80 characters.
std::string printable(std::string_view text);

// A mapping's entries, in file order, with duplicate keys refused (yaml-cpp keeps them silently).
class Map {
 public:
  Map(const Reader& reader, const Field& self);

  // Refuses any key not in `allowed`; `what` names the kind of mapping for the message.
  void allow(std::initializer_list<std::string_view> allowed, const std::string& what = "") const;
  std::optional<Field> get(std::string_view key) const;
  Field need(std::string_view key) const;      // a missing key is reported at the mapping's line
  Field key_of(const std::string& key) const;  // the key itself: its path, the key's line
  const std::vector<std::pair<std::string, Field>>& entries() const { return entries_; }

 private:
  const Reader& reader_;
  Field self_;
  std::vector<std::pair<std::string, Field>> entries_;
  std::unordered_map<std::string, int> key_lines_;
};

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const Field& f, const std::string& problem) const;
  const std::string& file() const { return file_; }

  std::vector<Field> list(const Field& f) const;
  std::string text(const Field& f) const;  // any scalar
  std::string name(const Field& f) const;  // a non-empty scalar
  int integer(const Field& f, std::int64_t lo, std::int64_t hi) const;
  int count(const Field& f) const { return integer(f, 0, INT32_MAX); }
  std::uint64_t unsigned64(const Field& f) const;
  double seconds(const Field& f, bool positive) const;  // finite; > 0 if positive, else >= 0
  double fraction(const Field& f) const;                // a probability: 0 to 1
  bool boolean(const Field& f) const;                   // true or false

 private:
  std::string number_text(const Field& f, const char* what) const;

  std::string file_;
};

}  // namespace shepherd::yaml_reader
