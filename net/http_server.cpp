// net::HttpServer on plain POSIX sockets + OpenSSL (no cpprestsdk).
//
// Why not cpprestsdk's http_listener: it cannot report the port it bound (tests and the
// controller need ":0"), picking a free port first races with other processes, it reports bind
// failures only asynchronously, and it offers no bound on request sizes or connection counts.
// The server needed here is small — /healthz, /readyz, /metrics and AdmissionReview POSTs — so
// a thread-per-connection HTTP/1.1 server with keep-alive, hard size limits and prompt Stop()
// is simpler to make robust than adapting the listener.
//
// Limits: request head 64 KiB, body (ServerOptions, default 32 MiB), concurrent connections
// (ServerOptions, default 256; more are refused), 60 s idle per connection, 10 s to send a
// request once it started, TLS 1.2+.
//
// TLS hot reload: the SSL_CTX is swapped under a lock by UpdateTls(); SSL_new() takes its own
// reference on the context, so connections opened before a reload keep the old certificate
// until they close and new handshakes get the new one — no connection is dropped.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "net/http.h"

namespace kpc::net {
namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr int kMaxRequestsPerConnection = 1000;
constexpr int kIdleTimeoutSeconds = 60;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
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
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
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

// One accepted connection, plain or TLS, on a blocking socket with SO_RCVTIMEO/SO_SNDTIMEO so
// that a silent peer cannot hold a thread forever; Stop() shuts the socket down to wake reads.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Conn() {
    if (ssl_) SSL_free(ssl_);  // the fd itself is closed by the server, under its lock
  }
  // >0 bytes, 0 at EOF, <0 on error/timeout.
  ssize_t Read(char* buf, size_t n) {
    if (ssl_) {
      int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1 << 20)));
      if (r > 0) return r;
      int err = SSL_get_error(ssl_, r);
      ERR_clear_error();
      return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
      ssize_t r = ::recv(fd_, buf, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r;
    }
  }
  bool WriteAll(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      if (ssl_) {
        int r = SSL_write(ssl_, data.data() + off, static_cast<int>(std::min<size_t>(data.size() - off, 1 << 20)));
        if (r <= 0) {
          ERR_clear_error();
          return false;
        }
        off += static_cast<size_t>(r);
      } else {
        ssize_t r = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        off += static_cast<size_t>(r);
      }
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

void SetTimeouts(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Buffered request reader over a Conn.
class Reader {
 public:
  explicit Reader(Conn& c) : conn_(c) {}
  // Reads until "\r\n\r\n"; returns false at EOF/error/limit. *too_big set when over the limit.
  bool ReadHead(std::string* head, bool* too_big) {
    *too_big = false;
    for (;;) {
      auto pos = buf_.find("\r\n\r\n");
      if (pos != std::string::npos) {
        *head = buf_.substr(0, pos + 2);
        buf_.erase(0, pos + 4);
        return true;
      }
      if (buf_.size() > kMaxHeadBytes) {
        *too_big = true;
        return false;
      }
      if (!Fill()) return false;
    }
  }
  bool ReadExactly(size_t n, std::string* out) {
    while (buf_.size() < n) {
      if (!Fill()) return false;
    }
    out->append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
  }
  bool ReadLine(std::string* line) {
    for (;;) {
      auto pos = buf_.find("\r\n");
      if (pos != std::string::npos) {
        *line = buf_.substr(0, pos);
        buf_.erase(0, pos + 2);
        return true;
      }
      if (buf_.size() > kMaxHeadBytes) return false;
      if (!Fill()) return false;
    }
  }
  bool HasBuffered() const { return !buf_.empty(); }

 private:
  bool Fill() {
    char tmp[16384];
    ssize_t r = conn_.Read(tmp, sizeof tmp);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }
  Conn& conn_;
  std::string buf_;
};

class PosixHttpServer final : public HttpServer {
 public:
  PosixHttpServer(const Clock& clock, std::string address, std::optional<TlsConfig> tls, ServerOptions options)
      : clock_(clock), address_(std::move(address)), tls_(std::move(tls)), options_(options) {}
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
    bool busy = false;  // guarded by mu_: a request is being read or answered
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
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<int>(conns_.size()) >= options_.max_connections) {
        static const char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (!tls_) {
          ssize_t ignored = ::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          (void)ignored;
        }
        ::close(fd);
        continue;
      }
      conns_.emplace_back();
      Connection& c = conns_.back();
      c.fd = fd;
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

  void Serve(Connection& c) {
    const int fd = c.fd;
    auto set_busy = [&](bool busy) {
      std::lock_guard<std::mutex> lock(mu_);
      c.busy = busy;
    };
    SSL* ssl = nullptr;
    if (tls_) {
      SetTimeouts(fd, 10);
      {
        std::lock_guard<std::mutex> lock(ctx_mu_);
        ssl = SSL_new(ctx_);  // takes a reference: a concurrent UpdateTls cannot free ctx_ under it
      }
      if (!ssl) return;
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) {
        spdlog::debug("http server {}: TLS handshake failed: {}", address_, OpenSslError());
        SSL_free(ssl);
        return;
      }
    }
    Conn conn(fd, ssl);
    Reader reader(conn);
    for (int n = 0; n < kMaxRequestsPerConnection && !stopping_; ++n) {
      SetTimeouts(fd, kIdleTimeoutSeconds);
      std::string head;
      bool too_big = false;
      if (!reader.ReadHead(&head, &too_big)) {
        if (too_big) conn.WriteAll(Render(Simple(431, "request head too large\n"), false));
        return;
      }
      set_busy(true);
      SetTimeouts(fd, 10);
      ServerRequest req;
      bool keep_alive = true;
      int error = ParseHead(head, &req, &keep_alive);
      if (error == 0) error = ReadBody(reader, conn, &req, options_.max_body_bytes);
      if (error != 0) {
        std::string message = std::string(ReasonPhrase(error)) + "\n";
        if (error == 413) {
          message = "request body too large: the limit is " + std::to_string(options_.max_body_bytes) + " bytes\n";
          error = options_.body_too_large_status;
        } else if (error == 400) {
          message = "malformed HTTP request\n";
        }
        conn.WriteAll(Render(Simple(error, message), false));
        LingeringClose(fd);
        return;
      }
      HttpResponse resp = Dispatch(req);
      // The last answer on a connection (request cap reached, or Stop) says so: a client that
      // sent its next request on a connection closed without "Connection: close" sees it fail,
      // and clients do not retry a POST (the API server calling a webhook would fail the call).
      if (n + 1 >= kMaxRequestsPerConnection || stopping_) keep_alive = false;
      if (!conn.WriteAll(Render(resp, keep_alive)) || !keep_alive) return;
      set_busy(false);
    }
  }

  // After an error answer sent before the request body was read: stop sending, then discard
  // what the client is still sending (at most 1 s / 64 MiB) before the socket is closed, so
  // that closing does not reset the connection and destroy the answer in flight.
  void LingeringClose(int fd) const {
    ::shutdown(fd, SHUT_WR);
    SetTimeouts(fd, 1);
    char buf[16384];
    size_t total = 0;
    auto deadline = clock_.Now() + std::chrono::seconds(1);
    while (total < (64u << 20) && clock_.Now() < deadline) {
      ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r <= 0) break;
      total += static_cast<size_t>(r);
    }
  }

  // Returns 0 or an HTTP error status.
  static int ParseHead(const std::string& head, ServerRequest* req, bool* keep_alive) {
    size_t line_end = head.find("\r\n");
    std::string line = head.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) return 400;
    req->method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string version = line.substr(sp2 + 1);
    if (version.rfind("HTTP/1.", 0) != 0 || target.empty()) return 400;
    auto q = target.find('?');
    req->path = target.substr(0, q);
    if (q != std::string::npos) req->query = target.substr(q + 1);
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string h = head.substr(pos, end - pos);
      pos = end + 2;
      if (h.empty()) continue;
      auto colon = h.find(':');
      if (colon == std::string::npos || colon == 0) return 400;
      std::string name = Lower(h.substr(0, colon));
      std::string value = Trim(h.substr(colon + 1));
      auto [it, inserted] = req->headers.emplace(name, value);
      if (!inserted) it->second += ", " + value;
    }
    std::string connection = Lower(req->headers.count("connection") ? req->headers["connection"] : "");
    *keep_alive = version == "HTTP/1.1" ? connection.find("close") == std::string::npos
                                        : connection.find("keep-alive") != std::string::npos;
    return 0;
  }

  static int ReadBody(Reader& reader, Conn& conn, ServerRequest* req, size_t max_body) {
    auto te = req->headers.find("transfer-encoding");
    auto cl = req->headers.find("content-length");
    auto expect = req->headers.find("expect");
    if (cl != req->headers.end() && !cl->second.empty() && cl->second.find_first_not_of("0123456789") == std::string::npos &&
        cl->second.size() < 20 && std::stoull(cl->second) > max_body) {
      return 413;  // before "100 Continue": the client need not send a body that is refused
    }
    if (expect != req->headers.end() && Lower(expect->second) == "100-continue") {
      conn.WriteAll("HTTP/1.1 100 Continue\r\n\r\n");
    }
    if (te != req->headers.end() && Lower(te->second).find("chunked") != std::string::npos) {
      for (;;) {
        std::string size_line;
        if (!reader.ReadLine(&size_line)) return 400;
        size_t size = 0;
        try {
          size = std::stoul(size_line.substr(0, size_line.find(';')), nullptr, 16);
        } catch (...) {
          return 400;
        }
        if (size > max_body || req->body.size() + size > max_body) return 413;
        if (size == 0) {
          std::string trailer;
          do {
            if (!reader.ReadLine(&trailer)) return 400;
          } while (!trailer.empty());
          return 0;
        }
        if (!reader.ReadExactly(size, &req->body)) return 400;
        std::string crlf;
        if (!reader.ReadLine(&crlf) || !crlf.empty()) return 400;
      }
    }
    if (cl != req->headers.end()) {
      size_t n = 0;
      try {
        if (cl->second.find_first_not_of("0123456789") != std::string::npos) return 400;
        n = std::stoull(cl->second);
      } catch (...) {
        return 400;
      }
      if (n > max_body) return 413;
      if (!reader.ReadExactly(n, &req->body)) return 400;
    }
    return 0;
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

  static std::string Render(const HttpResponse& resp, bool keep_alive) {
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
    out += resp.body;
    return out;
  }

  const Clock& clock_;
  const std::string address_;
  const std::optional<TlsConfig> tls_;
  const ServerOptions options_;
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
