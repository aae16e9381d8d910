#include "notify/webhook.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <stdexcept>
#include <thread>

#include "domain/ports.hpp"

namespace shepherd {
namespace {

struct ParsedUrl {
  std::string scheme, host, path;
  int port = 0;
};

// A deliberately small parser: scheme://host[:port][/path][?query]. No user info (credentials
// belong in the path or query of a webhook URL), no fragment. Errors describe the problem but
// never quote the URL.
ParsedUrl parse_url(const std::string& url, const std::string& who) {
  auto fail = [&](const std::string& why) {
    return std::invalid_argument(who + ": malformed URL (" + why +
                                 "; expected http://host[:port]/path)");
  };
  ParsedUrl u;
  const auto sep = url.find("://");
  if (sep == std::string::npos) throw fail("no scheme");
  u.scheme = url.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https") throw fail("scheme must be http or https");
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (u.scheme == "https")
    throw std::invalid_argument(who + ": https is not available (httplib built without OpenSSL)");
#endif
  const auto rest = url.substr(sep + 3);
  const auto path_at = rest.find_first_of("/?#");
  const std::string authority = rest.substr(0, path_at);
  u.path = path_at == std::string::npos ? "/" : rest.substr(path_at);
  if (u.path.front() == '?') u.path.insert(0, "/");
  if (u.path.find('#') != std::string::npos) throw fail("fragments are not allowed");
  for (char c : u.path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw fail("space or control character");
  if (authority.find('@') != std::string::npos) throw fail("user info is not supported");

  std::string port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string::npos) throw fail("unterminated IPv6 address");
    u.host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw fail("bad host");
      port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty() || u.host == "[]") throw fail("no host");
  for (char c : u.host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) throw fail("bad host");
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port.empty() || authority.back() == ':') {
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), u.port);
    if (ec != std::errc{} || end != port.data() + port.size() || u.port < 1 || u.port > 65535)
      throw fail("bad port");
  }
  return u;
}

bool retryable(int status) {
  return status == 408 || status == 429 || status >= 500;
}

}  // namespace

WebhookSink::WebhookSink(WebhookOptions options) : options_(std::move(options)) {
  if (options_.display_name.empty()) options_.display_name = "webhook";
  const std::string& who = options_.display_name;
  if (options_.attempts < 1) throw std::invalid_argument(who + ": attempts must be at least 1");
  if (options_.backoff.count() < 0 || options_.timeout.count() <= 0)
    throw std::invalid_argument(who + ": backoff must be >= 0 and timeout > 0");
  const ParsedUrl u = parse_url(options_.url, who);
  origin_ = u.scheme + "://" + u.host + ":" + std::to_string(u.port);
  path_ = u.path;
  if (!options_.sleep)
    options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

void WebhookSink::send(const Notification& n) {
  const std::string& who = options_.display_name;
  // The id becomes a header value: refuse what could split the header (it is never retryable).
  if (n.id.empty() || n.id.find_first_of("\r\n") != std::string::npos)
    throw PermanentDeliveryError(who + ": notification has an empty or malformed id");
  const std::string body = to_json(n).dump();
  const httplib::Headers headers{{"Idempotency-Key", n.id}, {"User-Agent", "shepherd"}};

  std::string last_error;
  auto backoff = options_.backoff;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    // A fresh client per attempt: no shared connection state between threads or attempts.
    httplib::Client client(origin_);
    client.set_connection_timeout(options_.timeout);
    client.set_read_timeout(options_.timeout);
    client.set_write_timeout(options_.timeout);
    client.set_follow_location(false);
    const auto res = client.Post(path_, headers, body, "application/json");
    if (res) {
      const int status = res->status;
      if (status >= 200 && status < 300) {
        spdlog::debug("{}: notification {} delivered (HTTP {})", who, n.id, status);
        return;
      }
      if (!retryable(status))
        throw PermanentDeliveryError(who + ": notification " + n.id + " refused with HTTP " +
                                     std::to_string(status) + " (not retried)");
      last_error = "HTTP " + std::to_string(status);
    } else {
      // httplib's error names (Connection, Read, ...) never include the URL.
      last_error = "network error: " + httplib::to_string(res.error());
    }
    if (attempt < options_.attempts) {
      spdlog::warn("{}: notification {} attempt {}/{} failed ({}); retrying in {} ms", who, n.id,
                   attempt, options_.attempts, last_error, backoff.count());
      options_.sleep(backoff);
      backoff *= 2;
    }
  }
  throw DeliveryError(who + ": notification " + n.id + " not delivered after " +
                      std::to_string(options_.attempts) + " attempts (last: " + last_error + ")");
}

}  // namespace shepherd
