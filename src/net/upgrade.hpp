#pragma once
// The hand-over of an upgraded connection (a WebSocket) from HttpServer to its handler. Includes
// Boost.Beast: only the gateway's sources use it.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>

namespace shepherd::net {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;
// The connection's place in the server's max_connections: it is given back when the last copy is
// dropped, so an upgraded connection counts for as long as its handler keeps it.
using ConnectionSlot = std::shared_ptr<void>;

class UpgradeHandler {
 public:
  virtual ~UpgradeHandler() = default;
  // Called on the connection's event loop, with the TLS handshake done and the upgrade request
  // read; the handler accepts (or refuses) the WebSocket and owns the stream from now on.
  // Keep `slot` as long as the connection is open.
  virtual void accept(TlsStream stream, UpgradeRequest request, std::string remote,
                      ConnectionSlot slot) = 0;
};

}  // namespace shepherd::net
