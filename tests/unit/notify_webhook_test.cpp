// WebhookSink and FanoutNotifier against a real httplib::Server on loopback (never anything else).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "domain/ports.hpp"
#include "notify/sinks.hpp"
#include "notify/webhook.hpp"

namespace shepherd {
namespace {

using std::chrono::milliseconds;
constexpr const char* kSecret = "s3cr3t-token";
constexpr const char* kPath = "/hooks/s3cr3t-token";

// A server on 127.0.0.1 answering POST kPath with `handler`, run on its own thread.
class LoopbackServer {
 public:
  explicit LoopbackServer(
      std::function<void(const httplib::Request&, httplib::Response&)> handler) {
    server_.Post(kPath, std::move(handler));
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the loop runs, so wait for it before anyone can call stop().
    while (!server_.is_running()) std::this_thread::sleep_for(milliseconds(1));
  }
  ~LoopbackServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + kPath; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// A loopback port with nothing listening: bind an ephemeral port, then close it.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Notification sample() {
  return Notification{"act-42", "job_failed", "job-7", {"node-a", "node-b"}, "exit 1", 2, 1234567};
}

class WebhookTest : public ::testing::Test {
 protected:
  // Capture everything logged, to prove the URL never reaches a log line.
  void SetUp() override {
    previous_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    auto logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_);
    EXPECT_EQ(log_.str().find(kSecret), std::string::npos) << log_.str();
  }

  WebhookOptions options(const std::string& url, int attempts = 3) {
    WebhookOptions o;
    o.url = url;
    o.attempts = attempts;
    o.timeout = milliseconds(2000);
    o.sleep = [this](milliseconds d) { sleeps_.push_back(d); };
    return o;
  }

  std::string deliver_error(WebhookSink& sink, bool* permanent = nullptr) {
    try {
      sink.send(sample());
    } catch (const DeliveryError& e) {
      if (permanent) *permanent = dynamic_cast<const PermanentDeliveryError*>(&e) != nullptr;
      return e.what();
    }
    ADD_FAILURE() << "send() did not throw DeliveryError";
    return {};
  }

  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
  std::vector<milliseconds> sleeps_;
};

TEST_F(WebhookTest, BodyAndHeadersArrive) {
  std::mutex mu;
  httplib::Request got;
  LoopbackServer server([&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    got = req;
    res.status = 204;
  });
  WebhookSink sink(options(server.url()));
  sink.send(sample());

  std::lock_guard lock(mu);
  EXPECT_EQ(got.get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(got.get_header_value("Idempotency-Key"), "act-42");
  const auto body = nlohmann::json::parse(got.body);
  EXPECT_EQ(body, to_json(sample()));
  EXPECT_EQ(body["id"], "act-42");
  EXPECT_EQ(body["kind"], "job_failed");
  EXPECT_EQ(body["job"], "job-7");
  EXPECT_EQ(body["nodes"], (nlohmann::json{"node-a", "node-b"}));
  EXPECT_EQ(body["reason"], "exit 1");
  EXPECT_EQ(body["attempt"], 2);
  EXPECT_EQ(body["at"], 1234567);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(WebhookTest, RetriesOn500ThenSucceeds) {
  std::atomic<int> calls{0};
  std::mutex mu;
  std::vector<std::string> keys;
  LoopbackServer server([&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    keys.push_back(req.get_header_value("Idempotency-Key"));
    res.status = ++calls < 3 ? 500 : 200;
  });
  WebhookSink sink(options(server.url(), 3));
  sink.send(sample());
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(200), milliseconds(400)}));
  std::lock_guard lock(mu);
  EXPECT_EQ(keys, (std::vector<std::string>(3, "act-42")));  // the same key on every attempt
}

TEST_F(WebhookTest, TooManyRequestsIsRetried) {
  std::atomic<int> calls{0};
  LoopbackServer server([&](const httplib::Request&, httplib::Response& res) {
    res.status = ++calls < 2 ? 429 : 200;
  });
  WebhookSink sink(options(server.url(), 3));
  sink.send(sample());
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(WebhookTest, PermanentFailureIsNotRetried) {
  std::atomic<int> calls{0};
  LoopbackServer server([&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 400;
    res.set_content(std::string("bad request for ") + kPath, "text/plain");  // not echoed
  });
  WebhookSink sink(options(server.url(), 5));
  bool permanent = false;
  const std::string message = deliver_error(sink, &permanent);
  EXPECT_TRUE(permanent);  // the runtime makes it a dead letter, not a retry every minute
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_NE(message.find("HTTP 400"), std::string::npos) << message;
  EXPECT_NE(message.find("webhook"), std::string::npos) << message;
  EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
}

TEST_F(WebhookTest, PersistentServerErrorGivesUpAfterAllAttempts) {
  std::atomic<int> calls{0};
  LoopbackServer server([&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 503;
  });
  WebhookSink sink(options(server.url(), 4));
  bool permanent = true;
  const std::string message = deliver_error(sink, &permanent);
  EXPECT_FALSE(permanent);  // 5xx: the runtime tries again later
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(sleeps_.size(), 3u);
  EXPECT_NE(message.find("HTTP 503"), std::string::npos) << message;
}

TEST_F(WebhookTest, ClosedPortGivesDeliveryErrorAfterAllAttempts) {
  auto o = options("http://127.0.0.1:" + std::to_string(closed_port()) + kPath, 3);
  o.display_name = "ops-webhook";
  WebhookSink sink(o);
  const std::string message = deliver_error(sink);
  EXPECT_EQ(sleeps_.size(), 2u);  // three attempts, two waits
  EXPECT_NE(message.find("ops-webhook"), std::string::npos) << message;
  EXPECT_NE(message.find("3 attempts"), std::string::npos) << message;
  EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
  EXPECT_EQ(message.find("127.0.0.1"), std::string::npos) << message;
  EXPECT_NE(log_.str().find("retrying"), std::string::npos);  // the retries were logged...
}

TEST_F(WebhookTest, MalformedUrlIsRejectedWithoutEchoingIt) {
  for (const std::string url :
       {"127.0.0.1:1/hooks/s3cr3t-token", "ftp://127.0.0.1/hooks/s3cr3t-token",
        "http:///hooks/s3cr3t-token", "http://127.0.0.1:99999/hooks/s3cr3t-token",
        "http://127.0.0.1:x/hooks/s3cr3t-token?k=s3cr3t-token",
        "http://user:s3cr3t-token@127.0.0.1/hooks", "http://127.0.0.1/hooks/s3cr3t-token#frag",
        "http://127.0.0.1/hooks/s3cr3t token", ""}) {
    try {
      WebhookSink sink(options(url));
      ADD_FAILURE() << "accepted a malformed URL";
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
      EXPECT_NE(message.find("webhook"), std::string::npos) << message;
    }
  }
  // Well-formed variants construct.
  EXPECT_NO_THROW(WebhookSink(options("http://127.0.0.1/hooks/s3cr3t-token?x=1")));
  EXPECT_NO_THROW(WebhookSink(options("http://127.0.0.1:8080")));
  EXPECT_NO_THROW(WebhookSink(options("http://[::1]:8080/hooks")));
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  EXPECT_NO_THROW(WebhookSink(options("https://127.0.0.1/hooks/s3cr3t-token")));
#else
  EXPECT_THROW(WebhookSink(options("https://127.0.0.1/hooks/s3cr3t-token")), std::invalid_argument);
#endif
}

TEST_F(WebhookTest, FanoutThrowsButTheWorkingSinkGotIt) {
  auto broken = std::make_shared<WebhookSink>(
      options("http://127.0.0.1:" + std::to_string(closed_port()) + kPath, 2));
  auto recorder = std::make_shared<RecordingSink>();
  FanoutNotifier notifier({broken, recorder});

  Action action;
  action.id = "act-9";
  action.kind = ActionKind::Notify;
  action.created_at = 99;
  action.payload = nlohmann::json{
      {"kind", "node_failed"},
      {"job", ""},
      {"nodes", {"node-c"}},
      {"reason", "diagnostic failed"},
      {"attempt", 1}}.dump();
  try {
    notifier.deliver(action);
    ADD_FAILURE() << "deliver() did not throw";
  } catch (const DeliveryError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("webhook"), std::string::npos) << message;
    EXPECT_EQ(message.find("recording"), std::string::npos) << message;  // it succeeded
    EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
  }
  const auto sent = recorder->sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id, "act-9");
  EXPECT_EQ(sent[0].kind, "node_failed");
  EXPECT_EQ(sent[0].nodes, std::vector<std::string>{"node-c"});
  EXPECT_EQ(sent[0].at, 99);

  // All sinks working: no throw, and the repeat reaches the recorder again (same id).
  auto recorder2 = std::make_shared<RecordingSink>("second");
  FanoutNotifier ok({recorder, recorder2});
  EXPECT_NO_THROW(ok.deliver(action));
  EXPECT_EQ(recorder->sent().size(), 2u);
  EXPECT_EQ(recorder2->sent().size(), 1u);
}

TEST_F(WebhookTest, FromActionAndLogSink) {
  Action action;
  action.id = "act-1";
  action.kind = ActionKind::Notify;
  action.created_at = 5;
  action.payload =
      nlohmann::json{{"kind", "reboot_timeout"}, {"nodes", {"node-z"}}, {"attempt", "bad"}}.dump();
  const Notification n = from_action(action);
  EXPECT_EQ(n.kind, "reboot_timeout");
  EXPECT_EQ(n.job, "");
  EXPECT_EQ(n.attempt, 0);  // wrong type: treated as missing
  LogSink().send(n);
  EXPECT_NE(log_.str().find("[warning]"), std::string::npos) << log_.str();
  EXPECT_NE(log_.str().find("reboot_timeout nodes=node-z"), std::string::npos) << log_.str();

  action.kind = ActionKind::Reboot;
  EXPECT_THROW(from_action(action), std::invalid_argument);
}

}  // namespace
}  // namespace shepherd
