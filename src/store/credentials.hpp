#pragma once
#include <optional>
#include <stdexcept>
#include <string>

#include "domain/model.hpp"

namespace shepherd {

// An enrolment refused: the name is revoked, or not a valid node name.
class EnrolmentRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The agents' credentials: one secret per enrolled node, kept only as a hash. Every method may be
// called from any thread.
class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  // Makes a new secret for `node` (replacing an earlier one: an agent re-installed from scratch
  // enrols again) and returns it; the secret is shown once and never stored. Throws
  // EnrolmentRefused for a revoked node.
  virtual std::string enrol(const std::string& node, TimeMs now) = 0;
  enum class Check { Valid, Unknown, Wrong, Revoked };
  virtual Check verify(const std::string& node, const std::string& secret) = 0;
  // False if the node never enrolled.
  virtual bool revoke(const std::string& node, TimeMs now) = 0;
};

std::string_view to_string(CredentialStore::Check c);

}  // namespace shepherd
