#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// The one strict YAML reader of Shepherd's files (scenarios, the server's config, the Xid
// catalogue): typed reads of a yaml-cpp tree where every failure throws YamlError naming the file,
// the 1-based line and the field's path ("events[2].node"). Each file's reader turns it into its
// own error type.
namespace shepherd::yaml_reader {

class YamlError : public std::runtime_error {
 public:
  // what(): "FILE:LINE: PATH: PROBLEM" (no LINE when 0, no PATH when empty).
  YamlError(std::string file, int line, std::string path, const std::string& problem);

  const std::string& file() const { return file_; }
  int line() const { return line_; }                 // 1-based; 0 when unknown
  const std::string& path() const { return path_; }  // e.g. "events[2].node"; "" for the file

 private:
  std::string file_;
  int line_;
  std::string path_;
};

// Parses `text`, one YAML document, after the checks yaml-cpp cannot be trusted with (a NUL byte,
// a second document: common/yaml_checks.hpp); `kind` names the file in messages ("a scenario").
// Throws YamlError, a syntax error at its line.
YAML::Node load_document(std::string_view text, const std::string& file, std::string_view kind);
// The whole file at `path`, for load_document; YamlError (line 0) if it cannot be read.
std::string read_file_text(const std::string& path);

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
