#include "health/xid.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <set>
#include <stdexcept>

#include "common/enum_names.hpp"
#include "common/yaml_checks.hpp"

namespace shepherd::health {
namespace {

constexpr EnumNames<XidAction, 5> kXidActionNames{{
    {XidAction::Ignore, "IGNORE"},
    {XidAction::RestartApp, "RESTART_APP"},
    {XidAction::ResetGpu, "RESET_GPU"},
    {XidAction::RestartBm, "RESTART_BM"},
    {XidAction::ContactSupport, "CONTACT_SUPPORT"},
}};

constexpr int kMaxXid = 100000;  // NVIDIA's Xids are below 200

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// `then` is less than `window` before `now` (without overflow for any two times); false when
// `then` is after `now` (the clock went back).
bool within(std::int64_t then, std::int64_t now, std::int64_t window) {
  if (then > now) return false;
  return static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(then) <
         static_cast<std::uint64_t>(window);
}

// Leading decimal digits of `s` as a number (at most `max_digits` of them), removed from `s`.
std::optional<std::int64_t> take_number(std::string_view& s, std::size_t max_digits) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  if (n == 0 || n > max_digits) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + n, value);
  if (ec != std::errc() || end != s.data() + n) return std::nullopt;
  s.remove_prefix(n);
  return value;
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// A /dev/kmsg record: "PRIORITY,SEQUENCE,TIMESTAMP_USEC,FLAGS[,MORE...];MESSAGE".
std::optional<std::int64_t> take_kmsg_header(std::string_view& s) {
  std::string_view rest = s;
  for (int field = 0; field < 2; ++field) {
    if (!take_number(rest, 20) || rest.empty() || rest.front() != ',') return std::nullopt;
    rest.remove_prefix(1);
  }
  const auto usec = take_number(rest, 19);
  if (!usec || rest.empty() || (rest.front() != ',' && rest.front() != ';')) return std::nullopt;
  const auto semicolon = rest.find(';');
  if (semicolon == std::string_view::npos) return std::nullopt;
  s = rest.substr(semicolon + 1);
  return usec;
}

// A dmesg "[  219.470994]" just before `end` in `s`: microseconds since boot.
std::int64_t dmesg_usec(std::string_view before) {
  before = trim(before);
  if (before.empty() || before.back() != ']') return -1;
  const auto open = before.rfind('[');
  if (open == std::string_view::npos) return -1;
  std::string_view inside = trim(before.substr(open + 1, before.size() - open - 2));
  const auto seconds = take_number(inside, 12);
  if (!seconds || inside.empty() || inside.front() != '.') return -1;
  inside.remove_prefix(1);
  if (inside.empty() || inside.size() > 9 || !std::all_of(inside.begin(), inside.end(), is_digit))
    return -1;
  std::string micro(inside.substr(0, std::min<std::size_t>(inside.size(), 6)));
  micro.resize(6, '0');
  return *seconds * 1'000'000 + std::stoll(micro);
}

bool is_bus_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// "pid=..." or "name=...": the value up to the next comma (or the end), removed with ", ".
std::optional<std::string> take_field(std::string_view& s, std::string_view key) {
  if (!s.starts_with(key)) return std::nullopt;
  s.remove_prefix(key.size());
  const auto comma = s.find(',');
  std::string_view value = trim(s.substr(0, comma));
  s = comma == std::string_view::npos ? std::string_view() : trim(s.substr(comma + 1));
  if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'')
    value = value.substr(1, value.size() - 2);
  return std::string(value);
}

// yaml-cpp's marks are 0-based; a mark of a missing node is "null".
std::string at(std::string_view source, const YAML::Mark& mark) {
  return mark.is_null() ? std::string(source)
                        : std::string(source) + ":" + std::to_string(mark.line + 1);
}

[[noreturn]] void fail(std::string_view source, const YAML::Mark& mark, const std::string& field,
                       const std::string& why) {
  throw std::invalid_argument(at(source, mark) + ": " + (field.empty() ? "" : field + ": ") + why);
}

std::string known_actions() {
  std::string out;
  for (const auto& [action, name] : kXidActionNames)
    out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

std::string got(const YAML::Node& n) {
  return n.IsMap() ? "a map" : n.IsSequence() ? "a list" : n.IsNull() ? "nothing" : "a scalar";
}

XidAction action_of(std::string_view source, const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) fail(source, n.Mark(), field, "expected an action, got " + got(n));
  const auto action = parse_xid_action(n.Scalar());
  if (!action)
    fail(source, n.Mark(), field,
         "unknown action '" + n.Scalar() + "' (known: " + known_actions() + ")");
  return *action;
}

int xid_of(std::string_view source, const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) fail(source, n.Mark(), field, "expected an Xid number, got " + got(n));
  std::string_view s = n.Scalar();
  const auto value = take_number(s, 6);
  if (!value || !s.empty() || *value > kMaxXid)
    fail(source, n.Mark(), field,
         "expected an Xid number 0.." + std::to_string(kMaxXid) + ", got '" + n.Scalar() + "'");
  return static_cast<int>(*value);
}

}  // namespace

std::optional<XidLine> parse_xid_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  XidLine out;
  std::string_view body = line;
  if (const auto usec = take_kmsg_header(body)) out.kernel_usec = *usec;

  constexpr std::string_view kMarker = "NVRM: Xid";
  const auto marker = body.find(kMarker);
  if (marker == std::string_view::npos) return std::nullopt;
  if (out.kernel_usec < 0) out.kernel_usec = dmesg_usec(body.substr(0, marker));
  std::string_view s = body.substr(marker + kMarker.size());

  // " (PCI:0000:3b:00): 79"; older drivers print "(0000:3b:00)".
  if (!s.starts_with(" (")) return std::nullopt;
  s.remove_prefix(2);
  const auto close = s.find(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view bus = s.substr(0, close);
  if (bus.starts_with("PCI:")) bus.remove_prefix(4);
  if (bus.empty() || bus.size() > 32 || bus.find(':') == std::string_view::npos ||
      !std::all_of(bus.begin(), bus.end(), is_bus_char))
    return std::nullopt;
  out.pci_bus.assign(bus);
  for (char& c : out.pci_bus) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  s.remove_prefix(close + 1);
  if (!s.starts_with(':')) return std::nullopt;
  s.remove_prefix(1);
  while (s.starts_with(' ')) s.remove_prefix(1);
  const auto xid = take_number(s, 6);
  if (!xid || *xid > kMaxXid) return std::nullopt;
  out.xid = static_cast<int>(*xid);
  if (!s.empty()) {
    if (s.front() != ',') return std::nullopt;  // "79x", "79 pid"
    s = trim(s.substr(1));
  }
  if (auto pid = take_field(s, "pid=")) out.pid = std::move(*pid);
  if (auto name = take_field(s, "name=")) out.process = std::move(*name);
  out.message.assign(trim(s));
  return out;
}

std::string_view to_string(XidAction a) {
  return name_of(kXidActionNames, a);
}

std::optional<XidAction> parse_xid_action(std::string_view s) {
  return value_of(kXidActionNames, s);
}

XidCatalogue XidCatalogue::from_yaml(std::string_view text, std::string_view source) {
  if (const auto line = yaml_checks::nul_line(text))
    throw std::invalid_argument(std::string(source) + ":" + std::to_string(*line) +
                                ": the file contains a NUL byte: an Xid catalogue is text");
  if (const auto line = yaml_checks::second_document_line(text))
    throw std::invalid_argument(std::string(source) + ":" + std::to_string(*line) +
                                ": an Xid catalogue holds one YAML document; a second begins "
                                "here (`---`)");
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(at(source, e.mark) + ": " + e.msg);
  }
  XidCatalogue out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) fail(source, root.Mark(), "", "expected a map with `xids:`, got " + got(root));

  std::set<std::string> seen;
  for (const auto& kv : root) {
    const YAML::Node& key = kv.first;
    const YAML::Node& value = kv.second;
    if (!key.IsScalar()) fail(source, key.Mark(), "", "keys must be plain names");
    const std::string name = key.Scalar();
    if (!seen.insert(name).second) fail(source, key.Mark(), name, "duplicate key");
    const YAML::Mark mark = value.IsNull() || value.Mark().is_null() ? key.Mark() : value.Mark();
    if (name == "unknown_action") {
      out.unknown_ = action_of(source, value, name);
    } else if (name == "xids") {
      if (value.IsNull()) continue;
      if (!value.IsSequence()) fail(source, mark, name, "expected a list, got " + got(value));
      std::map<int, int> first_line;
      for (std::size_t i = 0; i < value.size(); ++i) {
        const YAML::Node item = value[i];
        const std::string field = "xids[" + std::to_string(i) + "]";
        if (!item.IsMap())
          fail(source, item.Mark(), field, "expected {xid, action, name}, got " + got(item));
        Entry entry;
        bool has_xid = false;
        bool has_action = false;
        std::set<std::string> item_keys;
        for (const auto& f : item) {
          if (!f.first.IsScalar()) fail(source, f.first.Mark(), field, "keys must be plain names");
          const std::string k = f.first.Scalar();
          const std::string path = field + "." + k;
          if (!item_keys.insert(k).second) fail(source, f.first.Mark(), path, "duplicate key");
          if (k == "xid") {
            entry.xid = xid_of(source, f.second, path);
            has_xid = true;
          } else if (k == "action") {
            entry.action = action_of(source, f.second, path);
            has_action = true;
          } else if (k == "name") {
            if (!f.second.IsScalar())
              fail(source, f.second.Mark(), path, "expected a text, got " + got(f.second));
            entry.name = f.second.Scalar();
          } else {
            fail(source, f.first.Mark(), path, "unknown key (known: xid, action, name)");
          }
        }
        if (!has_xid) fail(source, item.Mark(), field + ".xid", "missing");
        if (!has_action) fail(source, item.Mark(), field + ".action", "missing");
        const int line = item.Mark().line + 1;
        if (const auto [it, inserted] = first_line.emplace(entry.xid, line); !inserted)
          fail(source, item.Mark(), field + ".xid",
               "Xid " + std::to_string(entry.xid) + " is listed twice (first on line " +
                   std::to_string(it->second) + ")");
        out.entries_[entry.xid] = std::move(entry);
      }
    } else {
      fail(source, key.Mark(), name, "unknown key (known: unknown_action, xids)");
    }
  }
  return out;
}

const XidCatalogue& XidCatalogue::built_in() {
  static const XidCatalogue catalogue =
      from_yaml(built_in_xid_catalogue_yaml(), "built-in src/health/xid_catalogue.yaml");
  return catalogue;
}

XidCatalogue XidCatalogue::with_overrides(const XidCatalogue& operator_file) const {
  XidCatalogue out = *this;
  for (const auto& [xid, entry] : operator_file.entries_) out.entries_[xid] = entry;
  if (operator_file.unknown_) out.unknown_ = operator_file.unknown_;
  return out;
}

XidAction XidCatalogue::action(int xid) const {
  const Entry* e = find(xid);
  return e != nullptr ? e->action : unknown_action();
}

const XidCatalogue::Entry* XidCatalogue::find(int xid) const {
  const auto it = entries_.find(xid);
  return it == entries_.end() ? nullptr : &it->second;
}

XidBurstFilter::XidBurstFilter(std::int64_t window_ms, std::size_t max_entries)
    : window_ms_(std::max<std::int64_t>(window_ms, 0)),
      max_entries_(std::max<std::size_t>(max_entries, 1)) {}

void XidBurstFilter::forget_old(std::int64_t now_ms) {
  // At most once a window (or when the clock went back): a sweep costs the size of the map.
  if (last_sweep_ && within(*last_sweep_, now_ms, window_ms_)) return;
  last_sweep_ = now_ms;
  std::erase_if(last_reported_,
                [&](const auto& entry) { return !within(entry.second, now_ms, window_ms_); });
}

bool XidBurstFilter::admit(const XidLine& line, std::int64_t now_ms) {
  if (window_ms_ == 0) return true;
  forget_old(now_ms);
  auto key = std::make_pair(line.pci_bus, line.xid);
  const auto it = last_reported_.find(key);
  if (it != last_reported_.end()) {
    if (within(it->second, now_ms, window_ms_)) return false;
    it->second = now_ms;
    return true;
  }
  if (last_reported_.size() >= max_entries_) {
    const auto oldest =
        std::min_element(last_reported_.begin(), last_reported_.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    last_reported_.erase(oldest);
  }
  last_reported_.emplace(std::move(key), now_ms);
  return true;
}

}  // namespace shepherd::health
