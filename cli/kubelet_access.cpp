#include "cli/kubelet_access.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "kube/token_source.h"
#include "net/http.h"

namespace kpc::cli {
namespace {

constexpr size_t kMaxCaFileBytes = 1u << 20;
constexpr const char* kDefaultNamespace = "kubelet-policy-system";

bool DnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

StatusOr<std::string> ReadCaFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("--kubelet-certificate-authority: cannot read " + path);
  std::string data(kMaxCaFileBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxCaFileBytes) {
    return InvalidArgument("--kubelet-certificate-authority: " + path + " is larger than 1 MiB");
  }
  if (data.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgument("--kubelet-certificate-authority: " + path +
                           " holds no PEM certificate");
  }
  return data;
}

StatusOr<net::TlsConfig> KubeletTls(const RunFlags& f, const kube::ClientConfig& api) {
  net::TlsConfig tls;
  if (f.kubelet_insecure_tls) {
    tls.insecure_skip_verify = true;
    spdlog::warn(
        "--kubelet-insecure-tls: kubelet serving certificates are NOT verified; a node can send "
        "the controller anywhere and be believed. Use it only for self-signed kubelet "
        "certificates, and prefer --kubelet-certificate-authority");
  } else if (!f.kubelet_ca_file.empty()) {
    auto ca = ReadCaFile(f.kubelet_ca_file);
    if (!ca.ok()) return ca.status();
    tls.ca_pem = std::move(*ca);
  } else {
    tls.ca_pem = api.tls.ca_pem;  // serverTLSBootstrap: the cluster CA signs kubelet certificates
  }
  if (f.kubelet_client_service_account.empty()) {
    // The controller's own identity: a client certificate works with the kubelet's x509
    // authentication (clientCAFile), like a token with its webhook authentication.
    tls.client_cert_pem = api.tls.client_cert_pem;
    tls.client_key_pem = api.tls.client_key_pem;
  }
  return tls;
}

}  // namespace

StatusOr<std::pair<std::string, std::string>> ParseServiceAccountRef(std::string_view ref,
                                                                     std::string_view default_ns) {
  std::string_view ns = default_ns, name = ref;
  if (auto slash = ref.find('/'); slash != std::string_view::npos) {
    ns = ref.substr(0, slash);
    name = ref.substr(slash + 1);
  }
  if (!DnsLabel(ns) || !DnsLabel(name)) {
    return InvalidArgument("--kubelet-client-service-account: \"" + std::string(ref.substr(0, 200)) +
                           "\" is not NAME or NAMESPACE/NAME (lower-case DNS labels)");
  }
  return std::pair<std::string, std::string>(ns, name);
}

StatusOr<controller::ConfigzAccess> KubeletAccessFrom(const RunFlags& f,
                                                      const kube::ClientConfig& api,
                                                      kube::Client& client, const Clock& clock) {
  controller::ConfigzAccess access;
  auto kind = controller::ParseConfigzSource(f.configz_source);
  if (!kind.ok()) return kind.status();
  access.source = *kind;
  if (access.source == controller::ConfigzSourceKind::kApiserverProxy) {
    spdlog::info("configz source: the API server's node proxy (needs get nodes/proxy)");
    return access;
  }
  auto types = controller::ParseAddressTypes(f.kubelet_address_types);
  if (!types.ok()) return types.status();
  access.kubelet.preferred_address_types = std::move(*types);
  access.kubelet.user_agent = api.user_agent;
  auto tls = KubeletTls(f, api);
  if (!tls.ok()) return tls.status();
  access.kubelet_http = net::NewOneShotHttpsClient(clock, *tls);
  if (f.kubelet_client_service_account.empty()) {
    access.kubelet_tokens = kube::NewClientConfigTokenSource(api, clock);
  } else {
    const char* pod_ns = std::getenv("POD_NAMESPACE");
    auto sa = ParseServiceAccountRef(f.kubelet_client_service_account,
                                     pod_ns && *pod_ns ? pod_ns : kDefaultNamespace);
    if (!sa.ok()) return sa.status();
    access.kubelet_tokens =
        kube::NewServiceAccountTokenSource(client, clock, {sa->first, sa->second});
  }
  spdlog::info("configz source: each kubelet directly (address types {}; {}; credentials: {})",
               f.kubelet_address_types,
               f.kubelet_insecure_tls ? "serving certificates NOT verified"
               : f.kubelet_ca_file.empty() ? "serving certificates verified with the API server's CA"
                                           : "serving certificates verified with " + f.kubelet_ca_file,
               access.kubelet_tokens->Describe());
  return access;
}

}  // namespace kpc::cli
