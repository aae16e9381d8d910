#pragma once
#include <memory>
#include <string>

#include "config/config.hpp"
#include "store/credentials.hpp"
#include "store/store.hpp"

namespace shepherd::server {

// The server's connections to its store: the controller's writer, the API's reader, and the
// agents' credentials, each its own. SQLite (the file store.path names, else `default_sqlite`) or
// MariaDB (store.url).
struct Stores {
  std::unique_ptr<Store> writer, reader;
  std::unique_ptr<CredentialStore> credentials;
  std::string description;  // for the startup line: the file, or the URL without its password
};

// `--store` given on the command line: a mariadb:// URL or a SQLite file, over the config's.
void override_store(Config& config, const std::string& store);

Stores open_stores(const Config& config, const std::string& default_sqlite);

}  // namespace shepherd::server
