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

#include "base/clock.h"
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

// Limits of a server. A request body over max_body_bytes is answered (413 by default) with a
// plain-text message naming the limit, before the body is read; connections over max_connections are
// closed at once (plain HTTP: after a 503).
struct ServerOptions {
  size_t max_body_bytes = 32u << 20;
  // The status for a body over max_body_bytes: 413 (Payload Too Large) unless a protocol on
  // top asks for its own (the admission webhooks answer every unreadable request with 400).
  int body_too_large_status = 413;
  int max_connections = 256;
};

// `address` like "127.0.0.1:8080" or ":8080" or "0.0.0.0:0"; plain HTTP unless tls given.
// For TLS, `tls.client_cert_pem` / `tls.client_key_pem` are the server's own chain and key;
// a non-empty `tls.ca_pem` requires client certificates signed by it. TLS 1.2 and later only.
std::unique_ptr<HttpServer> NewHttpServer(const Clock& clock, const std::string& address,
                                          std::optional<TlsConfig> tls = std::nullopt,
                                          ServerOptions options = {});

}  // namespace kpc::net
