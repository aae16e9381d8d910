#pragma once
// Test doubles that several tests need: a cluster driver and notifiers that carry out at once.
#include <nlohmann/json.hpp>
#include <vector>

#include "domain/ports.hpp"

namespace shepherd::test {

// Takes every action and does nothing with it.
struct AcceptingDriver final : ImmediateClusterDriver {
  void carry_out(const Action&) override {}
};

// Takes every notification and drops it.
struct QuietNotifier final : ImmediateNotifier {
  void deliver(const Action&) override {}
};

// Keeps each notification's payload.
struct RecordingNotifier final : ImmediateNotifier {
  void deliver(const Action& a) override { sent.push_back(payload_json(a)); }
  std::vector<nlohmann::json> sent;
};

}  // namespace shepherd::test
