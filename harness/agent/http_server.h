// A small HTTP/1.1 server on Boost.Beast that does not trust its clients:
// keep-alive; each request's header is read and judged before its body
// (check_header may answer at once: a wrong token, a closed route); a body
// limit (413) and a budget for all bodies in flight (503); a header limit
// (431); a deadline for the header, one for the body that grows with its
// length, and one for each response (a slow client is disconnected, never
// waited for); connection caps per client address and in all, with a reserve
// in which /healthz and /metrics are still served. The reserve paths run on
// the I/O threads; every other request runs on a bounded pool of threads, so
// a slow handler never stalls health checks. See docs/HARNESS.md, "Agent
// limits".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/base/status.h"

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
  int retry_after_s = 0;  // > 0: a Retry-After header
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9464;  // 0: an ephemeral port
  std::size_t body_limit = 64u << 20;
  // The deadline for a request's header (from the moment the server starts
  // waiting for it, so it bounds keep-alive idling too) and for writing a
  // response; the least time a body is given.
  std::chrono::milliseconds timeout{10000};
  // A body of N bytes gets max(timeout, N / body_min_rate seconds).
  std::uint64_t body_min_rate = 1u << 20;
  // All bodies being received or handled hold at most this many bytes
  // (raised to body_limit if lower); more gets 503 with Retry-After.
  std::uint64_t body_memory = 128u << 20;
  int threads = 2;  // I/O threads
  // Full-service connections in all, per client address, and the reserve
  // beyond them that may only ask for reserve_paths (ConnectionTable).
  int max_connections = 512;
  int max_connections_per_client = 32;
  int reserve_connections = 512;
  std::vector<std::string> reserve_paths = {"/healthz", "/metrics"};
  // Threads and backlog (queued + running) for requests not on reserve_paths.
  int request_threads = 2;
  std::size_t request_queue = 64;
  // Called with each request's header (body empty) before the body is read;
  // a response here is sent at once and the body is never read.
  std::function<std::optional<HttpResponse>(const HttpRequest& head)> check_header;
  // Every response written, including the server's own 400/413/431/503.
  std::function<void(const std::string& route, int status, double seconds)> observe;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options, Handler handler);
  ~HttpServer();
  std::uint16_t port() const;
  // Open connections and those closed to make room (ConnectionTable).
  std::size_t open_connections() const;
  std::size_t evicted_connections() const;
  // Stops accepting, closes every connection, waits for the handlers running
  // and joins the I/O threads.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "127.0.0.1:9464", "[::1]:0", "localhost:80" -> address and port.
Status ParseListen(const std::string& text, std::string* address, std::uint16_t* port);

}  // namespace residency::agent
