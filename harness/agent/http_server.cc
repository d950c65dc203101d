#include "harness/agent/http_server.h"

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <thread>
#include <vector>

#include "harness/agent/byte_budget.h"
#include "harness/agent/connection_table.h"
#include "harness/agent/http_session.h"
#include "harness/agent/work_pool.h"

namespace residency::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

// The client's address, IPv4-mapped IPv6 written as IPv4 (one client, one key).
std::string ClientAddress(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "?";
  asio::ip::address a = peer.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

std::size_t Positive(int n) { return static_cast<std::size_t>(std::max(0, n)); }

}  // namespace

struct HttpServer::Impl {
  // Declared so that what the sessions point at (options, handler, the
  // connection table, the byte budget) outlives the io_context and the pool
  // that hold them.
  ServerOptions options;
  Handler handler;
  ConnectionTable connections;
  ByteBudget bodies;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_pause{ioc};
  WorkPool pool;
  ServerShared shared{options, handler, connections, bodies, pool};
  std::vector<std::thread> threads;
  bool stopped = false;

  Impl(const ServerOptions& o, Handler h)
      : options(o),
        handler(std::move(h)),
        connections(ConnectionLimits{Positive(o.max_connections), Positive(o.max_connections_per_client),
                                     Positive(o.reserve_connections)}),
        bodies(std::max<std::uint64_t>(o.body_memory, o.body_limit)),
        pool(o.request_threads, o.request_queue) {}

  void Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory) {
        // Out of file descriptors: pause rather than spin on the error.
        accept_pause.expires_after(std::chrono::milliseconds(50));
        accept_pause.async_wait([this](beast::error_code e) {
          if (!e) Accept();
        });
        return;
      }
      if (!ec) {
        const ConnectionTable::Entry entry = connections.Open(ClientAddress(socket));
        if (entry.service == Service::kRefused) {
          beast::error_code ignored;
          socket.close(ignored);  // every slot busy with a request: refuse rather than queue
        } else {
          StartSession(std::move(socket), shared, entry);
        }
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options, Handler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) return InvalidArgument("--listen: '" + options.address + "' is not an IP address: " + ec.message());
  const tcp::endpoint endpoint(address, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return FailedPrecondition("cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " +
                              ec.message());
  }
  impl->Accept();
  for (int i = 0; i < std::max(1, options.threads); ++i) impl->threads.emplace_back([p = impl.get()] { p->ioc.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }
std::size_t HttpServer::open_connections() const { return impl_->connections.open(); }
std::size_t HttpServer::evicted_connections() const { return impl_->connections.evicted(); }

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
  // No I/O thread runs now: close the listener here, so that nobody connects
  // to a server that will never answer, then let running handlers finish
  // (their answers go nowhere) and drop the queued ones.
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->pool.Stop();
}

Status ParseListen(const std::string& text, std::string* address, std::uint16_t* port) {
  const auto colon = text.rfind(':');
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("--listen '" + text + "': " + why + " (expected HOST:PORT, e.g. 127.0.0.1:9464)");
  };
  if (colon == std::string::npos) return bad("no port");
  std::string host = text.substr(0, colon);
  const std::string p = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty()) return bad("no host");
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return bad("bad port");
  const int n = std::stoi(p);
  if (n > 65535) return bad("port over 65535");
  *address = host;
  *port = static_cast<std::uint16_t>(n);
  return Status::Ok();
}

}  // namespace residency::agent
