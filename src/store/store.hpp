#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "domain/decision.hpp"
#include "domain/snapshot.hpp"

namespace shepherd {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A record changed since it was read (another writer): nothing of the batch was written.
class VersionConflict : public StoreError {
 public:
  using StoreError::StoreError;
};

// The store belongs to a leader whose lease another controller has taken over since: nothing this
// controller decides can be written any more (docs/architecture.md, "Several controllers").
class FencedOut : public StoreError {
 public:
  using StoreError::StoreError;
};

// Which halves of a node an edit changed (domain/model.hpp, Node).
struct NodeParts {
  bool inventory = true;
  bool health = true;
};

// One event and what was decided for it.
struct Commit {
  std::string event_key;
  std::string event_kind;
  TimeMs at = 0;
  bool duplicate = false;  // the key was seen before: only counted, nothing else written
  Decision decision;
  // Per node of the decision, in its order, the halves it changed (the runtime fills it in). Empty:
  // the health half, and the inventory too for a new node. Each half is written only when changed,
  // conditional on its own version.
  std::vector<NodeParts> node_parts;
};

struct PendingAction {
  Action action;
  int attempts = 0;
  std::string last_error;
  TimeMs next_attempt_at = 0;
  TimeMs dead_at = 0;  // a dead letter since then (0: owed)
};

struct TimelineEntry {
  std::int64_t seq = 0;
  Transition transition;
};

// The durable state. Two implementations are planned: SQLite (embedded) and MySQL (shared).
class Store {
 public:
  virtual ~Store() = default;

  // Reads every job, task and node.
  virtual void load(Snapshot& into) = 0;

  // Which of these event keys are already stored (one read for a whole batch of events).
  virtual std::unordered_set<std::string> known_events(const std::vector<std::string>& keys) = 0;
  bool has_event(const std::string& key) { return !known_events({key}).empty(); }

  // Writes the whole batch in one transaction: each record conditional on the version it was read
  // at (inserted when that is 0), then stored with version + 1; the transitions; the actions into
  // the outbox as pending; each event key. Throws VersionConflict, and writes nothing, if any
  // record changed since it was read. A record several events of the batch change carries, each
  // time, the version the previous change left (read version + 1, + 2, ...); a store may write
  // only its last state, with the last version. The `delivered` actions are marked done in the
  // same transaction (the runtime acknowledges deliveries with its next commit).
  virtual void commit(const std::vector<Commit>& batch,
                      const std::vector<std::string>& delivered = {}) = 0;

  // Pending outbox actions whose next try is due, oldest first (the runtime reads them when it
  // starts; after that it delivers what it commits from memory).
  virtual std::vector<PendingAction> pending_actions(TimeMs now, std::size_t limit) = 0;
  // Done actions leave the outbox; an unknown id is ignored.
  virtual void mark_actions_done(const std::vector<std::string>& action_ids) = 0;
  virtual void mark_action_failed(const std::string& action_id, const std::string& error,
                                  TimeMs retry_at) = 0;
  // A permanent failure: the action becomes a dead letter, no longer pending, kept for a person.
  virtual void mark_action_dead(const std::string& action_id, const std::string& error,
                                TimeMs at) = 0;
  virtual std::vector<PendingAction> dead_letters(std::size_t limit) = 0;
  // An operator's retry: the dead letter is pending again, due at `at`; nullopt if no dead letter
  // has that id.
  virtual std::optional<PendingAction> revive_action(const std::string& action_id, TimeMs at) = 0;

  // Records a controller start and returns its number, greater than every earlier one on this
  // store (controller-made event keys carry it).
  virtual std::int64_t begin_incarnation(TimeMs at) = 0;

  virtual std::vector<TimelineEntry> timeline(std::int64_t after_seq, std::size_t limit) = 0;
  virtual std::int64_t duplicate_events() = 0;
  virtual int schema_version() = 0;
};

}  // namespace shepherd
