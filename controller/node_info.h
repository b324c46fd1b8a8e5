#pragma once
// What the controller keeps of a Node (informer transform) and of its last /configz check.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "kube/client.h"
#include "policy/effective_config.h"
#include "policy/limits.h"

namespace kpc::controller {

// Informer transform: keeps metadata (name, uid, resourceVersion, labels), the kubelet version,
// the Ready condition, the addresses (at most 16) and the kubelet port; drops images, volumes,
// allocatable and the rest.
nlohmann::json TransformNode(const nlohmann::json& node);

struct NodeInfo {
  std::string name;
  std::string uid;
  std::map<std::string, std::string> labels;
  std::string kubelet_version;        // "v1.34.10"
  std::optional<int> kubelet_minor;   // 34
  bool ready = false;
};
NodeInfo NodeInfoFromJson(const nlohmann::json& node);
std::optional<int> MinorOfVersion(const std::string& version);

// The reason of an answer that asked us to slow down (HTTP 429): throttling, not a fact about
// the node. The compliance controller keeps the node's last check and asks again after
// ConfigzResult::retry_after.
inline constexpr const char* kThrottledReason = "Throttled";
// A throttled /configz answer's Retry-After: 1 s to 10 min, 10 s when it has none.
inline constexpr kube::ThrottleBounds kConfigzThrottle{
    std::chrono::seconds(1), std::chrono::seconds(600), std::chrono::seconds(10)};

// The outcome of one /configz fetch. Copies share the parsed configuration.
struct ConfigzResult {
  bool ok = false;
  // When ok: the configuration, parsed once when it was fetched and shared, immutable, by every
  // policy that selects the node (their evaluations are cached per node).
  std::shared_ptr<const policy::EffectiveConfig> config;
  // when !ok: Unreachable, Timeout, Forbidden, Malformed, TooLarge, Throttled, Error
  std::string reason;
  std::string message;             // when !ok: what happened, for status and Events
  // When a limit refused the body (TooLarge: "bytes"; Malformed: "depth"), its
  // policy::InputLimitName, for kubeletpolicy_input_rejected_total; else empty.
  std::string limit;
  std::chrono::seconds retry_after{0};  // Throttled: when to ask again (kConfigzThrottle)
  int64_t checked_unix = 0;
  std::chrono::steady_clock::time_point checked_at;
  std::chrono::nanoseconds latency{0};
};

// Classifies a fetch: the body parsed when `fetch` is ok — TooLarge over limits.max_bytes,
// Malformed when it nests deeper than limits.max_depth or does not parse — else the error
// mapped to a reason (kResourceExhausted: TooLarge).
ConfigzResult ConfigzResultFrom(const StatusOr<std::string>& fetch,
                                policy::ShapeLimits limits = policy::kConfigzLimits);
// A 429 answer from `who` ("the kubelet at ...", "the API server's node proxy"): reason
// Throttled, retry_after from its Retry-After within kConfigzThrottle. Pure.
ConfigzResult ThrottledConfigzResult(const std::string& who, const net::HttpResponse& response);
// GET /api/v1/nodes/<node>/proxy/configz through the API server, reading at most
// `max_body_bytes` of the answer, classified as above (a 429: ThrottledConfigzResult; the
// caller stamps the check times).
ConfigzResult FetchNodeConfigz(kube::Client& client, const std::string& node,
                               std::chrono::milliseconds timeout,
                               size_t max_body_bytes = policy::kConfigzLimits.max_bytes);

// Latest check per node. Thread-safe.
class NodeCheckStore {
 public:
  void Put(const std::string& node, ConfigzResult r);
  std::optional<ConfigzResult> Get(const std::string& node) const;
  void Erase(const std::string& node);
  size_t Size() const;  // nodes with a check

 private:
  mutable std::mutex mu_;
  std::map<std::string, ConfigzResult> results_;
};

}  // namespace kpc::controller
