// The /configz sources: the kubelet itself (default) and the API server's node proxy.

#include "controller/configz_source.h"

#include <algorithm>
#include <cctype>

namespace kpc::controller {
namespace {

constexpr size_t kMaxHostBytes = 253;   // a DNS name's limit; IPv6 text is far shorter
constexpr size_t kMaxSnippetBytes = 200;  // of a kubelet's error body, in messages

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The start of an error body on one line, printable ASCII only.
std::string Snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kMaxSnippetBytes)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : ' ');
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// An IP address or DNS name as a Node may publish it: letters, digits, '.', '-', and ':' for
// IPv6 (then hex digits, ':' and '.' only). Nothing that could change the URL's meaning.
bool ValidHost(std::string_view h) {
  if (h.empty() || h.size() > kMaxHostBytes || h.front() == '-' || h.front() == '.') return false;
  const bool v6 = h.find(':') != std::string_view::npos;
  for (char c : h) {
    const auto u = static_cast<unsigned char>(c);
    if (v6) {
      if (!std::isxdigit(u) && c != ':' && c != '.') return false;
    } else if (!std::isalnum(u) && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

ConfigzResult Failed(std::string reason, std::string message) {
  ConfigzResult r;
  r.reason = std::move(reason);
  r.message = "configz unavailable (" + r.reason + "): " + message;
  return r;
}

bool LooksLikeTlsFailure(std::string_view message) {
  const std::string m = Lower(message);
  for (const char* needle : {"certificate", "handshake", "ssl", "tls", "wrong version number"}) {
    if (m.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string Address(const KubeletEndpoint& ep) {
  return ep.address_type + " " + ep.host + ":" + std::to_string(ep.port);
}

class ApiserverProxySource final : public ConfigzSource {
 public:
  ApiserverProxySource(kube::Client& client, size_t max_body_bytes)
      : client_(client), max_body_bytes_(max_body_bytes) {}
  ConfigzSourceKind kind() const override { return ConfigzSourceKind::kApiserverProxy; }

  ConfigzResult Fetch(const std::string& node, std::chrono::milliseconds timeout) override {
    ConfigzResult r = FetchNodeConfigz(client_, node, timeout, max_body_bytes_);
    if (r.reason == "Forbidden") {
      r.message += " — the API server's node proxy needs `get nodes/proxy` "
                   "(deploy/components/apiserver-proxy); the default --configz-source kubelet "
                   "needs only `get nodes/configz`";
    }
    return r;
  }

 private:
  kube::Client& client_;
  const size_t max_body_bytes_;
};

class KubeletSource final : public ConfigzSource {
 public:
  KubeletSource(const kube::Store& nodes, std::shared_ptr<net::HttpClient> http,
                std::shared_ptr<kube::TokenSource> tokens, KubeletSourceOptions options)
      : nodes_(nodes), http_(std::move(http)), tokens_(std::move(tokens)), options_(std::move(options)) {}
  ConfigzSourceKind kind() const override { return ConfigzSourceKind::kKubelet; }

  ConfigzResult Fetch(const std::string& node, std::chrono::milliseconds timeout) override {
    auto obj = nodes_.Get(node);
    if (!obj) return Failed("NotFound", "node " + node + " is not in the cache (deleted?)");
    auto endpoint = KubeletEndpointOf(*obj, options_.preferred_address_types);
    if (!endpoint.ok()) return Failed("NoAddress", endpoint.status().message());
    auto token = tokens_->Token();
    if (!token.ok()) return Failed("NoCredentials", token.status().message());
    net::HttpRequest req;
    req.url = endpoint->ConfigzUrl();
    req.timeout = timeout;
    req.max_body_bytes = options_.max_body_bytes;
    req.headers["Accept"] = "application/json";
    req.headers["User-Agent"] = options_.user_agent;
    if (!token->empty()) req.headers["Authorization"] = "Bearer " + *token;
    auto resp = http_->Send(req);
    if (resp.ok() && resp->status == 401) tokens_->Invalidate();
    return KubeletConfigzResult(*endpoint, resp, tokens_->Describe(), options_.max_body_bytes);
  }

 private:
  const kube::Store& nodes_;
  const std::shared_ptr<net::HttpClient> http_;
  const std::shared_ptr<kube::TokenSource> tokens_;
  const KubeletSourceOptions options_;
};

}  // namespace

std::string_view ConfigzSourceName(ConfigzSourceKind kind) {
  return kind == ConfigzSourceKind::kKubelet ? "kubelet" : "apiserver-proxy";
}

StatusOr<ConfigzSourceKind> ParseConfigzSource(std::string_view name) {
  if (name == "kubelet") return ConfigzSourceKind::kKubelet;
  if (name == "apiserver-proxy") return ConfigzSourceKind::kApiserverProxy;
  return InvalidArgument("unknown configz source \"" + Snippet(name.substr(0, 64)) +
                         "\": use kubelet (direct, needs get nodes/configz) or apiserver-proxy "
                         "(needs get nodes/proxy)");
}

StatusOr<std::vector<std::string>> ParseAddressTypes(std::string_view list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (std::find(kNodeAddressTypes.begin(), kNodeAddressTypes.end(), item) == kNodeAddressTypes.end()) {
      return InvalidArgument("unknown node address type \"" + Snippet(item.substr(0, 64)) +
                             "\": use a comma-separated list of Hostname, InternalIP, ExternalIP, "
                             "InternalDNS, ExternalDNS");
    }
    if (std::find(out.begin(), out.end(), item) != out.end()) {
      return InvalidArgument("node address type " + std::string(item) + " is listed twice");
    }
    out.emplace_back(item);
    pos = end + 1;
  }
  return out;
}

std::string KubeletEndpoint::ConfigzUrl() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/configz";
}

StatusOr<KubeletEndpoint> KubeletEndpointOf(const nlohmann::json& node,
                                            const std::vector<std::string>& preferred_types) {
  const nlohmann::json* status = node.is_object() && node.contains("status") ? &node["status"] : nullptr;
  const nlohmann::json* addresses =
      status && status->is_object() && status->contains("addresses") ? &(*status)["addresses"] : nullptr;
  std::string seen;
  KubeletEndpoint ep;
  for (const auto& type : preferred_types) {
    if (!addresses || !addresses->is_array()) break;
    for (const auto& a : *addresses) {
      if (!a.is_object() || !a.contains("type") || !a["type"].is_string() || a["type"] != type) continue;
      if (!a.contains("address") || !a["address"].is_string()) continue;
      const auto& host = a["address"].get_ref<const std::string&>();
      if (!ValidHost(host)) {
        return InvalidArgument("the node's " + type + " address \"" + Snippet(host.substr(0, 64)) +
                               "\" is not an IP address or DNS name");
      }
      ep.host = host;
      ep.address_type = type;
      break;
    }
    if (!ep.host.empty()) break;
  }
  if (ep.host.empty()) {
    std::string want;
    for (const auto& t : preferred_types) want += (want.empty() ? "" : ", ") + t;
    return NotFound("the node has no address of a preferred type (" + want +
                    "): check its status.addresses or --kubelet-preferred-address-types");
  }
  const nlohmann::json* port = nullptr;
  if (status->contains("daemonEndpoints") && (*status)["daemonEndpoints"].is_object()) {
    const auto& de = (*status)["daemonEndpoints"];
    if (de.contains("kubeletEndpoint") && de["kubeletEndpoint"].is_object() &&
        de["kubeletEndpoint"].contains("Port")) {
      port = &de["kubeletEndpoint"]["Port"];
    }
  }
  if (port && port->is_number_integer()) {
    const int64_t p = port->get<int64_t>();
    if (p < 0 || p > 65535) {
      return InvalidArgument("the node's kubelet port " + std::to_string(p) + " is out of range");
    }
    if (p != 0) ep.port = static_cast<int>(p);
  }
  return ep;
}

ConfigzResult KubeletConfigzResult(const KubeletEndpoint& endpoint,
                                   const StatusOr<net::HttpResponse>& response,
                                   std::string_view credentials, size_t max_body_bytes) {
  const std::string at = "the kubelet at " + Address(endpoint);
  const policy::ShapeLimits limits{max_body_bytes, policy::kMaxNestingDepth};
  if (!response.ok()) {
    const Status& s = response.status();
    if (s.code() == StatusCode::kDeadlineExceeded) return Failed("Timeout", at + ": " + s.message());
    if (s.code() == StatusCode::kResourceExhausted) {
      return ConfigzResultFrom(Status(s.code(), at + ": " + s.message()), limits);
    }
    if (LooksLikeTlsFailure(s.message())) {
      return Failed("TLSError",
                    at + ": TLS failed (" + Snippet(s.message()) +
                        "): --kubelet-certificate-authority must name the CA that signs kubelet "
                        "serving certificates (with serverTLSBootstrap, the cluster CA); "
                        "self-signed kubelet certificates need --kubelet-insecure-tls");
    }
    return Failed("Unreachable", at + ": " + s.message());
  }
  const net::HttpResponse& resp = *response;
  if (resp.status == 429) return ThrottledConfigzResult(at, resp);
  if (resp.status == 401) {
    return Failed("Unauthorized",
                  at + " did not accept " + std::string(credentials) + " (401: " + Snippet(resp.body) +
                      "): the kubelet must check bearer tokens with the API server "
                      "(authentication.webhook.enabled: true)");
  }
  if (resp.status == 403) {
    return Failed("Forbidden",
                  at + " refused nodes/configz to " + std::string(credentials) + " (403: " +
                      Snippet(resp.body) +
                      "): grant it `get nodes/configz` (deploy/base/rbac.yaml); the kubelet "
                      "needs authorization.mode Webhook and the KubeletFineGrainedAuthz feature "
                      "(on by default since Kubernetes 1.33); for older kubelets use "
                      "--configz-source apiserver-proxy");
  }
  if (resp.status < 200 || resp.status > 299) {
    return Failed("Error", at + " answered HTTP " + std::to_string(resp.status) + ": " + Snippet(resp.body));
  }
  return ConfigzResultFrom(StatusOr<std::string>(resp.body), limits);
}

std::unique_ptr<ConfigzSource> NewApiserverProxySource(kube::Client& client,
                                                       size_t max_body_bytes) {
  return std::make_unique<ApiserverProxySource>(client, max_body_bytes);
}

std::unique_ptr<ConfigzSource> NewKubeletSource(const kube::Store& nodes, std::shared_ptr<net::HttpClient> http,
                                                std::shared_ptr<kube::TokenSource> tokens,
                                                KubeletSourceOptions options) {
  return std::make_unique<KubeletSource>(nodes, std::move(http), std::move(tokens), std::move(options));
}

}  // namespace kpc::controller
