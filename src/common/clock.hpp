#pragma once
#include <chrono>
#include <cstdint>

namespace shepherd {

// Milliseconds. Virtual in the simulator, wall-clock in the server; the core never reads a clock
// itself.
using TimeMs = std::int64_t;

constexpr TimeMs seconds(double s) {
  return static_cast<TimeMs>(s * 1000.0);
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimeMs now() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

// A clock the caller moves: the simulator and the tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 0) : now_(start) {}
  TimeMs now() const override { return now_; }
  void set(TimeMs t) { now_ = t; }
  void advance(TimeMs d) { now_ += d; }

 private:
  TimeMs now_;
};

}  // namespace shepherd
