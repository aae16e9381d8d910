#pragma once
// JSON answers for the routes of every server.
#include <nlohmann/json.hpp>

#include "api/views.hpp"
#include "net/http_server.hpp"

namespace shepherd::api {

inline net::HttpResponse reply(int status, const nlohmann::json& body) {
  return net::HttpResponse::json(status, body);
}

inline net::HttpResponse reject(const Rejection& r) {
  return net::HttpResponse::json(http_status(r), error_json(r));
}

}  // namespace shepherd::api
