#include "health/xid.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>
#include <stdexcept>

#include "common/enum_names.hpp"
#include "common/yaml_reader.hpp"

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

std::string known_actions() {
  std::string out;
  for (const auto& [action, name] : kXidActionNames)
    out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
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
  using yaml_reader::Field;
  using yaml_reader::Map;
  const std::string file(source);
  const yaml_reader::Reader reader(file);
  // The catalogue's own value checks (an action's name, an Xid number), at the value's line.
  auto action_of = [&](const Field& f) {
    if (!f.node.IsScalar())
      reader.fail(f, "expected an action, got " + yaml_reader::describe(f.node));
    const std::string name = f.node.Scalar();
    const auto action = parse_xid_action(name);
    if (!action) reader.fail(f, "unknown action '" + name + "' (known: " + known_actions() + ")");
    return *action;
  };
  auto xid_of = [&](const Field& f) {
    if (!f.node.IsScalar())
      reader.fail(f, "expected an Xid number, got " + yaml_reader::describe(f.node));
    const std::string number = f.node.Scalar();
    std::string_view s = number;
    const auto value = take_number(s, 6);
    if (!value || !s.empty() || *value > kMaxXid)
      reader.fail(f, "expected an Xid number 0.." + std::to_string(kMaxXid) + ", got '" +
                         f.node.Scalar() + "'");
    return static_cast<int>(*value);
  };
  try {
    XidCatalogue out;
    const Field root{yaml_reader::load_document(text, file, "an Xid catalogue"), "", 1};
    if (root.node.IsNull()) return out;
    const Map top(reader, root);
    top.allow({"unknown_action", "xids"}, "an Xid catalogue");
    if (auto f = top.get("unknown_action")) out.unknown_ = action_of(*f);
    const auto xids = top.get("xids");
    if (!xids || xids->node.IsNull()) return out;
    std::map<int, int> first_line;
    for (const Field& item : reader.list(*xids)) {
      const Map m(reader, item);
      m.allow({"xid", "action", "name"}, "an Xid entry");
      Entry entry;
      entry.xid = xid_of(m.need("xid"));
      entry.action = action_of(m.need("action"));
      if (auto name = m.get("name")) entry.name = reader.text(*name);
      if (const auto [it, inserted] = first_line.emplace(entry.xid, item.line); !inserted)
        reader.fail(m.need("xid"), "Xid " + std::to_string(entry.xid) +
                                       " is listed twice (first on line " +
                                       std::to_string(it->second) + ")");
      out.entries_[entry.xid] = std::move(entry);
    }
    return out;
  } catch (const yaml_reader::YamlError& e) {
    throw std::invalid_argument(e.what());
  }
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
