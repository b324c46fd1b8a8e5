#pragma once
// A Kubernetes API client over net::HttpClient: configuration (kubeconfig or in-cluster), JSON
// requests with typed errors, watch streams, client-side rate limiting, throttling (a 429 is
// retried after its Retry-After) and an optional MutationGate that every write must pass right
// before it is sent (kube/mutation_gate.h).
// Thread-safe: one Client is shared by every component of the controller. The rate limit, the
// token-file refresh and the watch idle limit are timed on the Clock given to NewClient, which
// must outlive the client, as must the gate.

#include <chrono>
#include <cstdint>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/status.h"
#include "kube/mutation_gate.h"
#include "net/http.h"

namespace kpc::kube {

struct ClientConfig {
  std::string server;  // https://127.0.0.1:6443
  net::TlsConfig tls;
  std::string bearer_token;       // static token
  std::string bearer_token_file;  // re-read as it rotates (in-cluster service-account token)
  double qps = 20;                // client-side rate limit (token bucket)
  int burst = 40;
  std::string user_agent = "kubelet-policy-controller";
  // Deadline of each ordinary request (watch streams: of the response headers only).
  std::chrono::milliseconds request_timeout{30000};
  // How the rate limiter and throttled retries wait; a real sleep when null (tests advance a
  // FakeClock).
  std::function<void(std::chrono::nanoseconds)> sleep;
};

// How long to wait on a throttled (429) answer: its Retry-After within [min, max], `fallback`
// when it has none (or an unreadable one).
struct ThrottleBounds {
  std::chrono::seconds min{1};
  std::chrono::seconds max{10};
  std::chrono::seconds fallback{1};
};
// The client's own: the API server's priority and fairness asks for 1 s; a worker waits 10 s at
// most per retry, and retries a throttled request at most kMaxThrottledRetries times.
inline constexpr ThrottleBounds kApiThrottle{};
inline constexpr int kMaxThrottledRetries = 3;
// The delta-seconds of a Retry-After header (`headers` with lower-case names, as
// net::HttpResponse has them); nullopt when absent or not delta-seconds (an HTTP date,
// garbage). Pure.
std::optional<std::chrono::seconds> RetryAfterOf(const std::map<std::string, std::string>& headers);
// `retry_after` clamped to [bounds.min, bounds.max]; bounds.fallback when nullopt. Pure.
std::chrono::seconds ThrottleDelay(std::optional<std::chrono::seconds> retry_after,
                                   const ThrottleBounds& bounds);

// Loads a kubeconfig file (current-context unless `context` given): server, CA (data or file),
// client certificate/key (data or file), token / tokenFile. insecure-skip-tls-verify is
// refused unless `allow_insecure`. Errors say which field of which file is wrong.
StatusOr<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context = "",
                                      bool allow_insecure = false);
// In-cluster: KUBERNETES_SERVICE_HOST/PORT, /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}.
StatusOr<ClientConfig> InClusterConfig();
// InClusterConfig with explicit inputs (tests): sa_dir holds token and ca.crt.
StatusOr<ClientConfig> InClusterConfigFrom(const std::string& sa_dir, const std::string& host,
                                           const std::string& port);
// --kubeconfig flag, then $KUBECONFIG, then in-cluster, then ~/.kube/config.
StatusOr<ClientConfig> ResolveConfig(const std::string& kubeconfig_flag, const std::string& context,
                                     bool allow_insecure);

// Error from the API server: Status code mapped from HTTP (404 kNotFound, 409 kConflict or
// kAlreadyExists (reason AlreadyExists), 410 kGone, 422 kInvalidArgument, 429/5xx kUnavailable,
// 401/403 kPermissionDenied) with the server's metav1.Status message.
struct ApiError {
  int http_status = 0;
  std::string reason;  // metav1.Status reason: NotFound, AlreadyExists, Conflict, Expired, ...
  std::string message;
  std::optional<std::chrono::seconds> retry_after;
};

// Outcome of a request: the decoded JSON body, or a Status whose message is the server's
// message (for API errors `api_error` carries the details).
struct Result {
  Status status;
  nlohmann::json body;
  std::optional<ApiError> api_error;
  bool ok() const { return status.ok(); }
};

// One event of a watch stream.
struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  nlohmann::json object;
};

// Writes (Create, Update, Patch, Delete) of a client with a MutationGate are sent only when the
// gate allows it at that moment, each retry asking again; a refusal is the gate's
// kFailedPrecondition and nothing is sent. A 429 answer to any request but GetRaw and Watch is
// retried up to kMaxThrottledRetries times after its Retry-After (kApiThrottle); the last 429 is
// returned as kUnavailable with api_error->retry_after.
class Client {
 public:
  virtual ~Client() = default;

  // path: "/api/v1/nodes", "/apis/kubeletpolicy.io/v1alpha1/kubeletpolicies/x/status" ...
  // query: "labelSelector=a%3Db&limit=500" (already encoded).
  virtual Result Get(const std::string& path, const std::string& query = "") = 0;
  virtual Result Create(const std::string& path, const nlohmann::json& obj) = 0;
  virtual Result Update(const std::string& path, const nlohmann::json& obj) = 0;  // PUT
  // content_type: application/merge-patch+json, application/strategic-merge-patch+json,
  // application/apply-patch+yaml (server-side apply; query should carry fieldManager).
  virtual Result Patch(const std::string& path, const nlohmann::json& patch,
                       const std::string& content_type, const std::string& query = "") = 0;
  virtual Result Delete(const std::string& path, const std::string& query = "") = 0;
  // Raw GET returning the body text (for the node proxy: /api/v1/nodes/n/proxy/configz), of at
  // most `max_body_bytes` (read while it arrives; more is kResourceExhausted).
  // A non-2xx answer is an error Status (code mapped as for API errors) whose message carries
  // the HTTP status and the start of the body; transport failures are kUnavailable /
  // kDeadlineExceeded. A 429 is the exception: not retried, it is returned as the response
  // (status and headers, Retry-After among them), so that a caller with its own schedule
  // decides when to ask again.
  virtual StatusOr<net::HttpResponse> GetRaw(const std::string& path,
                                             std::chrono::milliseconds timeout,
                                             size_t max_body_bytes) = 0;

  // Opens a watch (path + "?watch=1&resourceVersion=...&allowWatchBookmarks=true&timeoutSeconds=N")
  // and calls `on_event` for each event until the stream ends, fails, `on_event` returns false,
  // or `stop` returns true. Returns OK at a clean end; kGone when the server says the
  // resourceVersion is too old (410 or an ERROR event with code 410).
  virtual Status Watch(const std::string& path, const std::string& query,
                       const std::function<bool(const WatchEvent&)>& on_event,
                       const std::function<bool()>& stop) = 0;

  // Counters for /metrics: requests by verb and HTTP code ("GET", "200") -> count.
  virtual std::map<std::pair<std::string, std::string>, uint64_t> RequestCounts() const = 0;
};

// `gate`, when not null, guards every write (see Client); it must outlive the client.
std::unique_ptr<Client> NewClient(const Clock& clock, const ClientConfig& config,
                                  const MutationGate* gate = nullptr);
// Percent-encodes a query parameter value (label selectors, continue tokens, field managers).
std::string QueryEscape(const std::string& value);
// Maps an HTTP error response (body: metav1.Status when the API server wrote it) to an ApiError
// and the Status that Result carries.
ApiError DecodeApiError(const net::HttpResponse& resp);
Status StatusFromApiError(const ApiError& err);
// For tests: a client over a given transport.
std::unique_ptr<Client> NewClientWithTransport(std::shared_ptr<net::HttpClient> transport,
                                               const Clock& clock, const ClientConfig& config,
                                               const MutationGate* gate = nullptr);

}  // namespace kpc::kube
