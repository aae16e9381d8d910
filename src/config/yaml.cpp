// The YAML reader: walks the file's maps, so unknown keys, wrong types and secrets in the file are
// caught with the line they are on.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "common/yaml_checks.hpp"
#include "config/fields.hpp"

namespace shepherd::config_detail {
namespace {

class Reader {
 public:
  Reader(Config& c, std::string file) : c_(c), file_(std::move(file)) {}

  std::optional<SecretFileRef> run() {
    YAML::Node root;
    try {
      std::ifstream in(file_, std::ios::binary);
      std::error_code ec;
      if (!in || std::filesystem::is_directory(file_, ec))
        throw ConfigError(file_ + ": cannot read the file");
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      // Refused before yaml-cpp sees them (common/yaml_checks.hpp says why).
      if (const auto line = yaml_checks::nul_line(text))
        throw ConfigError(file_ + ":" + std::to_string(*line) +
                          ": the file contains a NUL byte: a config file is text");
      if (const auto line = yaml_checks::second_document_line(text))
        throw ConfigError(file_ + ":" + std::to_string(*line) +
                          ": a config file holds one YAML document; a second begins here (`---`)");
      root = YAML::Load(text);
    } catch (const YAML::BadFile&) {
      throw ConfigError(file_ + ": cannot read the file");
    } catch (const YAML::Exception& e) {  // syntax: yaml-cpp's mark is 0-based
      throw ConfigError(file_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (root.IsNull()) return std::nullopt;  // an empty file: all defaults
    if (!root.IsMap()) throw error(root.Mark(), "", "expected a map of settings");
    walk(root, "");
    return secret_;
  }

 private:
  std::string location(const YAML::Mark& mark) const {
    return mark.is_null() ? file_ : file_ + ":" + std::to_string(mark.line + 1);
  }

  ConfigError error(const YAML::Mark& mark, std::string_view path, const std::string& reason) {
    return ConfigError(location(mark) + ": " + (path.empty() ? "" : std::string(path) + ": ") +
                       reason);
  }

  // A `key:` with no value is marked where the parser noticed, often the next line: point at
  // the key instead.
  static YAML::Mark mark_of(const YAML::Node& value, const YAML::Node& key) {
    return value.IsNull() || value.Mark().is_null() ? key.Mark() : value.Mark();
  }

  static bool is_section(std::string_view path) {
    const std::string prefix = std::string(path) + ".";
    for (const auto& f : fields())
      if (f.path.starts_with(prefix)) return true;
    return std::string_view(kWebhookFileKey).starts_with(prefix);
  }

  static std::string known_under(std::string_view section) {
    std::set<std::string> names;
    auto add = [&](std::string_view path) {
      if (!section.empty()) {
        if (!path.starts_with(std::string(section) + ".")) return;
        path.remove_prefix(section.size() + 1);
      }
      names.insert(std::string(path.substr(0, path.find('.'))));
    };
    for (const auto& f : fields()) add(f.path);
    add(kWebhookFileKey);
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  }

  void walk(const YAML::Node& map, const std::string& section) {
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const YAML::Node& key = kv.first;
      const YAML::Node& value = kv.second;
      if (!key.IsScalar()) throw error(key.Mark(), section, "keys must be plain names");
      const std::string path = section.empty() ? key.Scalar() : section + "." + key.Scalar();
      if (!seen.insert(key.Scalar()).second) throw error(key.Mark(), path, "duplicate key");
      const YAML::Mark mark = mark_of(value, key);

      if (is_refused_secret_key(path))
        throw error(key.Mark(), path,
                    "the webhook URL is a secret and is not read from the YAML file; set "
                    "SHEPHERD_WEBHOOK_URL or name a private file with SHEPHERD_WEBHOOK_URL_FILE "
                    "or notify.webhook_url_file");
      if (path == kWebhookFileKey) {
        const std::string file = scalar(value, mark, path, "expected a file path");
        if (file.empty()) throw error(mark, path, "must not be empty");
        secret_ = SecretFileRef{file, location(mark) + ": " + path};
      } else if (const Field* f = find_field(path)) {
        set(*f, value, mark);
      } else if (is_section(path)) {
        if (value.IsNull()) continue;  // `policy:` with nothing under it
        if (!value.IsMap()) throw error(mark, path, "expected a map");
        walk(value, path);
      } else if (const char* moved = agent_setting(path)) {
        throw error(key.Mark(), path, moved);
      } else {
        throw error(key.Mark(), path,
                    "unknown key (known" + (section.empty() ? "" : " under " + section) + ": " +
                        known_under(section) + ")");
      }
    }
  }

  std::string scalar(const YAML::Node& value, const YAML::Mark& mark, std::string_view path,
                     const std::string& expected) {
    if (value.IsScalar()) return value.Scalar();
    const char* got = value.IsMap() ? "a map" : value.IsSequence() ? "a list" : "nothing";
    throw error(mark, path, expected + ", got " + got);
  }

  void set(const Field& f, const YAML::Node& value, const YAML::Mark& mark) {
    if (f.type == Type::IntList) {
      if (!value.IsSequence()) throw error(mark, f.path, "expected a list of exit codes");
      std::vector<int> codes;
      for (const auto& item : value) {
        const std::string text = scalar(item, item.Mark(), f.path, "expected an integer exit code");
        codes.push_back(parse_exit_code(
            text, [&](const std::string& reason) { return error(item.Mark(), f.path, reason); }));
      }
      c_.policy.app_exit_codes = std::move(codes);
      check_policy_value(c_, f,
                         [&](const std::string& reason) { return error(mark, f.path, reason); });
      return;
    }
    const char* expected = f.type == Type::String || f.type == Type::OtherExitCodes
                               ? "expected a string"
                           : f.type == Type::Int ? "expected an integer"
                                                 : "expected a number of seconds";
    set_scalar(c_, f, scalar(value, mark, f.path, expected),
               [&](const std::string& reason) { return error(mark, f.path, reason); });
  }

  Config& c_;
  std::string file_;
  std::optional<SecretFileRef> secret_;
};

}  // namespace

std::optional<SecretFileRef> apply_yaml(Config& c, const std::string& yaml_path) {
  return Reader(c, yaml_path).run();
}

}  // namespace shepherd::config_detail
