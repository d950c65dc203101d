#include "harness/agent/http_session.h"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <optional>

namespace residency::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kDiscardChunk = 16 * 1024;
constexpr auto kLinger = std::chrono::seconds(1);

bool IsDisconnect(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::bad_descriptor;
}
bool IsHttpError(const beast::error_code& ec) {
  return ec.category() == beast::error_code(http::error::bad_target).category();
}

// The server's own answers; `message` is one of the fixed texts below.
HttpResponse Own(int status, const std::string& route, const std::string& message, int retry_after_s = 0) {
  HttpResponse r;
  r.status = status;
  r.route = route;
  r.body = R"({"error":")" + message + "\"}\n";
  r.retry_after_s = retry_after_s;
  return r;
}
HttpResponse TooLarge(std::size_t limit) {
  return Own(413, "invalid", "request body over the limit of " + std::to_string(limit) + " bytes");
}

HttpResponse Call(const ServerShared& shared, const HttpRequest& in) {
  try {
    return shared.handler(in);
  } catch (const std::exception&) {  // a handler bug must not kill the agent
    return Own(500, "error", "internal error");
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerShared& shared, ConnectionTable::Entry entry)
      : stream_(std::move(socket)), shared_(shared), options_(shared.options), entry_(entry) {}
  ~Session() { shared_.connections.Close(entry_.id); }

  void Start() {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::ReadHeader, shared_from_this()));
  }

 private:
  // ---- The header: read alone, under the header deadline. ----
  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());  // judged in OnHeader
    version_ = 11;
    stream_.expires_after(options_.timeout);
    waiting_ = true;
    shared_.connections.Idle(entry_.id, Evicter());
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  // Run by ConnectionTable (any thread) to make room for a newcomer.
  std::function<void()> Evicter() {
    return [weak = weak_from_this(), ex = stream_.get_executor()] {
      asio::post(ex, [weak] {
        if (auto self = weak.lock()) self->Evict();
      });
    };
  }
  void Evict() {
    if (waiting_) Close();  // else its header arrived meanwhile: let it be served
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    waiting_ = false;
    shared_.connections.Busy(entry_.id);
    start_ = std::chrono::steady_clock::now();
    if (IsDisconnect(ec)) return Close();
    if (ec) {
      if (ec == http::error::header_limit) return Write(Own(431, "invalid", "request headers over 16 KiB"), false);
      if (IsHttpError(ec)) return Write(Own(400, "invalid", "malformed HTTP request"), false);
      return Close();  // a socket error: nobody to answer
    }
    const auto& h = parser_->get();
    head_ = HttpRequest{};
    head_.method = std::string(h.method_string());
    head_.target = std::string(h.target());
    head_.authorization = std::string(h[http::field::authorization]);
    keep_alive_ = h.keep_alive();
    version_ = h.version();
    const bool chunked = parser_->chunked();
    const std::uint64_t length = parser_->content_length().value_or(0);
    const bool has_body = chunked || length > 0;
    const std::string path = head_.target.substr(0, head_.target.find('?'));
    reserve_path_ = std::find(options_.reserve_paths.begin(), options_.reserve_paths.end(), path) !=
                    options_.reserve_paths.end();
    // Answering before the body is read ends the connection: the unread
    // body would otherwise be parsed as the next request.
    const bool keep = keep_alive_ && !has_body;

    if (entry_.service != Service::kFull && (!reserve_path_ || has_body)) {
      return Write(Own(503, "limit", "too many connections from this address or in all; retry later", 1), false);
    }
    if (options_.check_header) {
      std::optional<HttpResponse> early;
      try {
        early = options_.check_header(head_);
      } catch (const std::exception&) {
        early = Own(500, "error", "internal error");
      }
      if (early) return Write(std::move(*early), keep);
    }
    if (!has_body) return Handle();
    if (!chunked && length > options_.body_limit) return Write(TooLarge(options_.body_limit), false);
    const std::uint64_t claim = chunked ? options_.body_limit : length;
    std::optional<ByteBudget::Claim> c = shared_.bodies.Take(claim);
    if (!c) {
      return Write(Own(503, "limit", "request bodies in flight fill this agent's memory budget; retry later", 1),
                   false);
    }
    claim_ = std::move(*c);
    const double rate = static_cast<double>(std::max<std::uint64_t>(options_.body_min_rate, 1));
    body_deadline_ = std::max<std::chrono::milliseconds>(
        options_.timeout, std::chrono::milliseconds(static_cast<long long>(static_cast<double>(claim) / rate * 1000)));
    if (beast::iequals(h[http::field::expect], "100-continue")) return Continue();
    ReadBody();
  }

  // "Expect: 100-continue": the client waits for this before sending the body.
  void Continue() {
    auto res = std::make_shared<http::response<http::empty_body>>(http::status::continue_, version_);
    stream_.expires_after(options_.timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      self->ReadBody();
    });
  }

  // ---- The body: under a deadline that grows with its length. ----
  void ReadBody() {
    parser_->body_limit(options_.body_limit);  // a chunked body is counted as it comes
    stream_.expires_after(body_deadline_);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (IsDisconnect(ec)) return Close();
    if (ec == http::error::body_limit) return Write(TooLarge(options_.body_limit), false);
    if (IsHttpError(ec)) return Write(Own(400, "invalid", "malformed HTTP request"), false);
    if (ec) return Close();
    Handle();
  }

  // ---- The handler: reserve paths here, the rest on the pool. ----
  void Handle() {
    http::request<http::string_body> req = parser_->release();
    HttpRequest in = std::move(head_);
    in.body = std::move(req.body());
    if (reserve_path_) {
      HttpResponse out = Call(shared_, in);
      in = HttpRequest{};
      claim_.Reset();
      return Write(std::move(out), keep_alive_);
    }
    struct Job {
      HttpRequest in;
      ByteBudget::Claim claim;
    };
    auto job = std::make_shared<Job>(Job{std::move(in), std::move(claim_)});
    const bool queued = shared_.pool.TrySubmit([self = shared_from_this(), ex = stream_.get_executor(), job] {
      HttpResponse out = Call(self->shared_, job->in);
      job->in = HttpRequest{};  // the body's memory goes back before its claim
      job->claim.Reset();
      asio::post(ex, [self, out = std::move(out)]() mutable { self->Write(std::move(out), self->keep_alive_); });
    });
    if (!queued) Write(Own(503, "limit", "the agent is busy; retry later", 1), keep_alive_);
  }

  // ---- The response, and what follows it. ----
  void Write(HttpResponse r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "residency");
    res->set(http::field::content_type, r.content_type);
    if (!r.www_authenticate.empty()) res->set(http::field::www_authenticate, r.www_authenticate);
    if (r.retry_after_s > 0) res->set(http::field::retry_after, std::to_string(r.retry_after_s));
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    route_ = std::move(r.route);
    status_ = r.status;
    stream_.expires_after(options_.timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->OnWrite(ec, res->keep_alive());
    });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    if (options_.observe)
      options_.observe(route_, status_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    claim_.Reset();
    if (ec) return Close();
    if (!keep_alive) return Linger();
    ReadHeader();
  }

  // Lingering close: stop sending, then read and discard what the client is
  // still sending (the rest of a refused body) for up to a second. Closing
  // with unread data would reset the connection, and the client would lose
  // the answer it was just sent.
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    if (!discard_) discard_ = std::make_unique<char[]>(kDiscardChunk);
    DiscardSome();
  }
  void DiscardSome() {
    stream_.async_read_some(asio::buffer(discard_.get(), kDiscardChunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
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
  ServerShared& shared_;
  const ServerOptions& options_;
  const ConnectionTable::Entry entry_;
  // Everything below is touched only on the connection's strand.
  bool waiting_ = false;  // for a request header (evictable)
  HttpRequest head_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  bool reserve_path_ = false;
  ByteBudget::Claim claim_;
  std::chrono::milliseconds body_deadline_{0};
  std::chrono::steady_clock::time_point start_;
  std::string route_;
  int status_ = 0;
  std::unique_ptr<char[]> discard_;
};

}  // namespace

void StartSession(tcp::socket socket, ServerShared& shared, ConnectionTable::Entry entry) {
  std::make_shared<Session>(std::move(socket), shared, entry)->Start();
}

}  // namespace residency::agent
