#pragma once
#include "domain/ports.hpp"
#include "server/lease_keeper.hpp"

namespace shepherd::server {

// The leader's hands: an action reaches its agent, and a notification its sinks, only while the
// leader lease surely holds. A leader paused past its lease (and so perhaps deposed) sends nothing
// when it wakes: the hand-over fails and is owed again, and the store, fenced, refuses the rest.
class LeaderOnly final : public ClusterDriver, public Notifier {
 public:
  LeaderOnly(ClusterDriver& driver, Notifier& notifier, const LeaseKeeper& keeper)
      : driver_(driver), notifier_(notifier), keeper_(keeper) {}

  void execute(const Action& action, DeliveryCallback done) override {
    if (!keeper_.holds()) return done(DeliveryResult::failed(kLapsed));
    driver_.execute(action, std::move(done));
  }
  void notify(const Action& action, DeliveryCallback done) override {
    if (!keeper_.holds()) return done(DeliveryResult::failed(kLapsed));
    notifier_.notify(action, std::move(done));
  }

 private:
  static constexpr const char* kLapsed = "not sent: this controller's leader lease may have lapsed";
  ClusterDriver& driver_;
  Notifier& notifier_;
  const LeaseKeeper& keeper_;
};

}  // namespace shepherd::server
