#pragma once
#include <optional>
#include <stdexcept>
#include <string>

#include "domain/model.hpp"

namespace shepherd {

// An enrolment refused: the name is enrolled already, or not a valid node name.
class EnrolmentRefused : public std::runtime_error {
 public:
  enum class Why { InvalidName, Enrolled };
  EnrolmentRefused(Why why, const std::string& message) : std::runtime_error(message), why(why) {}
  Why why;
};

// The agents' credentials: one secret per enrolled node, kept only as a hash. Every method may be
// called from any thread.
class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  // Makes a new secret for `node` and returns it; the secret is shown once and never stored.
  // Throws EnrolmentRefused for a node whose credential is in force: the bootstrap token must not
  // let anyone take over a live node's name. A revoked node may enrol again (a re-installed
  // machine): an operator's revoke is what lets a name in again, with a new secret.
  virtual std::string enrol(const std::string& node, TimeMs now) = 0;
  enum class Check { Valid, Unknown, Wrong, Revoked };
  virtual Check verify(const std::string& node, const std::string& secret) = 0;
  // Its secret stops working at once, for good. False if the node never enrolled.
  virtual bool revoke(const std::string& node, TimeMs now) = 0;
};

std::string_view to_string(CredentialStore::Check c);

}  // namespace shepherd
