#pragma once
#include <functional>
#include <memory>
#include <string>

#include "common/clock.hpp"
#include "config/config.hpp"
#include "store/credentials.hpp"
#include "store/leadership.hpp"
#include "store/store.hpp"

namespace shepherd::server {

// The server's connections to its store: the API's reader, the agents' credentials, the leader
// lease, and (once this controller leads) the controller's writer, each its own. SQLite (the file
// store.path names, else `default_sqlite`: one controller, which leads alone) or MariaDB
// (store.url: any number of controllers, one leader).
struct Stores {
  std::unique_ptr<Store> reader;
  std::unique_ptr<CredentialStore> credentials;
  // This controller's place among those on the store; made once the API's port (and so the
  // controller's identity) is known.
  std::function<std::unique_ptr<Leadership>(const ControllerIdentity& me)> open_leadership;
  // The leader's store, fenced by the epoch it won; call it once.
  std::function<std::unique_ptr<Store>(std::int64_t epoch)> open_writer;
  std::string description;  // for the startup line: the file, or the URL without its password
};

// `--store` given on the command line: a mariadb:// URL or a SQLite file, over the config's.
void override_store(Config& config, const std::string& store);

Stores open_stores(const Config& config, const std::string& default_sqlite, const Clock& clock);

}  // namespace shepherd::server
