#pragma once
// Internal to the stores: a batch's records, each once, as every dialect writes them.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/store.hpp"

namespace shepherd {

// The records of a batch, each once: a record several events changed is written in its last state,
// conditional on the version the batch first read it at. Fewer statements and dirty pages; the
// same outcome, since the batch commits as one transaction.
template <typename Record>
class Coalesced {
 public:
  struct Entry {
    const Record* last;
    std::int64_t read_version;
    std::int64_t changes;
  };

  void add(const Record& r, const std::string& id, std::string_view entity) {
    auto [it, fresh] = index_.try_emplace(id, entries_.size());
    if (fresh) {
      entries_.push_back({&r, r.version, 1});
      return;
    }
    Entry& e = entries_[it->second];
    // Each change must read what the previous one left; anything else is a lost update.
    if (r.version != e.read_version + e.changes)
      throw VersionConflict(std::string(entity) + " " + id + " changed twice in one batch from " +
                            "version " + std::to_string(r.version));
    e.last = &r;
    ++e.changes;
  }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::unordered_map<std::string_view, std::size_t> index_;  // views the batch's own ids
  std::vector<Entry> entries_;                               // in first-write order
};

// A batch's nodes, each once, with each half's first read version and its changes: a half is
// written only if some event of the batch changed it.
class CoalescedNodes {
 public:
  struct Half {
    bool changed = false;
    std::int64_t read_version = 0;
    std::int64_t changes = 0;
  };
  struct Entry {
    const Node* last;
    Half inventory, health;
  };

  void add(const Node& n, NodeParts parts) {
    auto [it, fresh] = index_.try_emplace(n.name, entries_.size());
    if (fresh) entries_.push_back({&n, {}, {}});
    Entry& e = entries_[it->second];
    e.last = &n;
    if (parts.inventory) count(e.inventory, n.inventory_version, n.name, "inventory");
    if (parts.health) count(e.health, n.version, n.name, "health");
  }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  static void count(Half& h, std::int64_t version, const std::string& name, const char* half) {
    if (!h.changed) {
      h = {true, version, 1};
      return;
    }
    if (version != h.read_version + h.changes)
      throw VersionConflict("node " + name + " " + half + " changed twice in one batch from " +
                            "version " + std::to_string(version));
    ++h.changes;
  }
  std::unordered_map<std::string_view, std::size_t> index_;  // views the batch's own names
  std::vector<Entry> entries_;
};

// Every record of a batch's non-duplicate commits, coalesced; views the batch, which must outlive
// it. Throws VersionConflict for two changes of one record from the same read.
struct CoalescedBatch {
  explicit CoalescedBatch(const std::vector<Commit>& batch) {
    for (const Commit& c : batch) {
      if (c.duplicate) continue;
      for (const Job& j : c.decision.jobs) jobs.add(j, j.id, "job");
      for (const Task& t : c.decision.tasks) tasks.add(t, t.id, "task");
      for (std::size_t i = 0; i < c.decision.nodes.size(); ++i)
        nodes.add(c.decision.nodes[i],
                  i < c.node_parts.size()
                      ? c.node_parts[i]
                      : NodeParts{c.decision.nodes[i].inventory_version == 0, true});
    }
  }
  Coalesced<Job> jobs;
  Coalesced<Task> tasks;
  CoalescedNodes nodes;
};

}  // namespace shepherd
