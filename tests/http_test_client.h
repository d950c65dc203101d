// A blocking HTTP/1.1 client for tests and the load benchmark (Boost.Beast):
// one connection per call, or a kept-alive connection.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
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

inline Reply HttpCall(std::uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body = "", const std::string& token = "") {
  HttpConnection c(port);
  return c.Call(method, target, body, token);
}

}  // namespace residency::testing
