#include <algorithm>

#include "net/http_server.hpp"

namespace shepherd::net {

std::string HttpRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpRequest::bearer() const {
  const std::string value = header("authorization");
  constexpr std::string_view kScheme = "Bearer ";
  if (value.size() <= kScheme.size() || value.compare(0, kScheme.size(), kScheme) != 0) return {};
  return value.substr(kScheme.size());
}

HttpResponse HttpResponse::json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  // A record read back from the store may hold bytes that are not UTF-8: replaced, never thrown.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view code, const std::string& field,
                                 const std::string& message) {
  return json(status,
              {{"error", {{"code", std::string(code)}, {"field", field}, {"message", message}}}});
}

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  routes_.push_back({method, std::regex(pattern), std::move(handler)});
}

void Router::guard(std::function<std::optional<HttpResponse>(const HttpRequest&)> check,
                   std::vector<std::string> open_paths) {
  guard_ = std::move(check);
  open_paths_ = std::move(open_paths);
}

HttpResponse Router::handle(HttpRequest request) const {
  if (guard_ &&
      std::find(open_paths_.begin(), open_paths_.end(), request.path) == open_paths_.end())
    if (auto refused = guard_(request)) return *refused;
  std::string allowed;
  std::smatch m;
  for (const auto& route : routes_) {
    if (!std::regex_match(request.path, m, route.pattern)) continue;
    if (route.method != request.method) {
      if (allowed.find(route.method) == std::string::npos)
        allowed += (allowed.empty() ? "" : ", ") + route.method;
      continue;
    }
    request.params.clear();
    for (std::size_t i = 1; i < m.size(); ++i) request.params.push_back(m[i].str());
    return route.handler(request);
  }
  if (allowed.empty())
    return HttpResponse::error(404, "not_found", "path", "no such route: " + request.path);
  HttpResponse r = HttpResponse::error(
      405, "method_not_allowed", "method",
      request.method + " is not allowed on " + request.path + " (allowed: " + allowed + ")");
  r.headers.emplace_back("Allow", allowed);
  return r;
}

}  // namespace shepherd::net
