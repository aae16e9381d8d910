// The config file on the one strict YAML reader (common/yaml_reader.hpp): unknown keys, duplicate
// keys, wrong types and secrets in the file are caught with the line they are on.
#include <set>

#include "common/yaml_reader.hpp"
#include "config/fields.hpp"

namespace shepherd::config_detail {
namespace {

using yaml_reader::Map;
using Value = yaml_reader::Field;  // a value in the file (config's Field is a setting)

class Reader : private yaml_reader::Reader {
 public:
  Reader(Config& c, const std::string& file) : yaml_reader::Reader(file), c_(c) {}

  std::optional<SecretFileRef> run() {
    const YAML::Node root =
        yaml_reader::load_document(yaml_reader::read_file_text(file()), file(), "a config file");
    if (root.IsNull()) return std::nullopt;  // an empty file: all defaults
    walk(Value{root, "", 1});
    return secret_;
  }

 private:
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

  void walk(const Value& section) {
    const Map map(*this, section);
    for (const auto& [key, value] : map.entries()) {
      const std::string& path = value.path;
      if (is_refused_secret_key(path))
        fail(map.key_of(key),
             "the webhook URL is a secret and is not read from the YAML file; set "
             "SHEPHERD_WEBHOOK_URL or name a private file with SHEPHERD_WEBHOOK_URL_FILE or "
             "notify.webhook_url_file");
      if (path == kWebhookFileKey) {
        const std::string url_file = text(value);
        if (url_file.empty()) fail(value, "must not be empty");
        secret_ = SecretFileRef{url_file, file() + ":" + std::to_string(value.line) + ": " + path};
      } else if (const Field* f = find_field(path)) {
        set(*f, value);
      } else if (is_section(path)) {
        if (!value.node.IsNull()) walk(value);  // `policy:` with nothing under it is no change
      } else if (const char* moved = agent_setting(path)) {
        fail(map.key_of(key), moved);
      } else {
        fail(map.key_of(key), "unknown key (known" +
                                  (section.path.empty() ? "" : " under " + section.path) + ": " +
                                  known_under(section.path) + ")");
      }
    }
  }

  // The setting's own checks (fields.cpp, shared with the environment's values) raise their
  // problem here, at the value's line.
  auto failing_at(const Value& value) const {
    return [this, value](const std::string& reason) {
      return ConfigError(yaml_reader::YamlError(file(), value.line, value.path, reason).what());
    };
  }

  std::string scalar_text(const Value& value, const char* expected) const {
    if (!value.node.IsScalar())
      fail(value, std::string(expected) + ", got " + yaml_reader::describe(value.node));
    return value.node.Scalar();
  }

  void set(const Field& f, const Value& value) {
    if (f.type == Type::IntList) {
      if (!value.node.IsSequence()) fail(value, "expected a list of exit codes");
      std::vector<int> codes;
      for (const Value& item : list(value))
        codes.push_back(
            parse_exit_code(scalar_text(item, "expected an integer exit code"), failing_at(item)));
      c_.policy.app_exit_codes = std::move(codes);
      check_policy_value(c_, f, failing_at(value));
      return;
    }
    const char* expected = f.type == Type::String || f.type == Type::OtherExitCodes
                               ? "expected a string"
                           : f.type == Type::Int ? "expected an integer"
                                                 : "expected a number of seconds";
    set_scalar(c_, f, scalar_text(value, expected), failing_at(value));
  }

  Config& c_;
  std::optional<SecretFileRef> secret_;
};

}  // namespace

std::optional<SecretFileRef> apply_yaml(Config& c, const std::string& yaml_path) {
  try {
    return Reader(c, yaml_path).run();
  } catch (const yaml_reader::YamlError& e) {
    throw ConfigError(e.what());
  }
}

}  // namespace shepherd::config_detail
