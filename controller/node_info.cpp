#include "controller/node_info.h"

namespace kpc::controller {
namespace {

// Node addresses kept for reaching the kubelet: the first 16 string entries with a short type
// and address (a Node lists a handful; the bounds only cap what a hostile one could make us keep).
nlohmann::json KeptAddresses(const nlohmann::json& addresses) {
  constexpr size_t kMaxAddresses = 16, kMaxField = 256;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : addresses) {
    if (out.size() >= kMaxAddresses) break;
    if (!a.is_object() || !a.contains("type") || !a.contains("address")) continue;
    const auto& t = a["type"];
    const auto& v = a["address"];
    if (!t.is_string() || !v.is_string() || t.get_ref<const std::string&>().size() > kMaxField ||
        v.get_ref<const std::string&>().size() > kMaxField) {
      continue;
    }
    out.push_back({{"type", t}, {"address", v}});
  }
  return out;
}

}  // namespace

nlohmann::json TransformNode(const nlohmann::json& node) {
  nlohmann::json out = nlohmann::json::object();
  if (!node.is_object()) return out;
  const auto& md = node.value("metadata", nlohmann::json::object());
  nlohmann::json m = nlohmann::json::object();
  for (const char* k : {"name", "uid", "resourceVersion", "labels"}) {
    if (md.contains(k)) m[k] = md[k];
  }
  out["metadata"] = m;
  const auto& st = node.value("status", nlohmann::json::object());
  nlohmann::json s = nlohmann::json::object();
  if (st.contains("nodeInfo") && st["nodeInfo"].is_object() && st["nodeInfo"].contains("kubeletVersion")) {
    s["nodeInfo"]["kubeletVersion"] = st["nodeInfo"]["kubeletVersion"];
  }
  if (st.contains("addresses") && st["addresses"].is_array()) {
    s["addresses"] = KeptAddresses(st["addresses"]);
  }
  if (st.contains("daemonEndpoints") && st["daemonEndpoints"].is_object()) {
    const auto& de = st["daemonEndpoints"];
    if (de.contains("kubeletEndpoint") && de["kubeletEndpoint"].is_object() &&
        de["kubeletEndpoint"].contains("Port") && de["kubeletEndpoint"]["Port"].is_number_integer()) {
      s["daemonEndpoints"]["kubeletEndpoint"]["Port"] = de["kubeletEndpoint"]["Port"];
    }
  }
  if (st.contains("conditions") && st["conditions"].is_array()) {
    for (const auto& c : st["conditions"]) {
      if (c.is_object() && c.value("type", "") == "Ready") {
        s["conditions"] = nlohmann::json::array({{{"type", "Ready"}, {"status", c.value("status", "Unknown")}}});
      }
    }
  }
  out["status"] = s;
  return out;
}

std::optional<int> MinorOfVersion(const std::string& version) {
  // "v1.34.10", "v1.30.2-eks-1552ad0"
  auto dot = version.find('.');
  if (dot == std::string::npos) return std::nullopt;
  int minor = 0;
  size_t i = dot + 1;
  if (i >= version.size() || !std::isdigit(static_cast<unsigned char>(version[i]))) return std::nullopt;
  while (i < version.size() && std::isdigit(static_cast<unsigned char>(version[i])) && minor < 1000) {
    minor = minor * 10 + (version[i++] - '0');
  }
  return minor;
}

NodeInfo NodeInfoFromJson(const nlohmann::json& node) {
  NodeInfo n;
  if (!node.is_object()) return n;
  const auto& md = node.value("metadata", nlohmann::json::object());
  n.name = md.value("name", "");
  n.uid = md.value("uid", "");
  if (md.contains("labels") && md["labels"].is_object()) {
    for (const auto& [k, v] : md["labels"].items()) {
      if (v.is_string()) n.labels[k] = v.get<std::string>();
    }
  }
  const auto& st = node.value("status", nlohmann::json::object());
  if (st.contains("nodeInfo") && st["nodeInfo"].is_object()) {
    n.kubelet_version = st["nodeInfo"].value("kubeletVersion", "");
    n.kubelet_minor = MinorOfVersion(n.kubelet_version);
  }
  if (st.contains("conditions") && st["conditions"].is_array()) {
    for (const auto& c : st["conditions"]) {
      if (c.is_object() && c.value("type", "") == "Ready") n.ready = c.value("status", "") == "True";
    }
  }
  return n;
}

ConfigzResult ConfigzResultFrom(const StatusOr<std::string>& fetch, policy::ShapeLimits limits) {
  ConfigzResult r;
  if (!fetch.ok()) {
    const Status& s = fetch.status();
    switch (s.code()) {
      case StatusCode::kDeadlineExceeded: r.reason = "Timeout"; break;
      case StatusCode::kPermissionDenied: r.reason = "Forbidden"; break;
      case StatusCode::kNotFound: r.reason = "NotFound"; break;
      case StatusCode::kUnavailable: r.reason = "Unreachable"; break;
      case StatusCode::kResourceExhausted: r.reason = "TooLarge"; break;
      default: r.reason = "Error"; break;
    }
    r.message = "configz unavailable (" + r.reason + "): " + s.message();
    if (r.reason == "TooLarge") {
      r.limit = policy::InputLimitName(policy::InputLimit::kBytes);
      r.message += " (the limit is --configz-max-bytes)";
    }
    return r;
  }
  // The limits first, so that the reason says which one refused the body.
  if (auto refused = policy::CheckJsonShape(*fetch, limits, "/configz")) {
    const bool bytes = refused->limit == policy::InputLimit::kBytes;
    r.reason = bytes ? "TooLarge" : "Malformed";
    r.message =
        (bytes ? "configz unavailable (TooLarge): " : "configz malformed: ") + refused->message;
    r.limit = policy::InputLimitName(refused->limit);
    return r;
  }
  auto cfg = policy::EffectiveConfigFromConfigz(*fetch, limits);
  if (!cfg.ok()) {
    r.reason = "Malformed";
    r.message = "configz malformed: " + cfg.status().message();
    return r;
  }
  r.ok = true;
  r.config = std::make_shared<const policy::EffectiveConfig>(std::move(*cfg));
  return r;
}

ConfigzResult ThrottledConfigzResult(const std::string& who, const net::HttpResponse& response) {
  ConfigzResult r;
  r.reason = kThrottledReason;
  r.retry_after = kube::ThrottleDelay(kube::RetryAfterOf(response.headers), kConfigzThrottle);
  r.message = "configz unavailable (Throttled): " + who + " answered HTTP " +
              std::to_string(response.status) + " Too Many Requests: asking again in " +
              std::to_string(r.retry_after.count()) + " s; the node keeps its last result";
  return r;
}

ConfigzResult FetchNodeConfigz(kube::Client& client, const std::string& node,
                               std::chrono::milliseconds timeout, size_t max_body_bytes) {
  auto resp = client.GetRaw("/api/v1/nodes/" + node + "/proxy/configz", timeout, max_body_bytes);
  if (resp.ok() && resp->status == 429) {
    return ThrottledConfigzResult("the API server's node proxy", *resp);
  }
  return ConfigzResultFrom(
      resp.ok() ? StatusOr<std::string>(resp->body) : StatusOr<std::string>(resp.status()),
      {max_body_bytes, policy::kMaxNestingDepth});
}

void NodeCheckStore::Put(const std::string& node, ConfigzResult r) {
  std::lock_guard<std::mutex> lock(mu_);
  results_[node] = std::move(r);
}

std::optional<ConfigzResult> NodeCheckStore::Get(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = results_.find(node);
  if (it == results_.end()) return std::nullopt;
  return it->second;
}

void NodeCheckStore::Erase(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  results_.erase(node);
}

size_t NodeCheckStore::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return results_.size();
}

}  // namespace kpc::controller
