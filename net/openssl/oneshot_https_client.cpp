// net::NewOneShotHttpsClient: one HTTPS request per connection on OpenSSL and POSIX sockets,
// with one SSL_CTX for every request (see net/http.h for the contract).
//
// Why it exists: the controller reads /configz from every kubelet, each a different host, so
// every fetch is a new TLS connection. cpprestsdk builds a fresh SSL context per connection
// and loads the whole system CA bundle into it before any callback can replace the store —
// most of the CPU of a request (scripts/bench-https-client.sh), and idle pooled connections
// each keep that store alive. Here the context (and its trust store) is built once; a connection costs its
// handshake and nothing else, and is closed as soon as the response ends.
//
// How:
// - Sockets are non-blocking; every wait is a poll() bounded by the request's deadline, read
//   on the Clock, so a silent or trickling peer cannot hold a request past it.
// - A name lookup (getaddrinfo cannot be interrupted) runs on a detached thread that the
//   request waits for until the deadline; a lookup still running then finishes on its own.
//   IP literals are never looked up. At most kMaxLookupsInFlight lookups run at once.
// - OpenSSL talks to the socket through a small BIO of our own that sends with MSG_NOSIGNAL:
//   a peer closing early must not raise SIGPIPE in the process.
// - The response goes through net/http1_response.h, which bounds every part of it.
// - A body delimited by the end of the connection is complete only when the peer closed
//   TLS cleanly (close_notify); a bare TCP close there could be a truncation.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "net/http.h"
#include "net/http1_response.h"

namespace kpc::net {
namespace {

using Deadline = std::chrono::steady_clock::time_point;

constexpr size_t kReadBufferBytes = 16u << 10;
constexpr int kMaxLookupsInFlight = 64;
constexpr size_t kMaxAddressesTried = 8;

// Lookups running on their own threads, process-wide (they may outlive their client).
std::atomic<int> g_lookups_in_flight{0};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The first error queued (the cause; later ones are consequences), then clears the queue.
std::string OpenSslReason() {
  const unsigned long e = ERR_peek_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(e);
  if (reason) return reason;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// True when a PEM read loop ended at the end of the data rather than on a bad block.
bool PemEndedCleanly() {
  const unsigned long e = ERR_peek_last_error();
  const bool clean =
      e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
  if (clean) ERR_clear_error();
  return clean;
}

Status LoadCa(SSL_CTX* ctx, const std::string& pem) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  BioPtr bio = MemBio(pem);
  int added = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store, cert.get()) != 1)
      return InvalidArgument("TLS: bad CA certificate: " + OpenSslReason());
    ++added;
  }
  if (!PemEndedCleanly())
    return InvalidArgument("TLS: bad certificate in the CA data: " + OpenSslReason());
  if (added == 0) return InvalidArgument("TLS: no certificate found in the CA data");
  return Status::Ok();
}

Status LoadClientPair(SSL_CTX* ctx, const TlsConfig& tls) {
  if (tls.client_cert_pem.empty() || tls.client_key_pem.empty()) {
    return InvalidArgument("TLS: a client certificate needs both the certificate and its key");
  }
  BioPtr certs = MemBio(tls.client_cert_pem);
  X509Ptr leaf{PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)};
  if (!leaf || SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    return InvalidArgument("TLS: bad client certificate: " + OpenSslReason());
  }
  while (X509Ptr extra{PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)}) {
    if (SSL_CTX_add1_chain_cert(ctx, extra.get()) != 1) {
      return InvalidArgument("TLS: bad client certificate chain: " + OpenSslReason());
    }
  }
  if (!PemEndedCleanly())
    return InvalidArgument("TLS: bad client certificate chain: " + OpenSslReason());
  BioPtr key_bio = MemBio(tls.client_key_pem);
  PkeyPtr key{PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)};
  if (!key || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return InvalidArgument("TLS: bad client key (or it does not match the certificate): " +
                           OpenSslReason());
  }
  return Status::Ok();
}

StatusOr<SslCtxPtr> BuildContext(const TlsConfig& tls) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Internal("TLS: cannot create a context: " + OpenSslReason());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (tls.insecure_skip_verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!tls.ca_pem.empty()) {
      if (Status s = LoadCa(ctx.get(), tls.ca_pem); !s.ok()) return s;
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return InvalidArgument("TLS: cannot load the system trust store: " + OpenSslReason());
    }
  }
  if (!tls.client_cert_pem.empty() || !tls.client_key_pem.empty()) {
    if (Status s = LoadClientPair(ctx.get(), tls); !s.ok()) return s;
  }
  return ctx;
}

// ---- the socket BIO: send(MSG_NOSIGNAL) / recv on a non-blocking socket ----

struct SocketState {
  int fd = -1;
  bool eof = false;  // the peer closed its side of the TCP connection
};

int BioWrite(BIO* b, const char* data, size_t len, size_t* written) {
  BIO_clear_retry_flags(b);
  auto* s = static_cast<SocketState*>(BIO_get_data(b));
  for (;;) {
    const ssize_t n = ::send(s->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      *written = static_cast<size_t>(n);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    return 0;
  }
}

int BioRead(BIO* b, char* data, size_t len, size_t* read) {
  BIO_clear_retry_flags(b);
  auto* s = static_cast<SocketState*>(BIO_get_data(b));
  for (;;) {
    const ssize_t n = ::recv(s->fd, data, len, 0);
    if (n > 0) {
      *read = static_cast<size_t>(n);
      return 1;
    }
    if (n == 0) {
      s->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
    return 0;
  }
}

long BioCtrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return static_cast<SocketState*>(BIO_get_data(b))->eof ? 1 : 0;
    default:
      return 0;
  }
}

// Created once, never freed (process lifetime).
const BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kpc socket");
    if (m) {
      BIO_meth_set_write_ex(m, BioWrite);
      BIO_meth_set_read_ex(m, BioRead);
      BIO_meth_set_ctrl(m, BioCtrl);
    }
    return m;
  }();
  return method;
}

// ---- URL and request ----

struct Target {
  std::string host;  // without brackets
  bool ip_literal = false;
  std::string port = "443";
  std::string authority;  // host[:port] as in the URL, for the Host header
  std::string target;     // path and query
};

bool ValidHostName(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

bool IsIpLiteral(const std::string& host) {
  in6_addr buf;
  return inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

Status ParseHost(std::string_view authority, Target* t) {
  std::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unterminated IPv6 address");
    t->host = std::string(authority.substr(1, close - 1));
    in6_addr buf;
    if (inet_pton(AF_INET6, t->host.c_str(), &buf) != 1) return InvalidArgument("bad IPv6 address");
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return InvalidArgument("bad authority");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    const size_t colon = authority.find(':');
    t->host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (!ValidHostName(t->host)) return InvalidArgument("bad host name");
  }
  t->ip_literal = IsIpLiteral(t->host);
  if (!port.empty()) {
    int value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return InvalidArgument("bad port");
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return InvalidArgument("bad port");
    t->port = std::to_string(value);
  }
  return Status::Ok();
}

StatusOr<Target> ParseHttpsUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || Lower(url.substr(0, scheme_end)) != "https") {
    return InvalidArgument("only https URLs are supported");
  }
  const size_t start = scheme_end + 3;
  const size_t end = url.find_first_of("/?#", start);
  Target t;
  t.authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (t.authority.empty() || t.authority.find('@') != std::string::npos) {
    return InvalidArgument("URL without a host (or with user information)");
  }
  if (Status s = ParseHost(t.authority, &t); !s.ok()) return s;
  t.target = end == std::string::npos ? "/" : url.substr(end, url.find('#', end) - end);
  if (t.target.empty() || t.target.front() == '?') t.target.insert(0, "/");
  for (char c : t.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return InvalidArgument("URL with a space or control character");
  }
  return t;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// The request bytes; refuses what would let a caller's text end a line early.
StatusOr<std::string> RenderRequest(const HttpRequest& req, const Target& t) {
  if (!IsToken(req.method)) return InvalidArgument("bad method");
  std::string out = req.method + " " + t.target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [name, value] : req.headers) {
    if (!IsToken(name)) return InvalidArgument("bad header name");
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return InvalidArgument("header " + name + " has CR, LF or NUL in its value");
    }
    const std::string lower = Lower(name);
    if (lower == "connection" || lower == "content-length" || lower == "transfer-encoding")
      continue;
    has_host = has_host || lower == "host";
    out += name + ": " + value + "\r\n";
  }
  if (!has_host) out += "Host: " + t.authority + "\r\n";
  out += "Connection: close\r\n";
  const bool body_expected = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  if (!req.body.empty() || body_expected)
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  out += "\r\n";
  out += req.body;
  return out;
}

// ---- one exchange ----

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct Address {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// A getaddrinfo call's outcome, shared with the thread that may run it.
struct Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int rc = 0;
  std::vector<Address> addresses;
};

void RunLookup(Lookup& l, const std::string& host, const std::string& port, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | flags;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  std::vector<Address> addresses;
  for (addrinfo* a = res; a && addresses.size() < kMaxAddressesTried; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    Address out;
    std::memcpy(&out.addr, a->ai_addr, a->ai_addrlen);
    out.len = a->ai_addrlen;
    addresses.push_back(out);
  }
  if (res) ::freeaddrinfo(res);
  std::lock_guard<std::mutex> lock(l.mu);
  l.rc = rc;
  l.addresses = std::move(addresses);
  l.done = true;
  l.cv.notify_all();
}

std::string DescribeAddress(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

class Exchange {
 public:
  Exchange(const Clock& clock, SSL_CTX* ctx, const TlsConfig& tls, const HttpRequest& req,
           Target target)
      : clock_(clock),
        ctx_(ctx),
        tls_(tls),
        req_(req),
        target_(std::move(target)),
        deadline_(clock.Now() + req.timeout) {}

  StatusOr<HttpResponse> Run(const std::string& request) {
    auto addresses = Resolve();
    if (!addresses.ok()) return addresses.status();
    if (Status s = Connect(*addresses); !s.ok()) return s;
    if (Status s = Handshake(); !s.ok()) return s;
    if (Status s = Write(request); !s.ok()) return s;
    return Read();
  }

 private:
  Status TimedOut(std::string_view phase) const {
    return Status(StatusCode::kDeadlineExceeded, "no response within " +
                                                     std::to_string(req_.timeout.count()) +
                                                     " ms (" + std::string(phase) + ")");
  }

  // Waits until the socket is ready for `events` or the deadline passes.
  Status Wait(short events, std::string_view phase) const {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - clock_.Now());
      if (left.count() <= 0) return TimedOut(phase);
      pollfd p{socket_.fd, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
      if (r > 0) return Status::Ok();  // errors and hang-ups show in the next I/O call
      if (r < 0 && errno != EINTR) return Unavailable(std::string("poll: ") + std::strerror(errno));
    }
  }

  // Waits for a lookup on its own thread until the deadline; the thread owns a share of the
  // outcome, so a lookup that outlives the request finishes harmlessly.
  Status ResolveInBackground(std::shared_ptr<Lookup> lookup) {
    if (g_lookups_in_flight.fetch_add(1) >= kMaxLookupsInFlight) {
      g_lookups_in_flight.fetch_sub(1);
      return Unavailable("cannot look up " + target_.host + ": too many name lookups in flight");
    }
    try {
      std::thread([lookup, host = target_.host, port = target_.port] {
        RunLookup(*lookup, host, port, 0);
        g_lookups_in_flight.fetch_sub(1);
      }).detach();
    } catch (const std::system_error& e) {
      g_lookups_in_flight.fetch_sub(1);
      return Unavailable("cannot look up " + target_.host + ": " + e.what());
    }
    std::unique_lock<std::mutex> lock(lookup->mu);
    while (!lookup->done) {
      const auto left = deadline_ - clock_.Now();
      if (left <= std::chrono::steady_clock::duration::zero())
        return TimedOut("looking up " + target_.host);
      lookup->cv.wait_for(lock, left);
    }
    return Status::Ok();
  }

  StatusOr<std::vector<Address>> Resolve() {
    auto lookup = std::make_shared<Lookup>();
    if (target_.ip_literal) {
      RunLookup(*lookup, target_.host, target_.port, AI_NUMERICHOST);
    } else if (Status s = ResolveInBackground(lookup); !s.ok()) {
      return s;
    }
    std::lock_guard<std::mutex> lock(lookup->mu);
    if (lookup->rc != 0)
      return Unavailable("cannot look up " + target_.host + ": " + ::gai_strerror(lookup->rc));
    if (lookup->addresses.empty())
      return Unavailable("cannot look up " + target_.host + ": no address");
    return std::move(lookup->addresses);
  }

  Status Connect(const std::vector<Address>& addresses) {
    std::string last_error;
    for (const Address& address : addresses) {
      const auto* addr = reinterpret_cast<const sockaddr*>(&address.addr);
      Fd fd(::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (fd.get() < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
      socket_.fd = fd.get();
      int err = ::connect(fd.get(), addr, address.len) == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        if (Status s = Wait(POLLOUT, "connecting"); !s.ok()) return s;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
      if (err == 0) {
        const int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fd_ = std::move(fd);
        return Status::Ok();
      }
      last_error = "connect to " + DescribeAddress(address.addr) + ": " + std::strerror(err);
    }
    socket_.fd = -1;
    return Unavailable(last_error);
  }

  Status SetUpSsl() {
    ssl_.reset(SSL_new(ctx_));
    BIO* bio = ssl_ ? BIO_new(SocketBioMethod()) : nullptr;
    if (!bio) return Internal("TLS: cannot create a connection: " + OpenSslReason());
    BIO_set_data(bio, &socket_);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns the BIO
    SSL_set_connect_state(ssl_.get());
    const std::string& name = tls_.server_name.empty() ? target_.host : tls_.server_name;
    const bool ip = IsIpLiteral(name);
    if (!ip && SSL_set_tlsext_host_name(ssl_.get(), name.c_str()) != 1) {
      return InvalidArgument("TLS: bad server name: " + OpenSslReason());
    }
    if (tls_.insecure_skip_verify) return Status::Ok();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                       : SSL_set1_host(ssl_.get(), name.c_str());
    if (set != 1) return InvalidArgument("TLS: bad server name: " + OpenSslReason());
    return Status::Ok();
  }

  Status HandshakeFailure(int err) {
    const int saved_errno = errno;
    // Without verification OpenSSL still records what it would have refused; not the cause.
    const long verify = tls_.insecure_skip_verify ? X509_V_OK : SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return Unavailable(std::string("TLS handshake failed: certificate verify failed: ") +
                         X509_verify_cert_error_string(verify));
    }
    if (err == SSL_ERROR_SSL) return Unavailable("TLS handshake failed: " + OpenSslReason());
    ERR_clear_error();
    if (socket_.eof) return Unavailable("TLS handshake failed: the server closed the connection");
    return Unavailable(std::string("TLS handshake failed: ") + std::strerror(saved_errno));
  }

  Status Handshake() {
    if (Status s = SetUpSsl(); !s.ok()) return s;
    for (;;) {
      ERR_clear_error();
      const int r = SSL_connect(ssl_.get());
      if (r == 1) return Status::Ok();
      const int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (Status s = Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, "TLS handshake");
            !s.ok())
          return s;
        continue;
      }
      return HandshakeFailure(err);
    }
  }

  // With TLS 1.3 a server refuses the client's certificate (or its absence) only after the
  // client's handshake completed: its alert is then waiting in the socket when the request
  // write fails on the closed connection. Reads it, if so, for a message that says why.
  std::string PendingAlert() {
    std::array<char, 256> buf;
    size_t n = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
    const bool alert = r != 1 && SSL_get_error(ssl_.get(), r) == SSL_ERROR_SSL && !UnexpectedEof();
    std::string reason = alert ? OpenSslReason() : "";
    ERR_clear_error();
    return reason;
  }

  Status Write(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ERR_clear_error();
      size_t written = 0;
      const int r = SSL_write_ex(ssl_.get(), data.data() + off, data.size() - off, &written);
      if (r == 1) {
        off += written;
        continue;
      }
      const int write_errno = errno;
      const int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (Status s = Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, "sending the request");
            !s.ok())
          return s;
        continue;
      }
      if (err == SSL_ERROR_SSL)
        return Unavailable("TLS error while sending the request: " + OpenSslReason());
      ERR_clear_error();
      if (auto alert = PendingAlert(); !alert.empty())
        return Unavailable("TLS error after the handshake: " + alert);
      return Unavailable(std::string("connection error while sending the request: ") +
                         std::strerror(write_errno));
    }
    return Status::Ok();
  }

  static bool UnexpectedEof() {
    const unsigned long e = ERR_peek_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
  }

  // The connection ended (cleanly when `close_notify`): the response is complete or not.
  StatusOr<HttpResponse> AtEnd(Http1ResponseParser& parser, bool close_notify) {
    if (!close_notify && parser.reads_until_close()) {
      return Unavailable(
          "the connection ended without a closing alert, so the response body (delimited by "
          "the end of the connection) may be cut short");
    }
    if (Status s = parser.Finish(); !s.ok()) return s;
    return parser.Take();
  }

  StatusOr<HttpResponse> Read() {
    Http1ResponseParser parser(req_.max_body_bytes, req_.method == "HEAD");
    std::array<char, kReadBufferBytes> buf;
    for (;;) {
      ERR_clear_error();
      size_t n = 0;
      const int r = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
      if (r == 1) {
        if (Status s = parser.Feed(std::string_view(buf.data(), n)); !s.ok()) return s;
        if (parser.done()) return parser.Take();
        continue;
      }
      const int saved_errno = errno;
      const int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (Status s = Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, "reading the response");
            !s.ok())
          return s;
        continue;
      }
      if (err == SSL_ERROR_ZERO_RETURN) return AtEnd(parser, true);
      if (err == SSL_ERROR_SSL && !UnexpectedEof()) {
        return Unavailable("TLS error while reading the response: " + OpenSslReason());
      }
      if (socket_.eof) {
        ERR_clear_error();
        return AtEnd(parser, false);
      }
      ERR_clear_error();
      return Unavailable(std::string("connection error while reading the response: ") +
                         std::strerror(saved_errno));
    }
  }

  const Clock& clock_;
  SSL_CTX* const ctx_;
  const TlsConfig& tls_;
  const HttpRequest& req_;
  const Target target_;
  const Deadline deadline_;
  // Destroyed in reverse: the SSL (and its BIO, which points at socket_) before the socket.
  Fd fd_;
  SocketState socket_;
  SslPtr ssl_;
};

class OneShotHttpsClient final : public HttpClient {
 public:
  OneShotHttpsClient(const Clock& clock, const TlsConfig& tls, StatusOr<SslCtxPtr> ctx)
      : clock_(clock), tls_(tls), ctx_(std::move(ctx)) {}

  StatusOr<HttpResponse> Send(const HttpRequest& req) override {
    auto result = SendUnprefixed(req);
    if (result.ok()) return result;
    return Status(result.status().code(),
                  req.method + " " + req.url + ": " + result.status().message());
  }

  StatusOr<StreamResult> Stream(const HttpRequest& req) override {
    return Internal(
        req.method + " " + req.url +
        ": streaming is not supported by the one-shot HTTPS client (use NewHttpClient)");
  }

 private:
  StatusOr<HttpResponse> SendUnprefixed(const HttpRequest& req) {
    if (!ctx_.ok()) return ctx_.status();
    auto target = ParseHttpsUrl(req.url);
    if (!target.ok()) return target.status();
    auto request = RenderRequest(req, *target);
    if (!request.ok()) return request.status();
    Exchange exchange(clock_, ctx_->get(), tls_, req, std::move(*target));
    return exchange.Run(*request);
  }

  const Clock& clock_;
  const TlsConfig tls_;
  const StatusOr<SslCtxPtr> ctx_;
};

}  // namespace

std::unique_ptr<HttpClient> NewOneShotHttpsClient(const Clock& clock, const TlsConfig& tls) {
  auto ctx = BuildContext(tls);
  if (!ctx.ok()) spdlog::error("https client: {}", ctx.status().message());
  return std::make_unique<OneShotHttpsClient>(clock, tls, std::move(ctx));
}

}  // namespace kpc::net
