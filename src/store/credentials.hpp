#pragma once
#include <optional>
#include <stdexcept>
#include <string>

#include "domain/model.hpp"

namespace shepherd {

// An enrolment refused: the name is enrolled already or revoked, or not a valid node name.
class EnrolmentRefused : public std::runtime_error {
 public:
  enum class Why { InvalidName, Enrolled, Revoked };
  EnrolmentRefused(Why why, const std::string& message) : std::runtime_error(message), why(why) {}
  // The refusal of a name that holds a credential (revoked or in force).
  static EnrolmentRefused known(const std::string& node, bool revoked);
  // Throws InvalidName unless `node` is a valid node name.
  static void check_name(const std::string& node);
  Why why;
};

// The agents' credentials: one secret per enrolled node, kept only as a hash. Every method may be
// called from any thread.
class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  // Makes a new secret for a new `node` and returns it; the secret is shown once and never stored.
  // Throws EnrolmentRefused for a name enrolled before, in force or revoked: whoever holds the
  // bootstrap token must neither take over a live node nor bring back a revoked one. Only an
  // operator lets a name enrol again (allow_enrolment).
  virtual std::string enrol(const std::string& node, TimeMs now) = 0;
  enum class Check { Valid, Unknown, Wrong, Revoked };
  virtual Check verify(const std::string& node, const std::string& secret) = 0;
  // Its secret stops working at once, for good. False if the node never enrolled.
  virtual bool revoke(const std::string& node, TimeMs now) = 0;
  // An operator's word that `node` may enrol again (re-installed, its credential lost): its
  // credential, in force or revoked, is dropped, so its secret stops working and the next
  // enrolment gets a new one. False if the node has no credential.
  virtual bool allow_enrolment(const std::string& node) = 0;
};

std::string_view to_string(CredentialStore::Check c);

// Whether `secret` hashes to `stored_hash` (hex SHA-256), compared in constant time.
bool secret_matches(const std::string& stored_hash, const std::string& secret);

}  // namespace shepherd
