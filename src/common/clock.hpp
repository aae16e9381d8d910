#pragma once
#include <chrono>
#include <cstdint>

namespace shepherd {

// Milliseconds. Virtual in the simulator, wall-clock in the server; the core never reads a clock
// itself.
using TimeMs = std::int64_t;

// The largest duration any reader accepts (about 31 years): every number of seconds read from a
// file, an environment variable or a request is checked against it where it is read, so the
// conversion below is always defined.
inline constexpr double kMaxSeconds = 1e9;

// Seconds to milliseconds. Saturates (NaN gives 0) rather than overflow, which would be undefined
// behaviour: a value that got past the readers' checks still means "very long", never "at once".
constexpr TimeMs seconds(double s) {
  if (!(s == s)) return 0;
  if (s >= kMaxSeconds * 1000) return static_cast<TimeMs>(kMaxSeconds * 1000 * 1000);
  if (s <= -kMaxSeconds * 1000) return -static_cast<TimeMs>(kMaxSeconds * 1000 * 1000);
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
