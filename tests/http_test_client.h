// A blocking HTTP/1.1 client for tests and the load benchmark (Boost.Beast):
// one connection per call, or a kept-alive connection. And a raw TCP
// connection for hostile tests: it sends exactly the bytes it is given, from
// any loopback address, and reads with a deadline.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string_view>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace residency::testing {

struct Reply {
  int status = 0;  // 0: the connection failed or was closed
  std::string body;
  std::string error;
};

class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port) : stream_(ioc_) {
    boost::beast::error_code ec;
    stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
    ok_ = !ec;
  }
  bool ok() const { return ok_; }

  Reply Call(const std::string& method, const std::string& target, const std::string& body = "",
             const std::string& token = "") {
    namespace http = boost::beast::http;
    Reply reply;
    if (!ok_) {
      reply.error = "not connected";
      return reply;
    }
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    boost::beast::error_code ec;
    http::write(stream_, req, ec);
    // A server may answer (413) and stop reading before the body is sent:
    // read the answer even when the write failed.
    if (ec) reply.error = ec.message();
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 30);
    http::read(stream_, buffer_, parser, ec);
    if (ec) {
      ok_ = false;
      reply.error = ec.message();
      return reply;
    }
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = parser.get().body();
    if (!parser.get().keep_alive()) ok_ = false;
    return reply;
  }

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool ok_ = false;
};

class RawConnection {
 public:
  // `from`: the local address to connect from (127.0.0.2 is another client).
  explicit RawConnection(std::uint16_t port, const char* from = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &local.sin_addr);
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0 &&
          ::connect(fd_, reinterpret_cast<sockaddr*>(&peer), sizeof peer) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool ok() const { return ok_; }
  // False once the peer is gone (no SIGPIPE).
  bool Send(std::string_view bytes) {
    while (ok_ && !bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok_;
  }
  // Reads until the peer closes, `until` has arrived, or `seconds` pass.
  std::string Read(double seconds, const std::string& until = "") {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (ok_ && !closed_) {
      if (!until.empty() && got.find(until) != std::string::npos) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  // The peer closed the connection (seen by Read).
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  bool closed_ = false;
};

// The status code of a raw HTTP response ("HTTP/1.1 503 ..."); 0 if none.
inline int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

inline Reply HttpCall(std::uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body = "", const std::string& token = "") {
  HttpConnection c(port);
  return c.Call(method, target, body, token);
}

}  // namespace residency::testing
