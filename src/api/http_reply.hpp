#pragma once
// JSON answers for the routes of every server (included by .cpp files that use cpp-httplib).
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "api/views.hpp"

namespace shepherd::api {

inline void reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

inline void reject(httplib::Response& res, const Rejection& r) {
  reply(res, http_status(r), error_json(r));
}

}  // namespace shepherd::api
