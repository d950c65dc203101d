#include "harness/agent/http_server.h"

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace residency::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const ServerOptions& options, const HttpServer::Handler& handler,
          std::atomic<int>& open)
      : stream_(std::move(socket)), options_(options), handler_(handler), open_(open) {
    ++open_;
  }
  ~Session() { --open_; }

  void Start() {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(options_.timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    start_ = std::chrono::steady_clock::now();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec) {
      HttpResponse r;
      r.route = "invalid";
      if (ec == http::error::body_limit) {
        r.status = 413;
        r.body = R"({"error":"request body over the limit of )" + std::to_string(options_.body_limit) + R"( bytes"})";
      } else if (ec == http::error::header_limit) {
        r.status = 431;
        r.body = R"({"error":"request headers over 16 KiB"})";
      } else if (ec.category() == beast::error_code(http::error::bad_target).category()) {
        r.status = 400;
        r.body = R"({"error":"malformed HTTP request"})";
      } else {
        return Close();  // a socket error: nobody to answer
      }
      return Write(std::move(r), /*keep_alive=*/false, 11);
    }
    http::request<http::string_body> req = parser_->release();
    HttpRequest in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.authorization = std::string(req[http::field::authorization]);
    in.body = std::move(req.body());
    HttpResponse out;
    try {
      out = handler_(in);
    } catch (const std::exception& e) {  // a handler bug must not kill the agent
      out = HttpResponse{500, "application/json", R"({"error":"internal error"})", "error", ""};
    }
    Write(std::move(out), req.keep_alive(), req.version());
  }

  void Write(HttpResponse r, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version);
    res->set(http::field::server, "residency");
    res->set(http::field::content_type, r.content_type);
    if (!r.www_authenticate.empty()) res->set(http::field::www_authenticate, r.www_authenticate);
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    route_ = std::move(r.route);
    status_ = r.status;
    stream_.expires_after(options_.timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) { self->OnWrite(ec, res->keep_alive()); });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    if (options_.observe)
      options_.observe(route_, status_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    if (ec) return Close();
    if (!keep_alive) return Linger();
    Read();
  }

  // Lingering close: stop sending, then read and discard what the client is
  // still sending (the rest of a refused body) for up to a second. Closing
  // with unread data would reset the connection, and the client would lose
  // the 4xx it was just sent.
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(1));
    DiscardSome();
  }
  void DiscardSome() {
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->stream_.close();
      self->DiscardSome();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const ServerOptions& options_;
  const HttpServer::Handler& handler_;
  std::atomic<int>& open_;
  std::chrono::steady_clock::time_point start_;
  std::string route_;
  int status_ = 0;
  std::array<char, 16384> discard_{};
};

}  // namespace

struct HttpServer::Impl {
  // Declared so that the io_context (and the sessions it still holds) is
  // destroyed before what the sessions point at.
  ServerOptions options;
  Handler handler;
  std::atomic<int> open{0};
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  bool stopped = false;

  void Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        if (open.load() >= options.max_connections) {
          beast::error_code ignored;
          socket.close(ignored);  // over the cap: refuse rather than queue
        } else {
          std::make_shared<Session>(std::move(socket), options, handler, open)->Start();
        }
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options, Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
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

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->ioc, [p = impl_.get()] {
    beast::error_code ignored;
    p->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
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
