#include "api/request_body.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace shepherd::api {
namespace {
using nlohmann::json;
}

void RequestBody::fail(const char* name, const std::string& message) {
  throw BadRequest(Rejection{RejectionCode::Invalid, name, message});
}

namespace {

// A client's key as the error names it: an empty one names the body, a long one is cut short.
std::string field_name(const std::string& key) {
  return key.empty() ? "body" : key.substr(0, 64);
}
std::string shown_key(const std::string& key) {
  return "'" + key.substr(0, 64) + (key.size() > 64 ? "...'" : "'");
}

}  // namespace

RequestBody::RequestBody(std::string_view text, std::initializer_list<std::string_view> known) {
  // nlohmann keeps the last of duplicate keys silently; the parser callback sees each key first.
  std::vector<std::set<std::string>> keys;
  std::optional<std::string> duplicate;
  const json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second && !duplicate)
      duplicate = parsed.get<std::string>();
    return true;
  };
  body_ = json::parse(text, track, false);
  if (body_.is_discarded() || !body_.is_object())
    fail("body", "the request body must be a JSON object");
  if (duplicate)
    throw BadRequest(Rejection{RejectionCode::Invalid, field_name(*duplicate),
                               shown_key(*duplicate) + " is given twice"});
  for (const auto& [key, value] : body_.items())
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw BadRequest(Rejection{RejectionCode::Invalid, field_name(key),
                                 "unknown field " + shown_key(key) + " (known: " + list + ")"});
    }
}

std::optional<std::string> RequestBody::text(const char* name, bool required) const {
  if (!has(name)) {
    if (required) fail(name, std::string(name) + " is required");
    return std::nullopt;
  }
  const json& v = at(name);
  if (!v.is_string()) fail(name, std::string(name) + " must be a string");
  return v.get<std::string>();
}

std::optional<std::vector<std::string>> RequestBody::texts(const char* name) const {
  if (!has(name)) return std::nullopt;
  const json& v = at(name);
  if (!v.is_array()) fail(name, std::string(name) + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.is_string()) fail(name, std::string(name) + " must be a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::optional<std::int64_t> RequestBody::integer(const char* name, std::int64_t lo, std::int64_t hi,
                                                 bool required) const {
  if (!has(name)) {
    if (required) fail(name, std::string(name) + " is required");
    return std::nullopt;
  }
  const json& v = at(name);
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  if (!v.is_number()) fail(name, std::string(name) + " must be an integer in " + range);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi))
    fail(name, std::string(name) + " must be an integer in " + range + ", got " + v.dump());
  return v.is_number_float() ? static_cast<std::int64_t>(d) : v.get<std::int64_t>();
}

std::optional<double> RequestBody::seconds(const char* name, bool positive, bool required) const {
  if (!has(name)) {
    if (required) fail(name, std::string(name) + " is required");
    return std::nullopt;
  }
  const json& v = at(name);
  const std::string what = std::string(name) + " must be a number of seconds " +
                           (positive ? "> 0" : ">= 0") + " and at most " +
                           std::to_string(static_cast<long long>(kMaxSeconds));
  if (!v.is_number()) fail(name, what);
  const double d = v.get<double>();
  if (!std::isfinite(d) || (positive ? d <= 0 : d < 0) || d > kMaxSeconds)
    fail(name, what + ", got " + v.dump());
  return d;
}

}  // namespace shepherd::api
