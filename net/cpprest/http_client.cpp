// cpprestsdk-backed net::HttpClient. The only place (with its siblings in net/cpprest/) where
// cpprestsdk, pplx and boost::asio types appear.
//
// Why it looks the way it does:
// - One web::http::client::http_client per scheme://authority, created lazily and kept (up to
//   kMaxCachedHosts of them): cpprestsdk pools keep-alive connections per http_client, so
//   reusing it is what gives connection reuse.
// - Per-request deadlines are enforced here (timed wait + pplx cancellation, which makes the
//   asio client close the socket) rather than through http_client_config::set_timeout: that
//   timeout is fixed per http_client and is an inactivity timer, which would either kill long
//   watch streams or not bound ordinary requests. The config timeout is only a generous
//   safety net against a silent peer.
// - TLS is configured in the ssl_context_callback from memory: when a CA is given it replaces
//   the system trust store (client-go trusts only the kubeconfig CA), TLS 1.2 is the minimum,
//   and the client certificate/key come from PEM buffers. cpprestsdk itself verifies the peer
//   name (RFC 2818, IP SANs included) against the "cn host", which is the Host header when one
//   is set, else the URL host; server_name therefore goes into the Host header, which also
//   drives SNI.
// - Proxies are never used (cpprestsdk on Linux only uses an explicitly configured proxy), and
//   redirects are not followed: cpprestsdk would send the same headers (the bearer token) to
//   wherever a Location points, and read that answer with no size limit.
// - Response bodies are capped while they arrive (HttpRequest::max_body_bytes): Send gives
//   cpprestsdk a response stream of its own (CappedBodySink), which refuses the chunk that
//   would pass the cap and closes the connection; cpprestsdk stops reading at a failed write.
//   A Content-Length over the cap fails as soon as the headers are in. cpprestsdk hands over a
//   chunked body one chunk at a time, so a single chunk is read whole before the cap sees it;
//   the request's deadline bounds that one.

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl.hpp>
#include <cpprest/http_client.h>
#include <cpprest/producerconsumerstream.h>

#include "net/http.h"

namespace kpc::net {
namespace {

namespace http = web::http;
namespace client = web::http::client;

// Longest line a LineStream accepts (a watch event is one line; the API server caps objects at
// ~1.5 MiB in etcd, so 16 MiB is generous and still bounds memory on garbage input).
constexpr size_t kMaxLineBytes = 16u << 20;
// Hosts whose http_client (and keep-alive pool, whose idle connections cpprestsdk closes
// within a minute) is kept: more than the kubelets of a 5,000-node cluster.
constexpr size_t kMaxCachedHosts = 8192;
// Piece size when reading an error answer's body from a stream.
constexpr size_t kReadChunkBytes = 64u << 10;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Waits for a pplx task with a deadline without blocking a pplx worker thread.
template <typename T>
class TimedWaiter {
 public:
  explicit TimedWaiter(pplx::task<T> task) : state_(std::make_shared<State>()) {
    auto state = state_;
    task.then([state](pplx::task<T> t) {
      std::exception_ptr err;
      std::optional<T> value;
      try {
        value.emplace(t.get());
      } catch (...) {
        err = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(state->mu);
      state->done = true;
      state->value = std::move(value);
      state->error = err;
      state->cv.notify_all();
    });
  }
  // True when the task finished within `timeout`.
  bool Wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(state_->mu);
    return state_->cv.wait_for(lock, timeout, [&] { return state_->done; });
  }
  // After a cancellation: the socket is closed at once, but a DNS lookup in flight is not
  // interrupted, so wait a little for the task to settle and then abandon it (the shared
  // state keeps whatever it still touches alive).
  void Settle() { Wait(std::chrono::seconds(2)); }
  // REQUIRES: Wait returned true. Rethrows the task's exception.
  T Get() {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->error) std::rethrow_exception(state_->error);
    return std::move(*state_->value);
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::optional<T> value;
    std::exception_ptr error;
  };
  std::shared_ptr<State> state_;
};

// "4 MiB", "1 KiB", "1000 bytes", for messages about limits.
std::string ByteSize(size_t bytes) {
  constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

// A write-only response stream that keeps at most `cap` bytes. The write that would pass the
// cap fails and cancels the request (which closes its connection, so that it does not go back
// to the pool with unread data); the reason is kept for Send's message. cpprestsdk writes from
// its I/O threads; Send reads the result after the request completed.
class CappedBodySink final
    : public concurrency::streams::details::streambuf_state_manager<uint8_t> {
 public:
  CappedBodySink(size_t cap, std::shared_ptr<pplx::cancellation_token_source> cts)
      : streambuf_state_manager<uint8_t>(std::ios_base::out), cap_(cap), cts_(std::move(cts)) {}

  // Refuses a body whose declared length passes the cap, before any of it is read.
  bool RefuseDeclared(uint64_t declared) {
    if (declared <= cap_) return false;
    Refuse("response body of " + std::to_string(declared) +
           " bytes (Content-Length) is larger than " + ByteSize(cap_));
    return true;
  }
  // Why the body was refused; empty when it was not.
  std::string Refusal() const {
    std::lock_guard<std::mutex> lock(mu_);
    return refusal_;
  }
  std::string Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(data_);
  }

  bool can_seek() const override { return false; }
  bool has_size() const override { return false; }
  size_t buffer_size(std::ios_base::openmode) const override { return 0; }
  void set_buffer_size(size_t, std::ios_base::openmode) override {}
  size_t in_avail() const override { return 0; }
  pos_type getpos(std::ios_base::openmode) const override {
    return static_cast<pos_type>(traits::eof());
  }
  pos_type seekpos(pos_type, std::ios_base::openmode) override {
    return static_cast<pos_type>(traits::eof());
  }
  pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override {
    return static_cast<pos_type>(traits::eof());
  }
  bool acquire(uint8_t*& ptr, size_t& count) override {
    ptr = nullptr;
    count = 0;
    return false;
  }
  void release(uint8_t*, size_t) override {}

 protected:
  pplx::task<int_type> _putc(uint8_t ch) override {
    return Append(&ch, 1).then([ch](size_t) { return static_cast<int_type>(ch); });
  }
  pplx::task<size_t> _putn(const uint8_t* ptr, size_t count) override { return Append(ptr, count); }
  pplx::task<int_type> _bumpc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  int_type _sbumpc() override { return traits::eof(); }
  pplx::task<int_type> _getc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  int_type _sgetc() override { return traits::eof(); }
  pplx::task<int_type> _nextc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  pplx::task<int_type> _ungetc() override {
    return pplx::task_from_result<int_type>(traits::eof());
  }
  pplx::task<size_t> _getn(uint8_t*, size_t) override { return pplx::task_from_result<size_t>(0); }
  size_t _scopy(uint8_t*, size_t) override { return 0; }
  pplx::task<bool> _sync() override { return pplx::task_from_result(true); }
  uint8_t* _alloc(size_t) override { return nullptr; }  // callers fall back to putn
  void _commit(size_t) override {}

 private:
  pplx::task<size_t> Append(const uint8_t* ptr, size_t count) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (refusal_.empty() && count <= cap_ - data_.size()) {
        data_.append(reinterpret_cast<const char*>(ptr), count);
        return pplx::task_from_result(count);
      }
    }
    Refuse("response body larger than " + ByteSize(cap_));
    return pplx::task_from_exception<size_t>(std::length_error(Refusal()));
  }
  void Refuse(std::string why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (refusal_.empty()) refusal_ = std::move(why);
      data_.clear();
      data_.shrink_to_fit();
    }
    cts_->cancel();  // closes the connection now, while the request still owns it
  }

  const size_t cap_;
  const std::shared_ptr<pplx::cancellation_token_source> cts_;
  mutable std::mutex mu_;
  std::string data_;
  std::string refusal_;
};

std::string DescribeException(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown error";
  }
}

std::map<std::string, std::string> ResponseHeaders(const http::http_response& resp) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : resp.headers()) out[Lower(name)] = value;
  return out;
}

// Splits "https://host:port/path?query" into the base ("https://host:port") and the rest.
Status SplitUrl(const std::string& url, std::string* base, std::string* rest) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return InvalidArgument("URL without scheme: " + url);
  std::string scheme = Lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return InvalidArgument("unsupported URL scheme: " + url);
  auto path_start = url.find_first_of("/?", scheme_end + 3);
  if (path_start == std::string::npos) {
    *base = url;
    *rest = "/";
  } else {
    *base = url.substr(0, path_start);
    *rest = url.substr(path_start);
    if (!rest->empty() && (*rest)[0] == '?') *rest = "/" + *rest;
  }
  if (base->size() <= scheme_end + 3) return InvalidArgument("URL without host: " + url);
  return Status::Ok();
}

// Loads every certificate of a PEM bundle into a fresh trust store.
bool LoadTrustStore(SSL_CTX* ctx, const std::string& pem, std::string* err) {
  X509_STORE* store = X509_STORE_new();
  if (!store) return false;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends with a "no start line" error
  if (added == 0) {
    X509_STORE_free(store);
    *err = "no certificate found in the CA data";
    return false;
  }
  SSL_CTX_set_cert_store(ctx, store);  // takes ownership
  return true;
}

class CpprestLineStream final : public LineStream {
 public:
  CpprestLineStream(const Clock& clock, http::http_response response,
                    std::shared_ptr<pplx::cancellation_token_source> cts)
      : clock_(clock), response_(std::move(response)), cts_(std::move(cts)), state_(std::make_shared<ReadState>()) {
    body_ = response_.body().streambuf();
  }
  ~CpprestLineStream() override { Cancel(); }

  StatusOr<std::optional<std::string>> ReadLine(std::chrono::milliseconds idle_timeout) override {
    const auto deadline = clock_.Now() + idle_timeout;
    for (;;) {
      if (cancelled_.load()) return Status(StatusCode::kUnavailable, "stream cancelled");
      auto nl = pending_.find('\n', scan_from_);
      if (nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        scan_from_ = 0;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return std::optional<std::string>(std::move(line));
      }
      scan_from_ = pending_.size();
      if (pending_.size() > kMaxLineBytes) {
        Cancel();
        return Status(StatusCode::kInvalidArgument, "stream line longer than 16 MiB");
      }
      if (eof_) {
        if (pending_.empty()) return std::optional<std::string>();
        std::string line = std::move(pending_);  // last line without a newline
        pending_.clear();
        scan_from_ = 0;
        return std::optional<std::string>(std::move(line));
      }
      // Wait for at least one byte (getn waits for the full count, so ask for one), then take
      // whatever else is already buffered.
      if (!read_in_flight_) StartRead();
      std::unique_lock<std::mutex> lock(state_->mu);
      const auto left = std::max<std::chrono::steady_clock::duration>(deadline - clock_.Now(), {});
      if (!state_->cv.wait_for(lock, left, [&] { return state_->done || cancelled_.load(); })) {
        // The read stays in flight: a later ReadLine picks it up (timeouts are not fatal).
        return Status(StatusCode::kDeadlineExceeded, "no data on the stream within the idle timeout");
      }
      if (cancelled_.load()) return Status(StatusCode::kUnavailable, "stream cancelled");
      read_in_flight_ = false;
      state_->done = false;
      if (state_->error) {
        std::string msg = DescribeException(state_->error);
        state_->error = nullptr;
        lock.unlock();
        Cancel();
        return Status(StatusCode::kUnavailable, "stream read failed: " + msg);
      }
      if (state_->count == 0) {
        eof_ = true;
        continue;
      }
      pending_.push_back(static_cast<char>(state_->byte));
      lock.unlock();
      DrainAvailable();
    }
  }

  void Cancel() override {
    bool was = cancelled_.exchange(true);
    if (!was) {
      cts_->cancel();  // closes the socket; a pending read completes with an error
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->cv.notify_all();
    }
  }

 private:
  struct ReadState {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    size_t count = 0;
    uint8_t byte = 0;
    std::exception_ptr error;
  };

  void StartRead() {
    read_in_flight_ = true;
    auto state = state_;
    auto buf = std::make_shared<uint8_t>(0);
    pplx::task<size_t> task;
    try {
      task = body_.getn(buf.get(), 1);
    } catch (...) {
      std::lock_guard<std::mutex> lock(state->mu);
      state->done = true;
      state->error = std::current_exception();
      return;
    }
    task.then([state, buf](pplx::task<size_t> t) {
      std::lock_guard<std::mutex> lock(state->mu);
      try {
        state->count = t.get();
        state->byte = *buf;
      } catch (...) {
        state->error = std::current_exception();
      }
      state->done = true;
      state->cv.notify_all();
    });
  }

  void DrainAvailable() {
    try {
      for (;;) {
        auto avail = body_.in_avail();
        if (avail == 0) return;
        size_t want = std::min<size_t>(avail, 64 * 1024);
        size_t old = pending_.size();
        pending_.resize(old + want);
        // `want` bytes are already buffered, so this completes at once.
        size_t got = body_.getn(reinterpret_cast<uint8_t*>(&pending_[old]), want).get();
        pending_.resize(old + got);
        if (got == 0 || pending_.size() > kMaxLineBytes + 64 * 1024) return;
      }
    } catch (...) {
      // The next read reports the failure.
    }
  }

  const Clock& clock_;
  http::http_response response_;
  std::shared_ptr<pplx::cancellation_token_source> cts_;
  concurrency::streams::streambuf<uint8_t> body_;
  std::shared_ptr<ReadState> state_;
  std::atomic<bool> cancelled_{false};
  bool read_in_flight_ = false;
  bool eof_ = false;
  std::string pending_;
  size_t scan_from_ = 0;
};

class CpprestHttpClient final : public HttpClient {
 public:
  CpprestHttpClient(const Clock& clock, const TlsConfig& tls) : clock_(clock), tls_(tls) {}

  StatusOr<HttpResponse> Send(const HttpRequest& req) override {
    auto prepared = Prepare(req);
    if (!prepared.ok()) return prepared.status();
    auto& [client, request] = *prepared;
    auto cts = std::make_shared<pplx::cancellation_token_source>();
    auto sink = std::make_shared<CappedBodySink>(req.max_body_bytes, cts);
    // Headers and body as one task, so one deadline covers the whole exchange.
    pplx::task<HttpResponse> task;
    try {
      request.set_response_stream(concurrency::streams::streambuf<uint8_t>(sink).create_ostream());
      task = client->request(request, cts->get_token()).then([sink](http::http_response resp) {
        utility::size64_t declared = 0;
        if (resp.headers().match(http::header_names::content_length, declared) &&
            sink->RefuseDeclared(declared)) {
          throw std::length_error(sink->Refusal());
        }
        return resp.content_ready().then([sink](http::http_response done) {
          HttpResponse out;
          out.status = done.status_code();
          out.headers = ResponseHeaders(done);
          out.body = sink->Take();
          return out;
        });
      });
    } catch (...) {
      return Unavailable(req.method + " " + req.url + ": " + DescribeException(std::current_exception()));
    }
    TimedWaiter<HttpResponse> waiter(task);
    if (!waiter.Wait(req.timeout)) {
      cts->cancel();
      waiter.Settle();
      if (auto why = sink->Refusal(); !why.empty())
        return ResourceExhausted(req.method + " " + req.url + ": " + why);
      return Status(StatusCode::kDeadlineExceeded,
                    req.method + " " + req.url + ": no response within " +
                        std::to_string(req.timeout.count()) + " ms");
    }
    try {
      return waiter.Get();
    } catch (...) {
      // A refused body surfaces as the cancellation it caused; say what happened instead.
      if (auto why = sink->Refusal(); !why.empty())
        return ResourceExhausted(req.method + " " + req.url + ": " + why);
      return Unavailable(req.method + " " + req.url + ": " + DescribeException(std::current_exception()));
    }
  }

  StatusOr<StreamResult> Stream(const HttpRequest& req) override {
    auto prepared = Prepare(req);
    if (!prepared.ok()) return prepared.status();
    auto& [client, request] = *prepared;
    auto cts = std::make_shared<pplx::cancellation_token_source>();
    pplx::task<http::http_response> task;
    try {
      task = client->request(request, cts->get_token());
    } catch (...) {
      return Unavailable(req.method + " " + req.url + ": " + DescribeException(std::current_exception()));
    }
    TimedWaiter<http::http_response> waiter(task);
    if (!waiter.Wait(req.timeout)) {
      cts->cancel();
      waiter.Settle();
      return Status(StatusCode::kDeadlineExceeded, req.method + " " + req.url + ": no response headers in time");
    }
    http::http_response resp;
    try {
      resp = waiter.Get();
    } catch (...) {
      return Unavailable(req.method + " " + req.url + ": " + DescribeException(std::current_exception()));
    }
    StreamResult out;
    out.status = resp.status_code();
    if (out.status < 200 || out.status > 299) {
      HttpResponse err;
      err.status = out.status;
      err.headers = ResponseHeaders(resp);
      err.body = ReadErrorBody(resp, *cts, req);
      out.error_response = std::move(err);
      return out;
    }
    out.stream = std::make_unique<CpprestLineStream>(clock_, std::move(resp), cts);
    return out;
  }

 private:
  using Prepared = std::pair<std::shared_ptr<client::http_client>, http::http_request>;

  // An error answer's body, for its message: at most max_body_bytes of it (the rest is not
  // read: the connection is closed), within the request's timeout.
  std::string ReadErrorBody(http::http_response& resp, pplx::cancellation_token_source& cts,
                            const HttpRequest& req) {
    const auto deadline = clock_.Now() + req.timeout;
    auto body = resp.body().streambuf();
    std::string out;
    std::vector<uint8_t> chunk(kReadChunkBytes);
    while (out.size() < req.max_body_bytes) {
      const size_t want = std::min(chunk.size(), req.max_body_bytes - out.size());
      pplx::task<size_t> task;
      try {
        task = body.getn(chunk.data(), want);
      } catch (...) {
        return out;
      }
      TimedWaiter<size_t> read(task);
      const auto left = std::max<std::chrono::steady_clock::duration>(deadline - clock_.Now(), {});
      if (!read.Wait(std::chrono::duration_cast<std::chrono::milliseconds>(left))) {
        cts.cancel();
        read.Settle();
        return out;
      }
      size_t got = 0;
      try {
        got = read.Get();
      } catch (...) {
        return out;  // keep what arrived
      }
      if (got == 0) return out;
      out.append(reinterpret_cast<const char*>(chunk.data()), got);
    }
    cts.cancel();  // more than we keep: stop the transfer
    return out;
  }

  StatusOr<Prepared> Prepare(const HttpRequest& req) {
    std::string base, rest;
    if (auto s = SplitUrl(req.url, &base, &rest); !s.ok()) return s;
    try {
      auto client = ClientFor(base);
      http::http_request request(req.method);
      request.set_request_uri(rest);
      if (!req.body.empty()) {
        request.set_body(std::vector<unsigned char>(req.body.begin(), req.body.end()));
        request.headers().remove(http::header_names::content_type);
      }
      for (const auto& [name, value] : req.headers) request.headers()[name] = value;
      if (!tls_.server_name.empty() && !request.headers().has(http::header_names::host)) {
        request.headers()[http::header_names::host] = tls_.server_name;
      }
      return Prepared{std::move(client), std::move(request)};
    } catch (...) {
      return InvalidArgument(req.url + ": " + DescribeException(std::current_exception()));
    }
  }

  std::shared_ptr<client::http_client> ClientFor(const std::string& base) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(base);
    if (it != clients_.end()) return it->second;
    // One entry per host ever called: bounded, because hosts can come from outside (a Node's
    // address). Past the cap the cache starts over; requests in flight keep their client.
    if (clients_.size() >= kMaxCachedHosts) clients_.clear();
    client::http_client_config cfg;
    cfg.set_proxy(web::web_proxy(web::web_proxy::disabled));
    cfg.set_max_redirects(0);
    cfg.set_timeout(std::chrono::hours(1));  // safety net only; see the file comment
    cfg.set_validate_certificates(!tls_.insecure_skip_verify);
    TlsConfig tls = tls_;
    cfg.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) {
      SSL_CTX* native = ctx.native_handle();
      SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
      std::string err;
      if (!tls.ca_pem.empty() && !LoadTrustStore(native, tls.ca_pem, &err)) {
        spdlog::error("http client: bad CA data: {}", err);
        // An empty store fails every verification, which is the safe outcome.
        SSL_CTX_set_cert_store(native, X509_STORE_new());
      }
      if (!tls.client_cert_pem.empty()) {
        // error_code overloads: this runs inside cpprestsdk, where a throw would escape oddly.
        boost::system::error_code ec;
        ctx.use_certificate_chain(boost::asio::buffer(tls.client_cert_pem.data(), tls.client_cert_pem.size()), ec);
        if (!ec) {
          ctx.use_private_key(boost::asio::buffer(tls.client_key_pem.data(), tls.client_key_pem.size()),
                              boost::asio::ssl::context::pem, ec);
        }
        if (ec) spdlog::error("http client: bad client certificate or key: {}", ec.message());
      }
    });
    auto created = std::make_shared<client::http_client>(base, cfg);
    clients_.emplace(base, created);
    return created;
  }

  const Clock& clock_;
  TlsConfig tls_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<client::http_client>> clients_;
};

}  // namespace

std::unique_ptr<HttpClient> NewHttpClient(const Clock& clock, const TlsConfig& tls) {
  return std::make_unique<CpprestHttpClient>(clock, tls);
}

}  // namespace kpc::net
