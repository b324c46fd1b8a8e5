#pragma once
// The project's own small HTTP interfaces. cpprestsdk lives behind them (net/cpprest/), so that
// no pplx, web::json or utility::string_t type appears anywhere else and the implementation can
// be replaced. Implementations are safe for concurrent use from many threads. Their timeouts
// are real I/O deadlines: a single wait uses the timeout as is, a deadline spanning several
// waits is read on the Clock given at construction, which must outlive the client or server
// and every stream a client returns.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/metrics.h"
#include "base/status.h"

namespace kpc::net {

struct TlsConfig {
  std::string ca_pem;            // trust these CAs; empty = system roots
  std::string client_cert_pem;   // client certificate chain (mutual TLS); empty = none
  std::string client_key_pem;
  bool insecure_skip_verify = false;  // only when the user asked for it explicitly
  std::string server_name;       // SNI / verification name override; empty = from URL
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute: https://127.0.0.1:6443/api/v1/nodes?limit=500
  std::map<std::string, std::string> headers;
  std::string body;
  std::chrono::milliseconds timeout{30000};  // whole request (non-streaming)
  // The most of a response body Send reads (and Stream, of an error answer's body): enforced
  // while the body arrives, so memory never holds more. A larger body — or a Content-Length
  // that announces one — fails the request with kResourceExhausted and closes the connection.
  size_t max_body_bytes = 16u << 20;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A streaming response body read line by line (watch streams are newline-delimited JSON).
class LineStream {
 public:
  virtual ~LineStream() = default;
  // Next line without the trailing newline; nullopt at the end of the stream; an error Status
  // when the connection failed or `idle_timeout` passed with no byte received.
  virtual StatusOr<std::optional<std::string>> ReadLine(std::chrono::milliseconds idle_timeout) = 0;
  // Aborts the stream from another thread; a blocked ReadLine returns promptly.
  virtual void Cancel() = 0;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Transport failures are kUnavailable / kDeadlineExceeded; a body over max_body_bytes is
  // kResourceExhausted; any HTTP status is a response. Redirects are not followed.
  virtual StatusOr<HttpResponse> Send(const HttpRequest& req) = 0;
  // Starts a request whose body is read incrementally. Non-2xx statuses are returned as a
  // complete HttpResponse in `error_response` with a null stream.
  struct StreamResult {
    int status = 0;
    std::unique_ptr<LineStream> stream;
    std::optional<HttpResponse> error_response;
  };
  virtual StatusOr<StreamResult> Stream(const HttpRequest& req) = 0;
};

// cpprestsdk-backed client for one base URL's TLS settings.
std::unique_ptr<HttpClient> NewHttpClient(const Clock& clock, const TlsConfig& tls);

// An HTTPS client for many hosts that are each called now and then (OpenSSL and POSIX
// sockets, net/openssl/). One request per connection: every Send resolves the host (system
// resolver), connects, handshakes, sends the request with `Connection: close` and reads the
// response until it ends, then closes the socket — nothing stays open between requests.
// The TLS context is built once from `tls` and shared by all requests (TLS 1.2 minimum, no
// compression or renegotiation, no session cache): a CA given in `ca_pem` is the only trust
// anchor, the system roots are read (once) only when it is empty; `server_name` replaces the
// URL host as the verified name and SNI (IP literals are verified against IP SANs and sent
// without SNI). `req.timeout` bounds the whole exchange, the name lookup included.
// https URLs only; the Host header is the URL's authority unless the request sets one; header
// names and values with CR or LF are refused; the client sets Connection and Content-Length
// itself. A TLS verification failure's message says "certificate verify failed" and why. A
// TLS configuration that cannot be loaded fails every Send with kInvalidArgument. Stream() is
// not supported (an error). Thread-safe.
std::unique_ptr<HttpClient> NewOneShotHttpsClient(const Clock& clock, const TlsConfig& tls);

// A minimal HTTP server: /healthz, /readyz, /metrics and the admission webhooks.
struct ServerRequest {
  std::string method;
  std::string path;   // without query
  std::string query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};
using Handler = std::function<HttpResponse(const ServerRequest&)>;

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  virtual void Handle(const std::string& path, Handler handler) = 0;  // exact path match
  virtual Status Start() = 0;  // binds; returns an error when the address is in use
  virtual void Stop() = 0;
  virtual int port() const = 0;  // the bound port (useful with port 0)
  // Hot reload of the serving certificate (TLS servers only): new handshakes use `tls`
  // (client_cert_pem / client_key_pem / ca_pem as for NewHttpServer) at once; connections
  // already established keep the certificate they were opened with, so no request is dropped.
  // An invalid pair is refused with an error and the current one stays in use.
  virtual Status UpdateTls(const TlsConfig& tls) = 0;
};

// Why a server refused a request or a connection (the `reason` label of a refusal metric).
enum class RefusalReason {
  kTlsHandshake,      // the TLS handshake failed (protocol, cipher suite, client certificate)
  kHandshakeTimeout,  // the TLS handshake did not finish within handshake_timeout
  kRequestTimeout,    // a request did not arrive whole within request_timeout (408)
  kConnectionLimit,   // max_connections reached (plain HTTP: 503)
  kBodyBudget,        // max_body_bytes_in_flight reached (503 + Retry-After)
  kBodyTooLarge,      // a body over max_body_bytes (413 or body_too_large_status)
  kBodyNotAllowed,    // a body where allow_body is false (413)
  kMethodNotAllowed,  // a method outside allowed_methods (405)
  kHeaderTooLarge,    // a header line, the header count or the whole head over its limit (431)
  kUriTooLong,        // the request line over its limit (414)
  kMalformed,         // bad syntax or ambiguous framing, e.g. Content-Length and chunked (400)
  kTransferEncoding,  // a transfer coding other than exactly "chunked" (501)
  kHttpVersion,       // an HTTP version other than 1.0 and 1.1 (505)
};
// "tls_handshake", "handshake_timeout", "request_timeout", ...: the enumerator in snake case.
const char* RefusalReasonName(RefusalReason reason);
// A ServerOptions::on_refusal that counts refusals in `metrics` as
// kubeletpolicy_http_requests_refused_total{server="<server>", reason="<RefusalReasonName>"},
// every reason exported at zero from the start. `metrics` must outlive the function.
std::function<void(RefusalReason)> RefusalCounter(Registry& metrics, const std::string& server);
// Every reason, for exporting a zero for each up front.
inline constexpr RefusalReason kAllRefusalReasons[] = {
    RefusalReason::kTlsHandshake,   RefusalReason::kHandshakeTimeout,
    RefusalReason::kRequestTimeout, RefusalReason::kConnectionLimit,
    RefusalReason::kBodyBudget,     RefusalReason::kBodyTooLarge,
    RefusalReason::kBodyNotAllowed, RefusalReason::kMethodNotAllowed,
    RefusalReason::kHeaderTooLarge, RefusalReason::kUriTooLong,
    RefusalReason::kMalformed,      RefusalReason::kTransferEncoding,
    RefusalReason::kHttpVersion,
};

// Bounds on a request head (request line + header fields), enforced while it is read. The
// trailer section of a chunked body is held to the same line, count and total bounds.
struct HeadLimits {
  size_t max_request_line_bytes = 8 * 1024;  // 414 past it
  size_t max_header_line_bytes = 8 * 1024;   // 431 past it
  size_t max_header_count = 100;             // 431 past it
  size_t max_head_bytes = 64 * 1024;         // request line + fields + CRLFs; 431 past it
};

// Limits of a server. Every refusal is a plain-text answer naming the limit, sent before the
// body is read, and then the connection is closed: after a refused request the server can no
// longer trust where the next one starts.
//
// Memory: each connection holds a thread, its TLS state and buffers of at most
// head.max_head_bytes + 16 KiB while a head is read; bodies are held whole, and all bodies
// being read or handled at one time are at most max_body_bytes_in_flight bytes together. A
// server's memory is therefore bounded by
//   max_connections x (per-connection cost + max_head_bytes + 16 KiB) + max_body_bytes_in_flight
//   x (what a handler needs per body byte)
// which the caller sizes to its container's memory limit (webhooks/server.h does the sum).
struct ServerOptions {
  size_t max_body_bytes = 32u << 20;
  // The status for a body over max_body_bytes: 413 (Payload Too Large) unless a protocol on
  // top asks for its own (the admission webhooks answer every unreadable request with 400).
  int body_too_large_status = 413;
  // Bytes of request bodies being read or handled across all connections. A request whose
  // body would go past it is answered 503 with Retry-After (retry_after_seconds) at once,
  // without reading the body. Raised to max_body_bytes when smaller, so that any body within
  // max_body_bytes can be served when the server is otherwise idle.
  size_t max_body_bytes_in_flight = 64u << 20;
  int retry_after_seconds = 1;
  // Connections, TLS handshakes included. At the limit a new connection takes the slot of the
  // one that has waited longest (at least 1 s) on its peer — in its handshake, before its first
  // request, or in a request not yet arrived whole — which is closed: clients that stall
  // cannot keep prompt ones out until their deadlines. With no such one, the new connection is
  // closed at once (plain HTTP: after a 503). Connections idle between requests or being
  // answered are never closed for another.
  int max_connections = 256;
  HeadLimits head;
  // Empty: any method. Otherwise others are answered 405 with an Allow header.
  std::vector<std::string> allowed_methods;
  // False: a request with any body (Content-Length over 0, or chunked) is answered 413.
  bool allow_body = true;
  // Absolute deadlines, however slowly the peer trickles bytes. The TLS handshake must end
  // within handshake_timeout of accept. A connection's first request must start within
  // request_timeout of the handshake, later ones within idle_timeout of the previous answer
  // (else the connection is closed without an answer); each request must then arrive whole,
  // head and body, within request_timeout of its first byte (else 408). An answer must be
  // sent within write_timeout.
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds write_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  // Called on the connection's thread after each refusal (the answer, if any, already sent).
  // Must be thread-safe and must not throw. Empty: not called.
  std::function<void(RefusalReason)> on_refusal;
};

// `address` like "127.0.0.1:8080" or ":8080" or "0.0.0.0:0"; plain HTTP unless tls given.
// For TLS, `tls.client_cert_pem` / `tls.client_key_pem` are the server's own chain and key;
// a non-empty `tls.ca_pem` requires client certificates signed by it. TLS 1.3, and TLS 1.2
// with ECDHE key exchange and AEAD ciphers only (AES-GCM, ChaCha20-Poly1305); no
// renegotiation, no compression. Requests are parsed as strict HTTP/1.1 (RFC 9112): a
// Content-Length with a Transfer-Encoding, a repeated Content-Length, bare CR or LF, obsolete
// line folding or a malformed chunk are refused (400); a transfer coding other than exactly
// "chunked" is refused (501).
std::unique_ptr<HttpServer> NewHttpServer(const Clock& clock, const std::string& address,
                                          std::optional<TlsConfig> tls = std::nullopt,
                                          ServerOptions options = {});

}  // namespace kpc::net
