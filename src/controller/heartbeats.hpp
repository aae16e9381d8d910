#pragma once
#include <limits>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"

namespace shepherd {

// Which nodes have gone silent for longer than the heartbeat timeout. A node is heard from while
// its agent's connection is up (the gateway's pings keep it alive) or, without a connection, at
// each heartbeat it sends; silence starts when the connection drops or after the last heartbeat.
// Each silence is reported once. Pure bookkeeping on the times it is given: the controller owns
// the clock and the lock.
class HeartbeatTracker {
 public:
  explicit HeartbeatTracker(TimeMs timeout) : timeout_(timeout) {}

  void connected(const std::string& node, TimeMs at);
  void disconnected(const std::string& node, TimeMs at);
  void heard_from(const std::string& node, TimeMs at);

  // The nodes whose silence reached the timeout by `now` and was not reported yet, earliest first.
  std::vector<std::string> lost(TimeMs now);
  // When the next silence reaches the timeout, if one may.
  std::optional<TimeMs> next_loss_at();

 private:
  struct Peer {
    TimeMs last_heard = std::numeric_limits<TimeMs>::min();  // never
    bool connected = false;
    bool reported = false;
  };
  struct Deadline {
    TimeMs at;
    std::string node;
    bool operator>(const Deadline& o) const { return at > o.at || (at == o.at && node > o.node); }
  };
  bool due(const Deadline& d) const;

  TimeMs timeout_;
  std::unordered_map<std::string, Peer> peers_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
};

}  // namespace shepherd
