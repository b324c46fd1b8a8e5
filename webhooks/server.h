#pragma once
// The admission webhook HTTPS server: /validate-kubeletpolicy and /mutate-kubeletpolicy over
// net::HttpServer (TLS 1.2+, strict HTTP/1.1, the limits of WebhookServerOptions), answered by
// webhooks/admission.h, with metrics (requests refused before a handler ran among them); plus the
// pieces that feed it a serving certificate (from a directory or from the self-managed Secret) and
// the conflict check over an informer cache of KubeletPolicies.
//
// Threading: every class here is safe for concurrent use. Request latency is measured on the
// server's Clock, which must outlive it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/metrics.h"
#include "net/http.h"
#include "policy/parse_cache.h"
#include "base/status.h"
#include "webhooks/admission.h"
#include "webhooks/certs.h"

namespace kpc::webhooks {

// Limits of the admission server, sized to the webhook Deployment's memory limit (256 MiB,
// deploy/base/deployment-webhook.yaml and the Helm chart's webhook.resources):
//
//   the process without connections (libraries, API client, policy cache)   ~  30 MiB
//   + max_connections x 88 KiB per connection (measured: a TLS connection
//     with a 15 KiB head pending; 56 KiB when idle): 256 x 88 KiB             ~  22 MiB
//   + max_body_bytes_in_flight x 50 (the worst measured ratio of memory held
//     while AdmissionReviews are parsed to their size: reviews made of
//     "{},{},..." — 3 MiB alone peaks at +123 MiB, 4 x 1 MiB at once +196 MiB) ~ 150 MiB
//   = ~202 MiB: 54 MiB (21%) under the limit.
//
// So the budget is one body of the largest size the API server sends (3 MiB): ~300 ordinary
// reviews (~10 KB) at once, or one of the largest; past it the answer is 503 with Retry-After,
// never an out-of-memory kill. A smaller memory limit needs smaller values here.
struct WebhookServerOptions {
  std::string address = ":9443";
  // A body over this is refused with 400 ("request body too large: the limit is N bytes")
  // before it is read. The API server never sends more than 3 MiB (kMaxRequestBytes).
  size_t max_body_bytes = kMaxRequestBytes;
  size_t max_body_bytes_in_flight = kMaxRequestBytes;
  int max_connections = 256;
  // The handshake and each request (head and body) must arrive whole within these, however
  // slowly a client trickles. 30 s is the longest timeoutSeconds a webhook configuration may
  // set: a request the API server still waits for is never cut.
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  // The API server keeps connections to webhooks alive between calls.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
};

class WebhookServer {
 public:
  // `conflicts` may be null; it, `metrics` and `clock` must outlive the server.
  WebhookServer(Registry& metrics, const ConflictChecker* conflicts, const Clock& clock,
                WebhookServerOptions options);
  ~WebhookServer();

  // Starts serving with `pair` on the first call; later calls hot-reload the certificate when
  // it changed (connections already open keep theirs). An invalid pair is refused and the
  // current one stays in use.
  Status SetServingPair(const KeyPairPem& pair);
  bool Serving() const { return serving_.load(); }
  int port() const;
  void Stop();

  // The HTTP handlers, exposed for tests (no TLS needed).
  net::HttpResponse HandleForTest(const std::string& path, const net::ServerRequest& req) {
    return Serve(path, req);
  }

 private:
  net::HttpResponse Serve(const std::string& path, const net::ServerRequest& req);

  const WebhookServerOptions options_;
  const ConflictChecker* conflicts_;
  const Clock& clock_;
  CounterFamily& requests_;
  HistogramFamily& latency_;
  CounterFamily& input_rejected_;
  CounterFamily& reloads_;
  const std::function<void(net::RefusalReason)> refusals_;
  mutable std::mutex mu_;
  std::unique_ptr<net::HttpServer> server_;
  std::string current_fingerprint_;
  std::atomic<bool> serving_{false};
};

// Where a replica gets its serving pair: nullopt while there is none yet.
using PairSource = std::function<StatusOr<std::optional<KeyPairPem>>()>;

// tls.crt + tls.key in `dir` (a mounted Secret: cert-manager's, or any other).
PairSource DirPairSource(const std::string& dir);

// Polls `source` every `period` on its own thread and hands each new pair to `server`.
class CertReloader {
 public:
  CertReloader(PairSource source, WebhookServer& server, std::chrono::milliseconds period);
  ~CertReloader();
  void Start();
  void Stop();
  // One poll (also used by tests); returns what went wrong, if anything.
  Status PollOnce();

 private:
  PairSource source_;
  WebhookServer& server_;
  const std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::string last_error_;
};

// ConflictChecker over a list of KubeletPolicy objects (an informer cache). Objects are parsed
// through `parses`, so each policy is parsed once per resourceVersion however many reviews
// compare with it; invalid ones are skipped.
class CachedConflictChecker final : public ConflictChecker {
 public:
  CachedConflictChecker(std::function<std::vector<nlohmann::json>()> list, kpc::policy::PolicyParseCache& parses);
  std::vector<std::string> Conflicts(const kpc::policy::KubeletPolicy& p) const override;

 private:
  std::function<std::vector<nlohmann::json>()> list_;
  kpc::policy::PolicyParseCache& parses_;
};

}  // namespace kpc::webhooks
