#include "client/api_client.hpp"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace shepherd::client {
namespace {

using nlohmann::json;

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// A server's words go on one line of a terminal: no line breaks, no escape sequences.
std::string one_line(std::string s) {
  for (char& ch : s)
    if (std::iscntrl(static_cast<unsigned char>(ch))) ch = ' ';
  return s;
}

std::string errno_text(int err) {
  std::string text = std::strerror(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string read_token_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ClientError("cannot read the token file " + path + ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ClientError("cannot read the token file " + path + ": " + errno_text(errno));
  std::ostringstream content;
  content << in.rdbuf();
  return token_in_file(content.str(), path);
}

std::string env_or(const EnvLookup& env, const std::string& name, const std::string& fallback) {
  const auto value = env(name);
  return value && !value->empty() ? *value : fallback;
}

// httplib says only "Connection" when a connect fails; one blocking connect of our own tells
// "refused" from "no route" from "no such host", which is what the user needs to know.
std::string why_connect_fails(const std::string& host, int port, std::chrono::seconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found))
    return "cannot resolve " + host + " (" + gai_strerror(rc) + ")";
  std::string why = "connection failed";
  for (addrinfo* a = found; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    const int err = errno;
    ::close(fd);
    if (rc == 0) break;  // it answers now: only httplib's own words are left
    why = (err == EINPROGRESS || err == EAGAIN)
              ? "no answer within " + std::to_string(timeout.count()) + "s"
              : errno_text(err);
  }
  freeaddrinfo(found);
  return why;
}

// The API's errors are {"error": {"code", "field", "message"}}: "HTTP 404 not_found (job_id): no
// job named x". Another body (a proxy's page) gives its first line.
std::string http_error(int status, const std::string& body, bool token_sent,
                       const std::string& token_source) {
  std::string msg = "HTTP " + std::to_string(status);
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& e = j["error"];
    auto text = [&](const char* key) {
      return e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : "";
    };
    if (!text("code").empty()) msg += " " + text("code");
    if (!text("field").empty()) msg += " (" + text("field") + ")";
    if (!text("message").empty()) msg += ": " + text("message");
  } else if (const std::string first = trimmed(body.substr(0, body.find('\n'))); !first.empty()) {
    msg += ": " + first.substr(0, 200);
  }
  if (status == 401)
    msg += token_sent ? " (check the token given by " + token_source + ")"
                      : " (pass the admin token with --token-file FILE or SHEPHERD_TOKEN_FILE)";
  return one_line(msg);
}

}  // namespace

std::string token_in_file(const std::string& content, const std::string& path) {
  const std::string token = trimmed(content);
  if (token.empty()) throw ClientError("the token file " + path + " is empty");
  // It goes into a header line: a space, line break or other byte would split or corrupt it.
  for (char ch : token)
    if (ch <= ' ' || ch > '~')
      throw ClientError("the token file " + path +
                        " does not hold a token (one word of printable characters; is it the "
                        "right file?)");
  return token;
}

std::optional<std::string> process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value) return std::nullopt;
  return std::string(value);
}

ClientOptions resolve_client_options(const ClientFlags& flags, const EnvLookup& env) {
  ClientOptions o;
  o.server = !flags.server.empty() ? flags.server : env_or(env, "SHEPHERD_SERVER", kDefaultServer);
  if (!flags.token_file.empty())
    o.token = read_token_file(flags.token_file);
  else if (const std::string file = env_or(env, "SHEPHERD_TOKEN_FILE", ""); !file.empty())
    o.token = read_token_file(file);
  else
    o.token = trimmed(env_or(env, "SHEPHERD_TOKEN", ""));
  o.ca_file = !flags.ca_file.empty() ? flags.ca_file : env_or(env, "SHEPHERD_CA", "");
  return o;
}

bool is_path_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

std::string path_id(const std::string& what, const std::string& id) {
  if (!is_path_id(id))
    throw ClientError(what + " '" + one_line(id) +
                      "' is not valid: ids are 1 to 128 letters, digits, '.', '_' or '-'");
  return id;
}

ApiClient::ApiClient(ClientOptions options) : options_(std::move(options)) {
  // Parsed here rather than by httplib, which takes "http://h:1/" for a host named all that.
  const std::string& url = options_.server;
  const auto bad = [&] {
    return ClientError("the server must be http://HOST:PORT or https://HOST:PORT, not '" +
                       one_line(url) + "'");
  };
  const auto sep = url.find("://");
  if (sep == std::string::npos) throw bad();
  const std::string scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") throw bad();
  std::string rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port_text;
  if (rest.starts_with('[')) {  // [v6 address]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) throw bad();
    host_ = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) throw bad();
    port_text = rest.empty() ? "" : rest.substr(1);
  } else {
    const auto colon = rest.rfind(':');
    host_ = rest.substr(0, colon);
    port_text = colon == std::string::npos ? "" : rest.substr(colon + 1);
    if (host_.find(':') != std::string::npos) throw bad();  // a v6 address needs its brackets
  }
  if (host_.empty() || host_.find_first_of("/?#@ ") != std::string::npos) throw bad();
  if (port_text.empty()) {
    port_ = scheme == "https" ? 443 : 80;
  } else {
    if (port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](unsigned char ch) { return std::isdigit(ch) != 0; }))
      throw bad();
    port_ = std::stoi(port_text);
    if (port_ < 1 || port_ > 65535) throw bad();
  }
  const std::string host_part = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
  base_ = scheme + "://" + host_part + ":" + std::to_string(port_);

  http_ = std::make_unique<httplib::Client>(base_);
  const auto t = static_cast<time_t>(options_.timeout.count());
  http_->set_connection_timeout(t);
  http_->set_read_timeout(t);
  http_->set_write_timeout(t);
  if (!options_.token.empty()) http_->set_bearer_token_auth(options_.token);
  if (scheme == "https") {
    if (!options_.ca_file.empty()) {
      if (!std::ifstream(options_.ca_file))
        throw ClientError("cannot read the CA file " + options_.ca_file + ": " + errno_text(errno));
      http_->set_ca_cert_path(options_.ca_file);
    }
    http_->enable_server_certificate_verification(true);
  }
}

ApiClient::~ApiClient() = default;

ApiClient::Answer ApiClient::send(const std::string& method, const std::string& path,
                                  const std::string* body) {
  httplib::Result res = method == "GET" ? http_->Get(path)
                        : body          ? http_->Post(path, *body, "application/json")
                                        : http_->Post(path);
  if (!res) {
    const httplib::Error err = res.error();
    const std::string secs = std::to_string(options_.timeout.count()) + "s";
    switch (err) {
      case httplib::Error::Connection:
        throw ClientError("cannot reach " + base_ + ": " +
                          why_connect_fails(host_, port_, options_.timeout));
      case httplib::Error::ConnectionTimeout:
        throw ClientError("cannot reach " + base_ + ": no answer to connect within " + secs);
      case httplib::Error::Read:
        throw ClientError("no answer from " + base_ + " to " + method + " " + path + " within " +
                          secs + " (or the connection closed" +
                          (base_.starts_with("http://") ? "; a TLS server? try https://)" : ")"));
      case httplib::Error::Write:
        throw ClientError("cannot reach " + base_ + ": the connection closed while sending" +
                          (base_.starts_with("http://") ? " (a TLS server? try https://)" : ""));
      case httplib::Error::SSLConnection:
        throw ClientError("cannot reach " + base_ + ": the TLS handshake failed (is it https?)");
      case httplib::Error::SSLLoadingCerts:
        throw ClientError("cannot load the CA certificates " +
                          (options_.ca_file.empty() ? "of this system" : "in " + options_.ca_file));
      case httplib::Error::SSLServerVerification:
        throw ClientError("cannot reach " + base_ +
                          ": its certificate is not trusted or does not name " + host_ +
                          " (pass the server's CA with --ca FILE or SHEPHERD_CA)");
      default:
        throw ClientError("cannot reach " + base_ + ": " + httplib::to_string(err));
    }
  }
  // A standby controller sends a command to the leader (307 keeps the method and body). Followed
  // once, only over https with the server's own CA pinned (--ca): the token goes only to a host
  // with a certificate of that CA, never in clear text nor to any host a public CA vouches for.
  if (res->status == 307 && res->has_header("Location") && !redirected_ &&
      base_.starts_with("https://") && !options_.ca_file.empty()) {
    const std::string location = res->get_header_value("Location");
    const std::string scheme = base_.substr(0, base_.find("://") + 3);
    const auto path_at = location.find('/', scheme.size());
    if (location.starts_with(scheme) && path_at != std::string::npos) {
      ClientOptions leader = options_;
      leader.server = location.substr(0, path_at);
      ApiClient to_leader(leader);
      to_leader.redirected_ = true;
      return to_leader.send(method, location.substr(path_at), body);
    }
  }
  if (res->status < 200 || res->status > 299)
    throw ClientError(
        http_error(res->status, res->body, !options_.token.empty(), options_.token_source));
  Answer answer{res->body, {}};
  for (const auto& [name, value] : res->headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    answer.headers[lower] = value;
  }
  return answer;
}

namespace {
json parse_answer(const std::string& base, const std::string& what, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ClientError("the answer of " + base + " to " + what + " is not JSON");
  return j;
}
}  // namespace

json ApiClient::get(const std::string& path) {
  return parse_answer(base_, "GET " + path, send("GET", path, nullptr).body);
}

json ApiClient::post(const std::string& path, const json& body) {
  const std::string text = body.is_null() ? "" : body.dump();
  return parse_answer(base_, "POST " + path,
                      send("POST", path, body.is_null() ? nullptr : &text).body);
}

std::string ApiClient::get_text(const std::string& path,
                                std::map<std::string, std::string>* headers_out) {
  Answer answer = send("GET", path, nullptr);
  if (headers_out) *headers_out = std::move(answer.headers);
  return std::move(answer.body);
}

}  // namespace shepherd::client
