#pragma once
// Where each node's live kubelet configuration (/configz) is read from, and how an answer is
// classified into a ConfigzResult.
// - kubelet (the default): GET https://ADDRESS:PORT/configz on the kubelet itself. ADDRESS is
//   the Node's first status.addresses entry of the first preferred type that has one, PORT is
//   status.daemonEndpoints.kubeletEndpoint.Port (10250 when unset). The kubelet authenticates
//   the bearer token (TokenReview) and authorizes `get nodes/configz` (KubeletFineGrainedAuthz,
//   on by default since Kubernetes 1.33), then `get nodes/proxy`. Every kubelet sees the token,
//   so it is a credential that can do no more than read /configz (kube/token_source.h).
// - apiserver-proxy (opt-in): GET /api/v1/nodes/NAME/proxy/configz through the API server,
//   which requires `get nodes/proxy` — exec-equivalent, since the kubelet's exec/attach
//   WebSocket handshake is a GET.
// Either way a 429 (the kubelet, or the API server's priority and fairness) is reason Throttled
// with the bounded Retry-After (ThrottledConfigzResult in node_info.h).
// Sources are thread-safe; what they reference must outlive them.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "controller/node_info.h"
#include "kube/client.h"
#include "kube/store.h"
#include "kube/token_source.h"
#include "net/http.h"

namespace kpc::controller {

enum class ConfigzSourceKind { kKubelet, kApiserverProxy };
std::string_view ConfigzSourceName(ConfigzSourceKind kind);  // "kubelet", "apiserver-proxy"
StatusOr<ConfigzSourceKind> ParseConfigzSource(std::string_view name);

// Node address types, as in Node status.addresses.
inline const std::vector<std::string> kNodeAddressTypes = {"Hostname", "InternalIP", "ExternalIP",
                                                           "InternalDNS", "ExternalDNS"};
// A comma-separated, non-empty list of distinct kNodeAddressTypes. Pure.
StatusOr<std::vector<std::string>> ParseAddressTypes(std::string_view list);

struct KubeletEndpoint {
  std::string host;  // an IP address or a DNS name (checked: no scheme, path, user or port)
  int port = 10250;
  std::string address_type;
  // https://HOST:PORT/configz (IPv6 addresses in brackets).
  std::string ConfigzUrl() const;
};

// The kubelet endpoint of a Node object (as the informer keeps it: see TransformNode). Pure.
StatusOr<KubeletEndpoint> KubeletEndpointOf(const nlohmann::json& node,
                                            const std::vector<std::string>& preferred_types);

// Classifies a direct fetch from `endpoint` made with `credentials` (whose, for messages). Pure.
// Reasons: Timeout, Unreachable, TLSError, Unauthorized (401), Forbidden (403), Throttled (429,
// with retry_after), Error (other statuses), TooLarge (a body over `max_body_bytes`), Malformed
// (a body that is not configz); each message says what to do.
ConfigzResult KubeletConfigzResult(const KubeletEndpoint& endpoint,
                                   const StatusOr<net::HttpResponse>& response,
                                   std::string_view credentials,
                                   size_t max_body_bytes = policy::kConfigzLimits.max_bytes);

class ConfigzSource {
 public:
  virtual ~ConfigzSource() = default;
  virtual ConfigzSourceKind kind() const = 0;
  // One fetch, classified (the caller stamps the check times).
  virtual ConfigzResult Fetch(const std::string& node, std::chrono::milliseconds timeout) = 0;
};

// Through the API server's node proxy, reading at most `max_body_bytes` of each answer.
std::unique_ptr<ConfigzSource> NewApiserverProxySource(
    kube::Client& client, size_t max_body_bytes = policy::kConfigzLimits.max_bytes);

struct KubeletSourceOptions {
  std::vector<std::string> preferred_address_types = {"InternalIP", "ExternalIP", "Hostname"};
  std::string user_agent = "kubelet-policy-controller";
  size_t max_body_bytes =
      policy::kConfigzLimits.max_bytes;  // of each answer, read while it arrives
};
// Straight to each kubelet: `nodes` is the Node cache, `http` carries the kubelet TLS settings
// (CA or explicit insecure mode), `tokens` the bearer tokens sent.
std::unique_ptr<ConfigzSource> NewKubeletSource(const kube::Store& nodes,
                                                std::shared_ptr<net::HttpClient> http,
                                                std::shared_ptr<kube::TokenSource> tokens,
                                                KubeletSourceOptions options);

}  // namespace kpc::controller
