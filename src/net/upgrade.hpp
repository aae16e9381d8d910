#pragma once
// The hand-over of an upgraded connection (a WebSocket) from HttpServer to its handler. Includes
// Boost.Beast: only the gateway's sources use it.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace shepherd::net {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;

class UpgradeHandler {
 public:
  virtual ~UpgradeHandler() = default;
  // Called on the connection's event loop, with the TLS handshake done and the upgrade request
  // read; the handler accepts (or refuses) the WebSocket and owns the stream from now on.
  virtual void accept(TlsStream stream, UpgradeRequest request, std::string remote) = 0;
};

}  // namespace shepherd::net
