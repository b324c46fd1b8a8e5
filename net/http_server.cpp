// net::HttpServer on plain POSIX sockets + OpenSSL (no cpprestsdk).
//
// Why not cpprestsdk's http_listener: it cannot report the port it bound (tests and the
// controller need ":0"), picking a free port first races with other processes, it reports bind
// failures only asynchronously, and it offers no bound on request sizes or connection counts.
// The server needed here is small — /healthz, /readyz, /metrics and AdmissionReview POSTs — so
// a thread-per-connection HTTP/1.1 server with keep-alive, hard size limits and prompt Stop()
// is simpler to make robust than adapting the listener.
//
// Deadlines: sockets are non-blocking and every wait is a poll() bounded by the absolute
// deadline of what is being read or written (ServerOptions), so a peer trickling one byte at a
// time — in a header line, a body or the middle of a TLS record — is cut at the deadline, not
// kept alive by each byte as a per-read timeout would be. Parsing is net/http_parse.h.
//
// TLS hot reload: the SSL_CTX is swapped under a lock by UpdateTls(); SSL_new() takes its own
// reference on the context, so connections opened before a reload keep the old certificate
// until they close and new handshakes get the new one — no connection is dropped.

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <variant>

#include "net/http.h"
#include "net/http_parse.h"

namespace kpc::net {

const char* RefusalReasonName(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kTlsHandshake:
      return "tls_handshake";
    case RefusalReason::kHandshakeTimeout:
      return "handshake_timeout";
    case RefusalReason::kRequestTimeout:
      return "request_timeout";
    case RefusalReason::kConnectionLimit:
      return "connection_limit";
    case RefusalReason::kBodyBudget:
      return "body_budget";
    case RefusalReason::kBodyTooLarge:
      return "body_too_large";
    case RefusalReason::kBodyNotAllowed:
      return "body_not_allowed";
    case RefusalReason::kMethodNotAllowed:
      return "method_not_allowed";
    case RefusalReason::kHeaderTooLarge:
      return "header_too_large";
    case RefusalReason::kUriTooLong:
      return "uri_too_long";
    case RefusalReason::kMalformed:
      return "malformed";
    case RefusalReason::kTransferEncoding:
      return "transfer_encoding";
    case RefusalReason::kHttpVersion:
      return "http_version";
  }
  return "unknown";
}

std::function<void(RefusalReason)> RefusalCounter(Registry& metrics, const std::string& server) {
  CounterFamily& family = metrics.AddCounter(
      "kubeletpolicy_http_requests_refused_total",
      "Requests and connections an HTTP server refused before any handler ran, by server "
      "(webhook, health, metrics) and reason (request_timeout, body_budget, malformed, ...).",
      {"server", "reason"});
  // Every reason exported from the start, so that rate() sees the first refusal; children
  // are looked up once here, never on the refusing thread.
  auto counters = std::make_shared<std::map<RefusalReason, Counter*>>();
  for (RefusalReason r : kAllRefusalReasons)
    (*counters)[r] = &family.WithLabels({server, RefusalReasonName(r)});
  return [counters](RefusalReason r) { counters->at(r)->Inc(); };
}

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

constexpr int kMaxRequestsPerConnection = 1000;
constexpr size_t kReadChunkBytes = 16 * 1024;
// After a refusal sent before the body was read: how long and how much of what the client is
// still sending is discarded, so that closing does not reset the connection and destroy the
// answer in flight.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 64u << 20;
constexpr size_t kTrimAfterBodyBytes = 1u << 20;
// At the connection limit: how long a connection must have waited on its peer to be shut down
// for a new one, and how many such shutdowns may be in progress at once (the slots they free
// are taken before their threads end, so the limit can be passed by this many).
constexpr auto kMinWaitToEvict = std::chrono::seconds(1);
constexpr int kMaxEvicting = 16;

// TLS 1.2: ECDHE key exchange (forward secrecy) with AEAD ciphers only — no CBC (padding
// oracles), no RSA key exchange. The same suites Go offers by default, so the API server and
// Prometheus connect as before. TLS 1.3 suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kTlsGroups = "X25519:P-256:P-384";

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* ReasonPhrase(int code) {
  switch (code) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// How a read or write ended. kTooLong: a line went past the length asked for.
enum class Io { kOk, kEof, kTimeout, kError, kTooLong };

// One accepted connection, plain or TLS, on a non-blocking socket. Every call waits at most
// until the deadline it is given; Stop() shuts the socket down to wake a wait.
class Conn {
 public:
  Conn(int fd, const Clock& clock) : fd_(fd), clock_(clock) {}
  ~Conn() {
    if (ssl_) SSL_free(ssl_);  // the fd itself is closed by the server, under its lock
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Takes `ssl` and runs the server side of the handshake. On kError, error() says why.
  Io Handshake(SSL* ssl, TimePoint deadline) {
    ssl_ = ssl;
    SSL_set_fd(ssl_, fd_);
    for (;;) {
      const int r = SSL_accept(ssl_);
      if (r == 1) return Io::kOk;
      const int err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        error_ = OpenSslError();
        return Io::kError;
      }
      if (Io w = Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline); w != Io::kOk)
        return w;
    }
  }
  // Whether the peer sent no byte at all (a TCP probe, not a failed TLS client).
  bool PeerSentNothing() const { return ssl_ && BIO_number_read(SSL_get_rbio(ssl_)) == 0; }
  const std::string& error() const { return error_; }

  // Reads 1..n bytes into buf (*got); kEof when the peer closed.
  Io Read(char* buf, size_t n, size_t* got, TimePoint deadline) {
    const int want = static_cast<int>(std::min<size_t>(n, INT_MAX));
    for (;;) {
      if (ssl_) {
        const int r = SSL_read(ssl_, buf, want);
        if (r > 0) {
          *got = static_cast<size_t>(r);
          return Io::kOk;
        }
        if (Io w = WaitForSsl(r, deadline); w != Io::kOk) return w;
        continue;
      }
      const ssize_t r = ::recv(fd_, buf, n, 0);
      if (r > 0) {
        *got = static_cast<size_t>(r);
        return Io::kOk;
      }
      if (r == 0) return Io::kEof;
      if (Io w = WaitForSocket(POLLIN, deadline); w != Io::kOk) return w;
    }
  }

  Io WriteAll(std::string_view data, TimePoint deadline) {
    size_t off = 0;
    while (off < data.size()) {
      // A retried SSL_write must repeat the same arguments: off only moves on success.
      const size_t n = std::min<size_t>(data.size() - off, 1 << 20);
      if (ssl_) {
        const int r = SSL_write(ssl_, data.data() + off, static_cast<int>(n));
        if (r > 0) {
          off += static_cast<size_t>(r);
          continue;
        }
        if (Io w = WaitForSsl(r, deadline); w != Io::kOk) return w;
        continue;
      }
      const ssize_t r = ::send(fd_, data.data() + off, n, MSG_NOSIGNAL);
      if (r > 0) {
        off += static_cast<size_t>(r);
        continue;
      }
      if (Io w = WaitForSocket(POLLOUT, deadline); w != Io::kOk) return w;
    }
    return Io::kOk;
  }

 private:
  // After a failed recv/send: waits when the socket would block, else reports the failure.
  Io WaitForSocket(short events, TimePoint deadline) {
    if (errno == EINTR) return Io::kOk;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Io::kError;
    return Wait(events, deadline);
  }
  // After a non-positive SSL_read/SSL_write: waits for what OpenSSL needs, or reports the end.
  Io WaitForSsl(int r, TimePoint deadline) {
    const int err = SSL_get_error(ssl_, r);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ) return Wait(POLLIN, deadline);
    if (err == SSL_ERROR_WANT_WRITE) return Wait(POLLOUT, deadline);
    return err == SSL_ERROR_ZERO_RETURN ? Io::kEof : Io::kError;
  }
  Io Wait(short events, TimePoint deadline) {
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_.Now()).count();
      if (left <= 0) return Io::kTimeout;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
      // Ready, hung up or failed: the next read or write tells which.
      if (r > 0) return Io::kOk;
      // The whole wait passed (also when the Clock is not the real one).
      if (r == 0) return Io::kTimeout;
      if (errno != EINTR) return Io::kError;
    }
  }

  const int fd_;
  const Clock& clock_;
  SSL* ssl_ = nullptr;
  std::string error_;
};

// Buffered request reader over a Conn. Holds at most what one read adds past what the caller
// asked for: kReadChunkBytes beyond a head or line limit.
class Reader {
 public:
  explicit Reader(Conn& c) : conn_(c) {}
  std::string_view buffered() const { return buf_; }
  void Consume(size_t n) { buf_.erase(0, n); }

  // Appends what one read returns.
  Io Fill(TimePoint deadline) {
    char tmp[kReadChunkBytes];
    size_t got = 0;
    Io r = conn_.Read(tmp, sizeof tmp, &got, deadline);
    if (r == Io::kOk) buf_.append(tmp, got);
    return r;
  }
  // Appends exactly n bytes to *out, reading straight into it past what is buffered.
  Io ReadExactly(size_t n, std::string* out, TimePoint deadline) {
    const size_t from_buf = std::min(n, buf_.size());
    out->append(buf_, 0, from_buf);
    buf_.erase(0, from_buf);
    size_t done = out->size();
    out->resize(out->size() + (n - from_buf));
    while (done < out->size()) {
      size_t got = 0;
      Io r = conn_.Read(out->data() + done, out->size() - done, &got, deadline);
      if (r != Io::kOk) {
        out->resize(done);
        return r;
      }
      done += got;
    }
    return Io::kOk;
  }
  // A CRLF-terminated line of at most max_len bytes, CRLF excluded.
  Io ReadLine(size_t max_len, std::string* line, TimePoint deadline) {
    size_t scanned = 0;
    for (;;) {
      const size_t pos = buf_.find("\r\n", scanned);
      if (pos != std::string::npos) {
        if (pos > max_len) return Io::kTooLong;
        line->assign(buf_, 0, pos);
        buf_.erase(0, pos + 2);
        return Io::kOk;
      }
      if (buf_.size() > max_len + 1) return Io::kTooLong;
      scanned = buf_.empty() ? 0 : buf_.size() - 1;
      if (Io r = Fill(deadline); r != Io::kOk) return r;
    }
  }

 private:
  Conn& conn_;
  std::string buf_;
};

// Request-body bytes in flight across all connections (ServerOptions::max_body_bytes_in_flight).
class BodyBudget {
 public:
  explicit BodyBudget(size_t limit) : limit_(limit) {}
  bool TryTake(size_t n) {
    size_t used = used_.load();
    do {
      if (n > limit_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + n));
    return true;
  }
  void Give(size_t n) { used_.fetch_sub(n); }
  size_t limit() const { return limit_; }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

// What one request holds of the budget, given back when it goes out of scope.
class BudgetHold {
 public:
  explicit BudgetHold(BodyBudget& budget) : budget_(budget) {}
  ~BudgetHold() { budget_.Give(held_); }
  BudgetHold(const BudgetHold&) = delete;
  BudgetHold& operator=(const BudgetHold&) = delete;
  bool Grow(size_t n) {
    if (!budget_.TryTake(n)) return false;
    held_ += n;
    return true;
  }

 private:
  BodyBudget& budget_;
  size_t held_ = 0;
};

// The connection ended without a request to answer (EOF, reset, Stop).
struct Closed {};

struct ReadRequest {
  ServerRequest req;
  bool keep_alive = true;
  bool head_only = false;  // HEAD: the answer carries no body
};

// A request read whole, a refusal to answer, or nothing to answer.
using RequestOutcome = std::variant<ReadRequest, Refusal, Closed>;
// A body read whole (monostate), a refusal to answer, or nothing to answer.
using BodyOutcome = std::variant<std::monostate, Refusal, Closed>;

ServerOptions Normalized(ServerOptions o) {
  o.max_body_bytes_in_flight = std::max(o.max_body_bytes_in_flight, o.max_body_bytes);
  return o;
}

class PosixHttpServer final : public HttpServer {
 public:
  PosixHttpServer(const Clock& clock, std::string address, std::optional<TlsConfig> tls,
                  ServerOptions options)
      : clock_(clock),
        address_(std::move(address)),
        tls_(std::move(tls)),
        options_(Normalized(std::move(options))),
        budget_(options_.max_body_bytes_in_flight) {}
  ~PosixHttpServer() override {
    Stop();
    if (ctx_) SSL_CTX_free(ctx_);
  }

  Status UpdateTls(const TlsConfig& tls) override {
    if (!tls_) return Status(StatusCode::kInvalidArgument, "UpdateTls on a plain HTTP server");
    SSL_CTX* fresh = nullptr;
    if (Status s = BuildTlsContext(tls, &fresh); !s.ok()) return s;
    SSL_CTX* old = nullptr;
    {
      std::lock_guard<std::mutex> lock(ctx_mu_);
      old = ctx_;
      ctx_ = fresh;
    }
    if (old) SSL_CTX_free(old);  // live SSL objects hold their own references
    return Status::Ok();
  }

  void Handle(const std::string& path, Handler handler) override {
    std::lock_guard<std::mutex> lock(mu_);
    handlers_[path] = std::move(handler);
  }

  Status Start() override {
    std::lock_guard<std::mutex> start_lock(start_mu_);
    if (listen_fd_ >= 0) return Status(StatusCode::kInternal, "server already started");
    // A peer closing mid-write must not kill the process (SSL_write uses write(2)).
    signal(SIGPIPE, SIG_IGN);
    if (tls_ && !ctx_) {
      if (auto s = BuildTlsContext(*tls_, &ctx_); !s.ok()) return s;
    }
    std::string host, port;
    if (auto s = SplitAddress(address_, &host, &port); !s.ok()) return s;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
    if (gai != 0) return InvalidArgument("listen address " + address_ + ": " + gai_strerror(gai));
    std::string last_error = "no usable address";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      // With an empty host prefer IPv4 0.0.0.0 (the common case in a pod).
      if (host.empty() && ai->ai_family != AF_INET && ai->ai_next) continue;
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
        last_error = std::strerror(errno);
        ::close(fd);
        continue;
      }
      listen_fd_ = fd;
      break;
    }
    freeaddrinfo(res);
    if (listen_fd_ < 0) return Unavailable("listen on " + address_ + ": " + last_error);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (::pipe2(wake_, O_CLOEXEC) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return Internal("pipe: " + std::string(std::strerror(errno)));
    }
    stopping_ = false;
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    spdlog::info("http server listening on {} (port {}, {})", address_, port_.load(), tls_ ? "https" : "http");
    return Status::Ok();
  }

  void Stop() override {
    std::lock_guard<std::mutex> start_lock(start_mu_);
    if (listen_fd_ < 0) return;
    stopping_ = true;
    char b = 1;
    ssize_t ignored = ::write(wake_[1], &b, 1);
    (void)ignored;
    if (accept_thread_.joinable()) accept_thread_.join();
    std::list<Connection> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Graceful: connections waiting for a request are woken and closed; a request being
      // served is answered first (with "Connection: close"), so a client never sees an
      // admission call it already sent fail because a replica is shutting down.
      for (auto& c : conns_) {
        if (c.fd >= 0 && !c.busy) ::shutdown(c.fd, SHUT_RDWR);
      }
      conns.splice(conns.end(), conns_);
    }
    for (auto& c : conns) {
      if (c.thread.joinable()) c.thread.join();
    }
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    listen_fd_ = -1;
  }

  int port() const override { return port_.load(); }

 private:
  struct Connection {
    int fd;
    std::thread thread;
    std::atomic<bool> done{false};
    // Guarded by mu_. busy: a request's head has arrived and it is being read or answered.
    // waiting_on_peer: the handshake, the first request or a request that has begun is still
    // arriving (since `since`); at the limit the longest-waiting such one makes room. evicted:
    // shut down for that.
    bool busy = false;
    bool waiting_on_peer = true;
    TimePoint since;
    bool evicted = false;
  };

  static Status SplitAddress(const std::string& addr, std::string* host, std::string* port) {
    auto colon = addr.rfind(':');
    if (colon == std::string::npos) return InvalidArgument("listen address needs host:port: " + addr);
    *host = addr.substr(0, colon);
    *port = addr.substr(colon + 1);
    if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
    if (port->empty() || port->find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("listen address has a bad port: " + addr);
    return Status::Ok();
  }

  // A new server context for `tls`; *out is set only on success.
  static Status BuildTlsContext(const TlsConfig& tls, SSL_CTX** out) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return Internal("SSL_CTX_new: " + OpenSslError());
    Status s = ConfigureTls(tls, ctx);
    if (!s.ok()) {
      SSL_CTX_free(ctx);
      return s;
    }
    *out = ctx;
    return Status::Ok();
  }

  static Status ConfigureTls(const TlsConfig& tls, SSL_CTX* ctx_) {
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx_, kTls12Ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx_, kTls13Suites) != 1 ||
        SSL_CTX_set1_groups_list(ctx_, kTlsGroups) != 1) {
      return Internal("TLS cipher configuration: " + OpenSslError());
    }
    // Renegotiation lets a client make the server redo expensive handshakes on one connection
    // and has had its own vulnerabilities; compression leaks secrets (CRIME).
    uint64_t no = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_NO_CLIENT_RENEGOTIATION
    no |= SSL_OP_NO_CLIENT_RENEGOTIATION;
#endif
    SSL_CTX_set_options(ctx_, no);
    // Writes are retried after a wait from the same buffer, but not always at the same address.
    SSL_CTX_set_mode(ctx_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Keep-alive clients (the API server) resume sessions; the cache is per context.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_SERVER);
    // The serving certificate chain and key come in client_cert_pem / client_key_pem (this
    // process's own identity); see http.h.
    BIO* bio = BIO_new_mem_buf(tls.client_cert_pem.data(), static_cast<int>(tls.client_cert_pem.size()));
    X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    bool ok = leaf && SSL_CTX_use_certificate(ctx_, leaf) == 1;
    if (leaf) X509_free(leaf);
    while (ok) {
      X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      if (!extra) break;
      if (SSL_CTX_add_extra_chain_cert(ctx_, extra) != 1) X509_free(extra);  // owned on success
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!ok) return InvalidArgument("TLS serving certificate: no valid PEM certificate");
    bio = BIO_new_mem_buf(tls.client_key_pem.data(), static_cast<int>(tls.client_key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!key) return InvalidArgument("TLS serving key: " + OpenSslError());
    ok = SSL_CTX_use_PrivateKey(ctx_, key) == 1 && SSL_CTX_check_private_key(ctx_) == 1;
    EVP_PKEY_free(key);
    if (!ok) return InvalidArgument("TLS serving key does not match the certificate: " + OpenSslError());
    if (!tls.ca_pem.empty()) {
      // A CA on a server means: require client certificates signed by it.
      X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
      bio = BIO_new_mem_buf(tls.ca_pem.data(), static_cast<int>(tls.ca_pem.size()));
      int added = 0;
      while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        added += X509_STORE_add_cert(store, ca) == 1;
        X509_free(ca);
      }
      BIO_free(bio);
      ERR_clear_error();
      if (added == 0) return InvalidArgument("TLS client CA: no valid PEM certificate");
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return Status::Ok();
  }

  void AcceptLoop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int r = ::poll(fds, 2, 1000);
      if (stopping_) return;
      ReapFinished();
      if (r <= 0 || !(fds[0].revents & POLLIN)) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<int>(conns_.size()) >= options_.max_connections && !EvictSlowest()) {
        if (!tls_) {
          const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: " +
                                   std::to_string(options_.retry_after_seconds) +
                                   "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
          ssize_t ignored = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          (void)ignored;
        }
        ::close(fd);
        Refused(RefusalReason::kConnectionLimit);
        continue;
      }
      conns_.emplace_back();
      Connection& c = conns_.back();
      c.fd = fd;
      c.since = clock_.Now();
      c.thread = std::thread([this, &c] {
        Serve(c);
        // Closed under the lock so that Stop() never shuts down a reused descriptor number.
        std::lock_guard<std::mutex> lock(mu_);
        ::close(c.fd);
        c.fd = -1;
        c.done = true;
      });
    }
  }

  // At the connection limit (REQUIRES: mu_ held): shuts down the connection that has been
  // waiting on its peer longest — a handshake, a first request or a request not yet arrived
  // whole, for at least kMinWaitToEvict — so that clients that stall cannot keep every slot
  // until their deadlines while prompt ones (the API server sends a request in milliseconds)
  // are turned away. Connections being answered or idle between requests are never chosen.
  // Returns whether the new connection may take the slot.
  bool EvictSlowest() {
    const TimePoint cutoff = clock_.Now() - kMinWaitToEvict;
    int live = 0, evicting = 0;
    Connection* slowest = nullptr;
    for (auto& c : conns_) {
      if (c.done) continue;
      if (c.evicted) {
        ++evicting;
        continue;
      }
      ++live;
      if (c.waiting_on_peer && c.since <= cutoff && (!slowest || c.since < slowest->since))
        slowest = &c;
    }
    if (live < options_.max_connections) return true;
    // Evicted threads end at once; the cap keeps a flood from outrunning them.
    if (!slowest || evicting >= kMaxEvicting) return false;
    slowest->evicted = true;
    ::shutdown(slowest->fd, SHUT_RDWR);
    Refused(RefusalReason::kConnectionLimit);
    return true;
  }

  // Records what connection `c` waits for (see Connection).
  void MarkWaiting(Connection& c, bool waiting_on_peer) {
    std::lock_guard<std::mutex> lock(mu_);
    c.waiting_on_peer = waiting_on_peer;
    c.since = clock_.Now();
  }

  bool Evicted(const Connection& c) {
    std::lock_guard<std::mutex> lock(mu_);
    return c.evicted;
  }

  void ReapFinished() {
    std::list<Connection> finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = conns_.begin(); it != conns_.end();) {
        auto next = std::next(it);
        if (it->done) finished.splice(finished.end(), conns_, it);
        it = next;
      }
    }
    for (auto& c : finished) c.thread.join();
  }

  void Refused(RefusalReason reason) const {
    if (options_.on_refusal) options_.on_refusal(reason);
  }

  // The TLS handshake within handshake_timeout of accept.
  bool Handshake(Conn& conn, const Connection& c) {
    SSL* ssl = nullptr;
    {
      std::lock_guard<std::mutex> lock(ctx_mu_);
      ssl = SSL_new(ctx_);  // takes a reference: a concurrent UpdateTls cannot free ctx_ under it
    }
    if (!ssl) return false;
    const Io r = conn.Handshake(ssl, clock_.Now() + options_.handshake_timeout);
    if (r == Io::kOk) return true;
    if (stopping_ || Evicted(c)) return false;  // counted by whoever shut it down
    if (r == Io::kTimeout) {
      spdlog::debug("http server {}: TLS handshake not done within {} ms", address_,
                    options_.handshake_timeout.count());
      Refused(RefusalReason::kHandshakeTimeout);
    } else if (!conn.PeerSentNothing()) {
      spdlog::debug("http server {}: TLS handshake failed: {}", address_, conn.error());
      Refused(RefusalReason::kTlsHandshake);
    }
    return false;
  }

  void Serve(Connection& c) {
    Conn conn(c.fd, clock_);
    if (tls_ && !Handshake(conn, c)) return;
    Reader reader(conn);
    auto set_busy = [&](bool busy) {
      std::lock_guard<std::mutex> lock(mu_);
      c.busy = busy;
    };
    for (int n = 0; n < kMaxRequestsPerConnection && !stopping_; ++n) {
      // Waiting for the first byte of a request; idle keep-alive connections end here.
      const auto wait = n == 0 ? options_.request_timeout : options_.idle_timeout;
      if (reader.buffered().empty() && reader.Fill(clock_.Now() + wait) != Io::kOk) return;
      if (n > 0) MarkWaiting(c, true);  // the first request was awaited since accept
      BudgetHold hold(budget_);
      auto got = ReadOneRequest(conn, reader, hold, clock_.Now() + options_.request_timeout,
                                [&] { set_busy(true); });
      if (std::holds_alternative<Closed>(got)) return;
      if (auto* refusal = std::get_if<Refusal>(&got)) {
        if (Evicted(c)) return;  // its read failed because it was shut down
        Refuse(conn, c.fd, *refusal);
        return;
      }
      auto& request = std::get<ReadRequest>(got);
      MarkWaiting(c, false);
      HttpResponse resp = Dispatch(request.req);
      // The last answer on a connection (request cap reached, or Stop) says so: a client that
      // sent its next request on a connection closed without "Connection: close" sees it fail,
      // and clients do not retry a POST (the API server calling a webhook would fail the call).
      const bool keep_alive = request.keep_alive && n + 1 < kMaxRequestsPerConnection && !stopping_;
      const std::string out = Render(resp, keep_alive, request.head_only);
      const size_t body_bytes = request.req.body.size();
      request = ReadRequest{};
      resp = HttpResponse{};
      // glibc keeps a heap arena per thread and hands little of a freed peak back to the
      // system: after bursts of large bodies handled on many threads, each arena would hold
      // the peak of its last one. Trimming after each large body keeps memory at what is in use.
      if (body_bytes >= kTrimAfterBodyBytes) malloc_trim(0);
      if (conn.WriteAll(out, clock_.Now() + options_.write_timeout) != Io::kOk || !keep_alive)
        return;
      set_busy(false);
    }
  }

  // Reads one request whose first byte is buffered: its head, then its body within the
  // budget. `on_head` runs once the head is complete.
  RequestOutcome ReadOneRequest(Conn& conn, Reader& reader, BudgetHold& hold, TimePoint deadline,
                                const std::function<void()>& on_head) {
    auto read_head = ReadHead(reader, deadline);
    if (auto* refusal = std::get_if<Refusal>(&read_head)) return std::move(*refusal);
    if (std::holds_alternative<Closed>(read_head)) return Closed{};
    on_head();
    RequestHead& head = std::get<RequestHead>(read_head);
    auto admitted = Admit(head, hold);
    if (auto* refusal = std::get_if<Refusal>(&admitted)) return std::move(*refusal);
    const BodyFraming body = std::get<BodyFraming>(admitted);
    auto expect = head.headers.find("expect");
    if (body.kind != BodyFraming::kNone && head.minor_version == 1 &&
        expect != head.headers.end() && Lower(expect->second) == "100-continue") {
      // Only now: a refused body need not be sent at all.
      if (conn.WriteAll("HTTP/1.1 100 Continue\r\n\r\n", deadline) != Io::kOk) return Closed{};
    }
    ReadRequest out;
    if (body.kind == BodyFraming::kLength) {
      out.req.body.reserve(body.length);
      if (Io r = reader.ReadExactly(body.length, &out.req.body, deadline); r != Io::kOk)
        return Ended<RequestOutcome>(r);
    } else if (body.kind == BodyFraming::kChunked) {
      auto chunked = ReadChunked(reader, hold, deadline, &out.req.body);
      if (auto* refusal = std::get_if<Refusal>(&chunked)) return std::move(*refusal);
      if (std::holds_alternative<Closed>(chunked)) return Closed{};
    }
    out.keep_alive = WantsKeepAlive(head);
    out.head_only = head.method == "HEAD";
    out.req.method = std::move(head.method);
    out.req.path = std::move(head.path);
    out.req.query = std::move(head.query);
    out.req.headers = std::move(head.headers);
    return out;
  }

  // The head, scanned as it arrives (HeadLimits) and then parsed.
  std::variant<RequestHead, Refusal, Closed> ReadHead(Reader& reader, TimePoint deadline) {
    HeadScanner scanner(options_.head);
    for (;;) {
      auto scan = scanner.Scan(reader.buffered());
      if (auto* done = std::get_if<HeadScanner::Complete>(&scan)) {
        auto parsed =
            ParseRequestHead(reader.buffered().substr(0, done->head_bytes), options_.head);
        reader.Consume(done->head_bytes);
        if (auto* refusal = std::get_if<Refusal>(&parsed)) return std::move(*refusal);
        return std::move(std::get<RequestHead>(parsed));
      }
      if (auto* refusal = std::get_if<Refusal>(&scan)) return std::move(*refusal);
      if (Io r = reader.Fill(deadline); r != Io::kOk) {
        return Ended<std::variant<RequestHead, Refusal, Closed>>(r);
      }
    }
  }

  // This server's rules on a well-formed head: the method, whether a body may come, how it is
  // framed, and its share of the budget (taken here for a known length).
  std::variant<BodyFraming, Refusal> Admit(const RequestHead& head, BudgetHold& hold) {
    const auto& methods = options_.allowed_methods;
    if (!methods.empty() &&
        std::find(methods.begin(), methods.end(), head.method) == methods.end()) {
      return Refusal{405, RefusalReason::kMethodNotAllowed, "method not allowed here\n"};
    }
    // Without bodies, any length is refused as a body, not as too long a one.
    auto framing =
        DecideBodyFraming(head, options_.allow_body ? options_.max_body_bytes : SIZE_MAX);
    if (auto* refusal = std::get_if<Refusal>(&framing)) return std::move(*refusal);
    const BodyFraming body = std::get<BodyFraming>(framing);
    if (!options_.allow_body && body.kind != BodyFraming::kNone) {
      return Refusal{413, RefusalReason::kBodyNotAllowed, "this endpoint takes no request body\n"};
    }
    if (body.kind == BodyFraming::kLength && !hold.Grow(body.length)) return BudgetRefusal();
    return body;
  }

  Refusal BudgetRefusal() const {
    return Refusal{503, RefusalReason::kBodyBudget,
                   "the server is busy: request bodies being handled are at the limit of " +
                       std::to_string(budget_.limit()) + " bytes; retry later\n"};
  }

  Refusal TimeoutRefusal() const {
    return Refusal{408, RefusalReason::kRequestTimeout,
                   "the request did not arrive within " +
                       std::to_string(options_.request_timeout.count()) + " ms\n"};
  }

  // A read that did not return data: the deadline passed (408), or the peer went away.
  template <typename Outcome>
  Outcome Ended(Io r) const {
    if (r == Io::kTimeout) return TimeoutRefusal();
    return Closed{};
  }

  // A chunked body (RFC 9112 7.1): each chunk taken from the budget before it is read, then
  // the trailer section, checked and dropped. monostate when the body was read whole.
  BodyOutcome ReadChunked(Reader& reader, BudgetHold& hold, TimePoint deadline, std::string* body) {
    std::string line;
    for (;;) {
      Io r = reader.ReadLine(kMaxChunkLineBytes, &line, deadline);
      if (r == Io::kTooLong)
        return Refusal{400, RefusalReason::kMalformed, "a chunk-size line is too long\n"};
      if (r != Io::kOk) return Ended<BodyOutcome>(r);
      auto size = ParseChunkSizeLine(line);
      if (auto* refusal = std::get_if<Refusal>(&size)) return std::move(*refusal);
      const uint64_t n = std::get<uint64_t>(size);
      if (n == 0) break;
      if (n > options_.max_body_bytes - body->size()) {
        return Refusal{413, RefusalReason::kBodyTooLarge,
                       "request body too large: the limit is " +
                           std::to_string(options_.max_body_bytes) + " bytes\n"};
      }
      if (!hold.Grow(n)) return BudgetRefusal();
      std::string crlf;
      if (Io d = reader.ReadExactly(n, body, deadline); d != Io::kOk) return Ended<BodyOutcome>(d);
      if (Io d = reader.ReadExactly(2, &crlf, deadline); d != Io::kOk) return Ended<BodyOutcome>(d);
      if (crlf != "\r\n")
        return Refusal{400, RefusalReason::kMalformed, "a chunk is longer than its size\n"};
    }
    return ReadTrailers(reader, deadline);
  }

  BodyOutcome ReadTrailers(Reader& reader, TimePoint deadline) {
    const HeadLimits& limits = options_.head;
    const Refusal too_large{431, RefusalReason::kHeaderTooLarge,
                            "the trailer section is too large\n"};
    std::string line;
    size_t count = 0, total = 0;
    for (;;) {
      Io r = reader.ReadLine(limits.max_header_line_bytes, &line, deadline);
      if (r == Io::kTooLong) return too_large;
      if (r != Io::kOk) return Ended<BodyOutcome>(r);
      if (line.empty()) return std::monostate{};
      total += line.size() + 2;
      if (++count > limits.max_header_count || total > limits.max_head_bytes) return too_large;
      if (auto refusal = CheckTrailerLine(line)) return std::move(*refusal);
    }
  }

  // Answers a refusal, closes the sending side and drains what the client still sends.
  void Refuse(Conn& conn, int fd, const Refusal& refusal) {
    HttpResponse resp = Simple(refusal.status, refusal.message);
    if (refusal.reason == RefusalReason::kBodyTooLarge)
      resp.status = options_.body_too_large_status;
    if (refusal.reason == RefusalReason::kBodyBudget) {
      resp.headers["Retry-After"] = std::to_string(options_.retry_after_seconds);
    }
    if (refusal.reason == RefusalReason::kMethodNotAllowed) {
      std::string allow;
      for (const auto& m : options_.allowed_methods) allow += (allow.empty() ? "" : ", ") + m;
      resp.headers["Allow"] = allow;
    }
    spdlog::debug("http server {}: refused ({}): {}", address_, RefusalReasonName(refusal.reason),
                  refusal.message.substr(0, refusal.message.size() - 1));
    (void)conn.WriteAll(Render(resp, false, false), clock_.Now() + options_.write_timeout);
    Refused(refusal.reason);
    LingeringClose(fd);
  }

  void LingeringClose(int fd) const {
    ::shutdown(fd, SHUT_WR);
    const TimePoint deadline = clock_.Now() + kLingerTime;
    char buf[kReadChunkBytes];
    size_t total = 0;
    while (total < kLingerBytes) {
      const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        total += static_cast<size_t>(r);
        continue;
      }
      if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_.Now()).count();
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    }
  }

  HttpResponse Dispatch(const ServerRequest& req) {
    Handler handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = handlers_.find(req.path);
      if (it != handlers_.end()) handler = it->second;
    }
    if (!handler) return Simple(404, "404 page not found\n");
    try {
      return handler(req);
    } catch (const std::exception& e) {
      spdlog::error("http server {}: handler for {} threw: {}", address_, req.path, e.what());
    } catch (...) {
      spdlog::error("http server {}: handler for {} threw", address_, req.path);
    }
    return Simple(500, "internal error\n");
  }

  static HttpResponse Simple(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.headers["content-type"] = "text/plain; charset=utf-8";
    r.body = std::move(body);
    return r;
  }

  // HEAD (head_only): the headers of the answer, Content-Length included, without its body.
  static std::string Render(const HttpResponse& resp, bool keep_alive, bool head_only) {
    int status = resp.status >= 100 && resp.status <= 999 ? resp.status : 500;
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
    bool has_type = false;
    for (const auto& [name, value] : resp.headers) {
      std::string lname = Lower(name);
      if (lname == "content-length" || lname == "connection" || lname == "transfer-encoding") continue;
      if (name.find_first_of("\r\n:") != std::string::npos || value.find_first_of("\r\n") != std::string::npos)
        continue;  // never let a handler inject headers
      has_type |= lname == "content-type";
      out += name + ": " + value + "\r\n";
    }
    if (!has_type) out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (!head_only) out += resp.body;
    return out;
  }

  const Clock& clock_;
  const std::string address_;
  const std::optional<TlsConfig> tls_;
  const ServerOptions options_;
  BodyBudget budget_;
  std::mutex ctx_mu_;
  SSL_CTX* ctx_ = nullptr;  // guarded by ctx_mu_ once the server runs
  std::mutex start_mu_;
  std::mutex mu_;  // handlers_, conns_
  std::map<std::string, Handler> handlers_;
  std::list<Connection> conns_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<int> port_{0};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
};

}  // namespace

std::unique_ptr<HttpServer> NewHttpServer(const Clock& clock, const std::string& address,
                                          std::optional<TlsConfig> tls, ServerOptions options) {
  return std::make_unique<PosixHttpServer>(clock, address, std::move(tls), options);
}

}  // namespace kpc::net
