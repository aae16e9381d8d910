// The agents' credentials in the store's database: a secret per enrolled node, verified in
// constant time, kept only as a hash, revocable for good, and kept across a reopen.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/secrets.hpp"
#include "support/temp_dir.hpp"
#include "support/test_databases.hpp"

namespace shepherd {
namespace {

using Check = CredentialStore::Check;

// The credentials on each store, as the server has them: the store migrates the database, then
// the credentials open it on a connection of their own. Part of the conformance suite.
class Credentials : public test::StoreConformance {
 protected:
  void SetUp() override {
    StoreConformance::SetUp();
    if (!IsSkipped()) credentials = db->credentials();
  }
  void TearDown() override {
    credentials.reset();
    StoreConformance::TearDown();
  }
  void reopen() {
    credentials.reset();
    store.reset();
    store = db->open();
    credentials = db->credentials();
  }
  std::string credentials_table() const {
    return GetParam() == "sqlite" ? "node_credentials" : "shepherd_node_credentials";
  }

  std::unique_ptr<CredentialStore> credentials;
};

TEST_P(Credentials, TheIssuedSecretVerifies) {
  const std::string secret = credentials->enrol("node-1", 1000);
  EXPECT_EQ(secret.size(), 64u);  // 32 random bytes in hex
  EXPECT_EQ(secret.find_first_not_of("0123456789abcdef"), std::string::npos) << secret;
  EXPECT_EQ(credentials->verify("node-1", secret), Check::Valid);
}

TEST_P(Credentials, EachEnrolmentGetsItsOwnSecret) {
  const std::string one = credentials->enrol("node-1", 1000);
  const std::string two = credentials->enrol("node-2", 1000);
  EXPECT_NE(one, two);
  // A node's secret is no good for another node.
  EXPECT_EQ(credentials->verify("node-1", two), Check::Wrong);
  EXPECT_EQ(credentials->verify("node-2", one), Check::Wrong);
  EXPECT_EQ(credentials->verify("node-2", two), Check::Valid);
}

TEST_P(Credentials, AWrongSecretIsRefused) {
  const std::string secret = credentials->enrol("node-1", 1000);
  std::string changed = secret;
  changed.back() = changed.back() == '0' ? '1' : '0';
  EXPECT_EQ(credentials->verify("node-1", changed), Check::Wrong);
  EXPECT_EQ(credentials->verify("node-1", ""), Check::Wrong);
  EXPECT_EQ(credentials->verify("node-1", secret + "0"), Check::Wrong);
  EXPECT_EQ(credentials->verify("node-1", secret.substr(1)), Check::Wrong);
  // What a copy of the database holds does not act as the node.
  EXPECT_EQ(credentials->verify("node-1", sha256_hex(secret)), Check::Wrong);
}

TEST_P(Credentials, AnUnknownNodeIsUnknown) {
  const std::string secret = credentials->enrol("node-1", 1000);
  EXPECT_EQ(credentials->verify("node-9", secret), Check::Unknown);
  EXPECT_EQ(credentials->verify("", secret), Check::Unknown);
  EXPECT_EQ(credentials->verify("NODE-1", secret), Check::Unknown);  // names are exact
  EXPECT_FALSE(credentials->revoke("node-9", 2000));                 // never enrolled
  EXPECT_EQ(credentials->verify("node-9", secret), Check::Unknown);  // and still not
}

TEST_P(Credentials, ARevokedNodeIsRefusedEvenWithItsSecret) {
  const std::string secret = credentials->enrol("node-1", 1000);
  const std::string other = credentials->enrol("node-2", 1000);
  EXPECT_TRUE(credentials->revoke("node-1", 2000));
  EXPECT_EQ(credentials->verify("node-1", secret), Check::Revoked);
  EXPECT_EQ(credentials->verify("node-1", "anything"), Check::Revoked);
  EXPECT_EQ(credentials->verify("node-2", other), Check::Valid);  // only that node
  // Revoking again is no error (the operator's command is idempotent).
  EXPECT_TRUE(credentials->revoke("node-1", 3000));
  EXPECT_EQ(credentials->verify("node-1", secret), Check::Revoked);
}

// The bootstrap token enrols new names only: whoever holds it must not take over a live node (its
// jobs, its identity) by enrolling its name again. The message says how to let it in again.
TEST_P(Credentials, ALiveNodeCannotBeEnrolledAgain) {
  const std::string secret = credentials->enrol("node-1", 1000);
  try {
    credentials->enrol("node-1", 2000);
    ADD_FAILURE() << "a second enrolment of a live node was accepted";
  } catch (const EnrolmentRefused& e) {
    EXPECT_EQ(e.why, EnrolmentRefused::Why::Enrolled);
    EXPECT_NE(std::string(e.what()).find("shepherd node reenrol node-1"), std::string::npos);
  }
  EXPECT_EQ(credentials->verify("node-1", secret), Check::Valid);  // untouched
  reopen();  // and not only until a server restart
  EXPECT_THROW(credentials->enrol("node-1", 3000), EnrolmentRefused);
}

// Nor can it bring back a revoked node (one that may have kept a copy of the token).
TEST_P(Credentials, ARevokedNodeCannotEnrolAgain) {
  const std::string secret = credentials->enrol("node-1", 1000);
  ASSERT_TRUE(credentials->revoke("node-1", 2000));
  try {
    credentials->enrol("node-1", 3000);
    ADD_FAILURE() << "a revoked node enrolled again";
  } catch (const EnrolmentRefused& e) {
    EXPECT_EQ(e.why, EnrolmentRefused::Why::Revoked);
  }
  EXPECT_EQ(credentials->verify("node-1", secret), Check::Revoked);
  reopen();
  EXPECT_THROW(credentials->enrol("node-1", 4000), EnrolmentRefused);
}

// Only an operator lets a name enrol again (a node re-installed from scratch): its credential is
// dropped at once, and the next enrolment gets a new secret; the old one never works again.
TEST_P(Credentials, AnOperatorLetsANodeEnrolAgainWithANewSecret) {
  EXPECT_FALSE(credentials->allow_enrolment("node-1"));  // never enrolled
  const std::string first = credentials->enrol("node-1", 1000);
  ASSERT_TRUE(credentials->allow_enrolment("node-1"));
  EXPECT_NE(credentials->verify("node-1", first), Check::Valid);  // stops working at once
  const std::string second = credentials->enrol("node-1", 2000);
  EXPECT_NE(first, second);
  EXPECT_EQ(credentials->verify("node-1", second), Check::Valid);
  EXPECT_EQ(credentials->verify("node-1", first), Check::Wrong);
  ASSERT_TRUE(credentials->revoke("node-1", 2500));  // and a revoked one, the same way
  ASSERT_TRUE(credentials->allow_enrolment("node-1"));
  EXPECT_EQ(credentials->verify("node-1", credentials->enrol("node-1", 3000)), Check::Valid);
  // Still one row, with the new enrolment time.
  EXPECT_EQ(db->column("SELECT enrolled_at FROM " + credentials_table()),
            std::vector<std::string>{"3000"});
}

TEST_P(Credentials, AnInvalidNodeNameIsRefused) {
  const std::vector<std::string> bad = {"",    "node 1", "../node",
                                        "a/b", "node:1", std::string(129, 'n')};
  for (const auto& name : bad)
    EXPECT_THROW(credentials->enrol(name, 1000), EnrolmentRefused) << "'" << name << "'";
  EXPECT_NO_THROW(credentials->enrol(std::string(128, 'n'), 1000));  // the rule's longest name
}

TEST_P(Credentials, OnlyAHashOfTheSecretIsStored) {
  const std::string secret = credentials->enrol("node-1", 1000);
  EXPECT_EQ(db->column("SELECT secret_hash FROM " + credentials_table()),
            std::vector<std::string>{sha256_hex(secret)});
  auto* file = dynamic_cast<test::SqliteTestDatabase*>(db.get());
  if (!file) return;
  credentials.reset();  // both connections closed: the WAL is checkpointed into the file
  store.reset();
  // Nowhere in the file's bytes either (the hash is: this reads where the row is).
  const std::string bytes = test::read_file(file->path());
  EXPECT_EQ(bytes.find(secret), std::string::npos);
  EXPECT_NE(bytes.find(sha256_hex(secret)), std::string::npos);
}

TEST_P(Credentials, EnrolmentsAndRevocationsSurviveAReopen) {
  const std::string kept = credentials->enrol("node-1", 1000);
  const std::string revoked = credentials->enrol("node-2", 1000);
  ASSERT_TRUE(credentials->revoke("node-2", 2000));
  reopen();
  EXPECT_EQ(credentials->verify("node-1", kept), Check::Valid);
  EXPECT_EQ(credentials->verify("node-1", revoked), Check::Wrong);
  EXPECT_EQ(credentials->verify("node-2", revoked), Check::Revoked);
  EXPECT_EQ(credentials->verify("node-3", kept), Check::Unknown);
}

TEST(CredentialCheck, NamesEachOutcome) {
  EXPECT_EQ(to_string(Check::Valid), "valid");
  EXPECT_EQ(to_string(Check::Unknown), "not enrolled");
  EXPECT_EQ(to_string(Check::Wrong), "wrong credential");
  EXPECT_EQ(to_string(Check::Revoked), "revoked");
}

SHEPHERD_STORE_CONFORMANCE(Credentials);

}  // namespace
}  // namespace shepherd
