#pragma once
// Which of the controllers on one store leads (docs/architecture.md, "Several controllers"). The
// leader holds a lease with an epoch; only it runs the engine and the dispatcher, and its store
// refuses every write once another epoch began (FencedOut). The others are standbys: they serve
// reads, send writers and agents to the leader, and campaign for the lease until it lapses.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"

namespace shepherd {

// This controller, as the others and GET /api/cluster see it.
struct ControllerIdentity {
  std::string name;  // unique per database
  std::string url;   // where agents and clients reach it: https://HOST:PORT
  std::string version;
};

struct LeaderLease {
  std::string holder, url;  // the leader's name and URL
  std::int64_t epoch = 0;
  TimeMs acquired_at = 0, renewed_at = 0, expires_at = 0;  // the store's clock
};

struct ControllerSeen {
  ControllerIdentity controller;
  TimeMs started_at = 0, seen_at = 0;
};

struct ClusterView {
  std::optional<LeaderLease> lease;  // none before the first controller campaigned
  std::vector<ControllerSeen> controllers;
  TimeMs now = 0;  // the store's clock, for expires_at and seen_at
};

class Leadership {
 public:
  virtual ~Leadership() = default;
  // One campaign: the epoch when this controller holds the lease now (it renews it from then on),
  // none while another's lease holds. Throws StoreError when the store cannot be reached.
  virtual std::optional<std::int64_t> try_lead() = 0;
  // Extends the lease by ttl(). False: it is lost (another controller took it over, or it lapsed
  // and cannot be had back); then this controller must write and send nothing more. Throws
  // StoreError when the store cannot be reached: the caller's own count of the ttl decides.
  virtual bool renew() = 0;
  // Gives the lease up at once (a clean stop), so a standby takes over without waiting out the ttl.
  virtual void resign() = 0;
  virtual ClusterView view() = 0;
  virtual std::chrono::milliseconds ttl() const = 0;
};

// A controller alone on its store (a SQLite file, shepherd dev): it leads from the start, at
// epoch 1, and nobody can take over.
class SoleLeadership final : public Leadership {
 public:
  SoleLeadership(ControllerIdentity me, const Clock& clock)
      : me_(std::move(me)), clock_(clock), at_(clock.now()) {}
  std::optional<std::int64_t> try_lead() override { return 1; }
  bool renew() override { return true; }
  void resign() override {}
  ClusterView view() override {
    const TimeMs now = clock_.now();
    return {LeaderLease{me_.name, me_.url, 1, at_, now, 0}, {{me_, at_, now}}, now};
  }
  std::chrono::milliseconds ttl() const override { return std::chrono::milliseconds(0); }

 private:
  ControllerIdentity me_;
  const Clock& clock_;
  TimeMs at_;
};

}  // namespace shepherd
