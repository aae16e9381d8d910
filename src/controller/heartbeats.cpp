#include "controller/heartbeats.hpp"

namespace shepherd {

void HeartbeatTracker::connected(const std::string& node, TimeMs at) {
  Peer& p = peers_[node];
  p.connected = true;
  p.reported = false;
  p.last_heard = at;
}

void HeartbeatTracker::disconnected(const std::string& node, TimeMs at) {
  Peer& p = peers_[node];
  if (!p.connected && p.last_heard >= at) return;
  p.connected = false;
  p.last_heard = at;
  deadlines_.push({at + timeout_, node});
}

void HeartbeatTracker::heard_from(const std::string& node, TimeMs at) {
  Peer& p = peers_[node];
  p.reported = false;
  if (at <= p.last_heard) return;
  p.last_heard = at;
  if (!p.connected) deadlines_.push({at + timeout_, node});
}

// A deadline counts only if it is still the node's: heard from since, or connected again, it is
// stale and dropped.
bool HeartbeatTracker::due(const Deadline& d) const {
  auto it = peers_.find(d.node);
  return it != peers_.end() && !it->second.connected && !it->second.reported &&
         it->second.last_heard + timeout_ == d.at;
}

std::vector<std::string> HeartbeatTracker::lost(TimeMs now) {
  std::vector<std::string> out;
  while (!deadlines_.empty() && deadlines_.top().at <= now) {
    const Deadline d = deadlines_.top();
    deadlines_.pop();
    if (!due(d)) continue;
    peers_[d.node].reported = true;
    out.push_back(d.node);
  }
  return out;
}

std::optional<TimeMs> HeartbeatTracker::next_loss_at() {
  while (!deadlines_.empty()) {
    if (due(deadlines_.top())) return deadlines_.top().at;
    deadlines_.pop();
  }
  return std::nullopt;
}

}  // namespace shepherd
