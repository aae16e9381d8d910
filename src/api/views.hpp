#pragma once
#include <nlohmann/json.hpp>

#include "domain/decision.hpp"
#include "domain/model.hpp"
#include "store/store.hpp"

namespace shepherd::api {
// The API's JSON shape of each record: one place, shared by every server.
nlohmann::json to_json(const Job& job);
nlohmann::json to_json(const Task& task);
nlohmann::json to_json(const Node& node);
// An outbox action with its delivery history (a dead letter in GET /api/dead-letters).
nlohmann::json to_json(const PendingAction& p);
// {"error": {"code", "field", "message"}}
nlohmann::json error_json(const Rejection& r);
// The same shape for errors the HTTP layer makes itself ("http_413", ...).
nlohmann::json error_json(std::string_view code, const std::string& field,
                          const std::string& message);
// The HTTP status for a rejection code: invalid 400, not_found 404, conflict 409.
int http_status(const Rejection& r);
}  // namespace shepherd::api
