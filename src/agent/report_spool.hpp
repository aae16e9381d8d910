#pragma once
// Reports the server has not acknowledged yet, on disk (<state_dir>/reports/), so that a report
// outlives a server outage and an agent restart. Task exits are kept by the TaskRunner's own spool.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace shepherd::agent {

class ReportSpool {
 public:
  explicit ReportSpool(std::string state_dir);  // reads what an earlier agent left
  // Keeps the frame under `id` (a second add of the same id keeps the first).
  void add(const std::string& id, const std::string& frame);
  void remove(const std::string& id);
  std::vector<std::string> frames() const;  // in the order they were added
  std::size_t size() const;

 private:
  std::string file_of(const std::string& id) const;

  std::string dir_;
  mutable std::mutex mu_;
  std::uint64_t next_seq_ = 1;
  struct Entry {
    std::uint64_t seq;
    std::string frame;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace shepherd::agent
