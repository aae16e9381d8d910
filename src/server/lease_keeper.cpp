#include "server/lease_keeper.hpp"

#include <spdlog/spdlog.h>

namespace shepherd::server {

using Steady = std::chrono::steady_clock;

LeaseKeeper::LeaseKeeper(Leadership& leadership, std::function<void(const std::string&)> on_lost,
                         Steady::time_point since)
    : leadership_(leadership), on_lost_(std::move(on_lost)) {
  valid_until_ = (since + leadership_.ttl() - margin()).time_since_epoch().count();
  if (leadership_.ttl().count() > 0) thread_ = std::thread([this] { keep(); });
}

LeaseKeeper::~LeaseKeeper() {
  stop();
}

void LeaseKeeper::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  valid_until_ = 0;
}

std::chrono::steady_clock::duration LeaseKeeper::margin() const {
  return leadership_.ttl() / 10;
}

bool LeaseKeeper::holds() const {
  if (leadership_.ttl().count() == 0) return valid_until_.load() != 0;  // alone on its store
  return Steady::now().time_since_epoch().count() < valid_until_.load();
}

void LeaseKeeper::keep() {
  const auto every = leadership_.ttl() / 3;
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, every, [this] { return stopping_; })) {
    lock.unlock();
    const auto sent = Steady::now();
    std::string lost;
    try {
      if (leadership_.renew())
        valid_until_ = (sent + leadership_.ttl() - margin()).time_since_epoch().count();
      else
        lost = "another controller holds the leader lease now";
    } catch (const std::exception& e) {
      spdlog::warn("leader lease: renewal failed: {}", e.what());
      if (!holds()) lost = std::string("the lease lapsed while renewals failed: ") + e.what();
    }
    if (!lost.empty() || !holds()) {
      if (lost.empty()) lost = "the lease lapsed before a renewal got through";
      valid_until_ = 0;
      on_lost_(lost);
      return;
    }
    lock.lock();
  }
}

}  // namespace shepherd::server
