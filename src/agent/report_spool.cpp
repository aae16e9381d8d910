#include "agent/report_spool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/private_file.hpp"
#include "common/secrets.hpp"

namespace shepherd::agent {
namespace fs = std::filesystem;

ReportSpool::ReportSpool(std::string state_dir) : dir_(std::move(state_dir) + "/reports") {
  fs::create_directories(dir_);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const auto j = nlohmann::json::parse(text.str(), nullptr, false);
    // Checked field by field: a file of another shape must not throw out of the constructor
    // (the agent would stop at every start).
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string() ||
        !j.contains("seq") || !j["seq"].is_number_unsigned() || !j.contains("frame") ||
        !j["frame"].is_string()) {
      spdlog::warn("agent: dropping unreadable spooled report {}", entry.path().string());
      fs::remove(entry.path());
      continue;
    }
    const auto seq = j["seq"].get<std::uint64_t>();
    entries_[j["id"].get<std::string>()] = {seq, j["frame"].get<std::string>()};
    next_seq_ = std::max(next_seq_, seq + 1);
  }
}

// Report ids hold ':' and other characters a file name should not: the file is named by a hash.
std::string ReportSpool::file_of(const std::string& id) const {
  return dir_ + "/" + sha256_hex(id).substr(0, 32) + ".json";
}

void ReportSpool::add(const std::string& id, const std::string& frame) {
  std::lock_guard lock(mu_);
  if (entries_.count(id)) return;
  const std::uint64_t seq = next_seq_++;
  write_private_file(file_of(id),
                     nlohmann::json{{"id", id}, {"seq", seq}, {"frame", frame}}.dump());
  entries_[id] = {seq, frame};
}

void ReportSpool::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  if (entries_.erase(id) == 0) return;
  std::error_code ignored;
  fs::remove(file_of(id), ignored);
}

std::vector<std::string> ReportSpool::frames() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::uint64_t, std::string>> ordered;
  for (const auto& [id, e] : entries_) ordered.emplace_back(e.seq, e.frame);
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> out;
  for (auto& [seq, frame] : ordered) out.push_back(std::move(frame));
  return out;
}

std::size_t ReportSpool::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace shepherd::agent
