// A small HTTP/1.1 server on Boost.Beast: keep-alive, a body limit (413),
// a header limit (431), a timeout on every read and write (a slow client is
// disconnected, never waited for), a cap on open connections. Requests are
// handed to one synchronous handler on the server's I/O threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtime/engine/status.h"

namespace residency::agent {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string authorization;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string route = "unknown";  // a bounded label for metrics: "/v1/runs/{id}"
  std::string www_authenticate;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9464;  // 0: an ephemeral port
  std::size_t body_limit = 64u << 20;
  std::chrono::milliseconds timeout{10000};
  int threads = 2;
  int max_connections = 512;
  // Every response written, including the server's own 400/413/431.
  std::function<void(const std::string& route, int status, double seconds)> observe;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options, Handler handler);
  ~HttpServer();
  std::uint16_t port() const;
  // Stops accepting, closes every connection and joins the I/O threads.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "127.0.0.1:9464", "[::1]:0", "localhost:80" -> address and port.
Status ParseListen(const std::string& text, std::string* address, std::uint16_t* port);

}  // namespace residency::agent
