// `shepherd server init`'s TLS files and directory: a self-signed CA, a server certificate that
// OpenSSL verifies against it for exactly the names given, files only their owner can read, and
// no second installation over a first.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/private_file.hpp"
#include "server/layout.hpp"
#include "server/pki.hpp"
#include "support/temp_dir.hpp"

namespace shepherd::server {
namespace {

namespace fs = std::filesystem;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using Cert = std::unique_ptr<X509, X509Free>;

Cert parse_cert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Cert cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!cert) throw std::runtime_error("not a PEM certificate");
  return cert;
}

bool key_matches(const std::string& key_pem, X509* cert) {
  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  const bool ok = key != nullptr && X509_check_private_key(cert, key) == 1;
  EVP_PKEY_free(key);
  return ok;
}

// What a TLS client of the server does: verify the chain to the one trusted CA, for serverAuth.
// Returns X509_V_OK or OpenSSL's reason.
int verify(X509* cert, X509* ca) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  const int ok = X509_verify_cert(ctx);
  const int error = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok == 1 ? X509_V_OK : (error == X509_V_OK ? -1 : error);
}

// The subjectAltNames as "DNS:name" / "IP:address".
std::set<std::string> alt_names(X509* cert) {
  std::set<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      const ASN1_STRING* s = n->d.dNSName;
      out.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<std::size_t>(ASN1_STRING_length(s))));
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = n->d.iPAddress;
      const int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      char text[INET6_ADDRSTRLEN] = "?";
      ::inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text);
      out.insert("IP:" + std::string(text));
    } else {
      out.insert("other");
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

bool is_ca(X509* cert) {
  return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0 && X509_check_ca(cert) != 0;
}

TEST(Pki, TheCaIsSelfSignedAndACa) {
  const KeyPair ca = make_ca("Shepherd CA test", 30);
  const Cert cert = parse_cert(ca.cert_pem);
  EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);  // signed by its own key
  EXPECT_TRUE(is_ca(cert.get()));
  EXPECT_EQ(X509_get_pathlen(cert.get()), 0);  // it signs servers, not other CAs
  EXPECT_NE(X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN, 0u);
  EXPECT_TRUE(key_matches(ca.key_pem, cert.get()));
}

TEST(Pki, TheServerCertificateVerifiesAgainstItsCaOnly) {
  const KeyPair ca = make_ca("Shepherd CA test", 30);
  const KeyPair server = issue_server_certificate(ca, {"shepherd.example"}, 30);
  const Cert cert = parse_cert(server.cert_pem);
  const Cert ca_cert = parse_cert(ca.cert_pem);
  EXPECT_EQ(verify(cert.get(), ca_cert.get()), X509_V_OK)
      << X509_verify_cert_error_string(verify(cert.get(), ca_cert.get()));
  EXPECT_FALSE(is_ca(cert.get()));  // it cannot sign certificates of its own
  EXPECT_TRUE(key_matches(server.key_pem, cert.get()));
  EXPECT_FALSE(key_matches(ca.key_pem, cert.get()));
  // Another installation's CA does not vouch for it.
  const Cert stranger = parse_cert(make_ca("Shepherd CA other", 30).cert_pem);
  EXPECT_NE(verify(cert.get(), stranger.get()), X509_V_OK);
}

TEST(Pki, TheServerCertificateCarriesTheNamesGiven) {
  const KeyPair ca = make_ca("Shepherd CA test", 30);
  const Cert cert = parse_cert(
      issue_server_certificate(ca, {"shepherd.example", "localhost", "10.0.0.5", "::1"}, 30)
          .cert_pem);
  EXPECT_EQ(alt_names(cert.get()), (std::set<std::string>{"DNS:shepherd.example", "DNS:localhost",
                                                          "IP:10.0.0.5", "IP:::1"}));
  // As a TLS client checks them: each name matches, nothing else does.
  for (const char* host : {"shepherd.example", "localhost"})
    EXPECT_EQ(X509_check_host(cert.get(), host, 0, 0, nullptr), 1) << host;
  EXPECT_EQ(X509_check_host(cert.get(), "other.example", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.5", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.6", 0), 0);
  // An address is an IP name, not a DNS name that a client would compare as text.
  EXPECT_EQ(alt_names(cert.get()).count("DNS:10.0.0.5"), 0u);
}

TEST(Pki, TheCertificateLastsTheDaysAsked) {
  const KeyPair ca = make_ca("Shepherd CA test", 10);
  const Cert cert = parse_cert(issue_server_certificate(ca, {"localhost"}, 10).cert_pem);
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())), 1);
  EXPECT_TRUE(days == 10 || (days == 9 && seconds > 86000)) << days << " d " << seconds << " s";
}

TEST(Pki, ANameThatIsNeitherAHostNorAnAddressIsRefused) {
  const KeyPair ca = make_ca("Shepherd CA test", 30);
  // Each would be a wrong name, or (',' ':') another entry in OpenSSL's SAN text.
  for (const std::string name :
       {"", "two words", "host,DNS:evil.example", "IP:10.0.0.1", ".leading.dot", "-leading-dash",
        "host/path", "host\nname", "h\xc3\xa9te"})
    EXPECT_THROW(issue_server_certificate(ca, {"localhost", name}, 30), std::invalid_argument)
        << "'" << name << "'";
  EXPECT_THROW(issue_server_certificate(ca, {}, 30), std::invalid_argument);
}

// ---- server init ----

std::string mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return "missing";
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return text;
}

InitOptions names(std::vector<std::string> n) {
  InitOptions o;
  o.names = std::move(n);
  return o;
}

// umask 0 for the scope: the modes must come from init itself, not from a careful umask.
class OpenUmask {
 public:
  OpenUmask() : old_(::umask(0)) {}
  ~OpenUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST(ServerInit, EveryFileIsPrivate) {
  test::TempDir tmp("shepherd-init");
  const Layout at{tmp / "server"};
  {
    OpenUmask open;
    init(at.dir, names({"localhost", "127.0.0.1"}));
  }
  for (const std::string& file : {at.config(), at.ca_cert(), at.ca_key(), at.server_cert(),
                                  at.server_key(), at.admin_token(), at.bootstrap_token()})
    EXPECT_TRUE(fs::is_regular_file(file)) << file;
  int files = 0;
  EXPECT_EQ(mode_of(at.dir), "0700");
  for (const auto& entry : fs::recursive_directory_iterator(at.dir)) {
    EXPECT_FALSE(entry.is_symlink()) << entry.path();
    if (entry.is_directory()) {
      EXPECT_EQ(mode_of(entry.path()), "0700") << entry.path();
    } else {
      ++files;
      EXPECT_EQ(mode_of(entry.path()), "0600") << entry.path();
      EXPECT_NE(entry.path().extension(), ".tmp") << "a temporary file left behind";
    }
  }
  EXPECT_EQ(files, 7);
  EXPECT_TRUE(fs::is_directory(at.data()));
}

TEST(ServerInit, ADirectoryMadeBeforehandBecomesPrivate) {
  test::TempDir tmp("shepherd-init");
  const Layout at{tmp / "server"};
  fs::create_directory(at.dir);
  fs::permissions(at.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  init(at.dir, names({"localhost"}));
  EXPECT_EQ(mode_of(at.dir), "0700");
}

TEST(ServerInit, WritesACaAndACertificateThatVerifiesAgainstIt) {
  test::TempDir tmp("shepherd-init");
  const Layout at{tmp / "server"};
  init(at.dir, names({"shepherd.example", "10.1.2.3"}));
  const Cert ca = parse_cert(test::read_file(at.ca_cert()));
  const Cert cert = parse_cert(test::read_file(at.server_cert()));
  EXPECT_TRUE(is_ca(ca.get()));
  EXPECT_EQ(verify(cert.get(), ca.get()), X509_V_OK);
  EXPECT_TRUE(key_matches(test::read_file(at.ca_key()), ca.get()));
  EXPECT_TRUE(key_matches(test::read_file(at.server_key()), cert.get()));
  EXPECT_EQ(alt_names(cert.get()), (std::set<std::string>{"DNS:shepherd.example", "IP:10.1.2.3"}));
  // The tokens: secrets the server accepts (read_secret_file refuses a readable one), not equal.
  const std::string admin = read_secret_file(at.admin_token());
  const std::string bootstrap = read_secret_file(at.bootstrap_token());
  EXPECT_EQ(admin.size(), 64u);
  EXPECT_NE(admin, bootstrap);
  EXPECT_NE(test::read_file(at.config()).find(at.database()), std::string::npos);
}

TEST(ServerInit, RefusesADirectoryThatHoldsAServer) {
  test::TempDir tmp("shepherd-init");
  const Layout at{tmp / "server"};
  init(at.dir, names({"localhost"}));
  const std::string ca = test::read_file(at.ca_cert());
  const std::string key = test::read_file(at.ca_key());
  const std::string admin = test::read_file(at.admin_token());
  EXPECT_THROW(init(at.dir, names({"localhost"})), std::runtime_error);
  // Agents trust that CA and the CLI holds that token: nothing was replaced.
  EXPECT_EQ(test::read_file(at.ca_cert()), ca);
  EXPECT_EQ(test::read_file(at.ca_key()), key);
  EXPECT_EQ(test::read_file(at.admin_token()), admin);
  // The same refusal when the directory is named another way.
  EXPECT_THROW(init(at.dir + "/./tls/..", names({"localhost"})), std::runtime_error);
  EXPECT_EQ(test::read_file(at.ca_cert()), ca);
}

TEST(ServerInit, BadOptionsWriteNothing) {
  test::TempDir tmp("shepherd-init");
  const std::string dir = tmp / "server";
  EXPECT_THROW(init(dir, names({"not a name"})), std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir));
  InitOptions quote = names({"localhost"});
  quote.listen = "0.0.0.0:8443\"\nstore: {path: /tmp/x}";  // would rewrite the config
  EXPECT_THROW(init(dir, quote), std::runtime_error);
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace shepherd::server
