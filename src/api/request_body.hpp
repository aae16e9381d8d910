#pragma once
// A request's JSON body, read strictly: one object, no duplicate key, no key the route does not
// know, and every value type- and range-checked where it is read. Each error names the field.
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "domain/decision.hpp"

namespace shepherd::api {

// A request refused before it reached the engine: answered as HTTP 400 with the rejection.
class BadRequest : public std::runtime_error {
 public:
  explicit BadRequest(Rejection r) : std::runtime_error(r.message), rejection(std::move(r)) {}
  Rejection rejection;
};

class RequestBody {
 public:
  // Throws BadRequest unless `text` is one JSON object whose keys are all in `known`.
  RequestBody(std::string_view text, std::initializer_list<std::string_view> known);

  bool has(const char* name) const { return body_.contains(name); }
  const nlohmann::json& at(const char* name) const { return body_.at(name); }

  std::optional<std::string> text(const char* name, bool required) const;
  std::optional<std::vector<std::string>> texts(const char* name) const;
  // An integer in [lo, hi]; 4.0 counts as 4, 4.5 and 4294967297 for an int do not.
  std::optional<std::int64_t> integer(const char* name, std::int64_t lo, std::int64_t hi,
                                      bool required) const;
  // A number of seconds in [0, kMaxSeconds] (> 0 when `positive`).
  std::optional<double> seconds(const char* name, bool positive, bool required) const;

 private:
  [[noreturn]] static void fail(const char* name, const std::string& message);
  nlohmann::json body_;
};

}  // namespace shepherd::api
