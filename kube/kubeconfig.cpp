// kubeconfig and in-cluster configuration. yaml-cpp exceptions are caught here; every error
// names the file and the field that is wrong.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "kube/client.h"

namespace kpc::kube {
namespace {

namespace fs = std::filesystem;

StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(what + ": cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Standard base64 (whitespace ignored); nullopt on invalid input.
std::optional<std::string> Base64Decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    if (padding) return std::nullopt;
    int v = val(c);
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  return out;
}

std::string Str(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key] || !n[key].IsScalar()) return "";
  return n[key].as<std::string>();
}

// Finds `name` in a kubeconfig list (clusters/users/contexts) and returns its inner map.
YAML::Node FindNamed(const YAML::Node& root, const char* list, const char* inner, const std::string& name) {
  const YAML::Node items = root[list];
  if (!items || !items.IsSequence()) return YAML::Node();
  for (const auto& item : items) {
    if (item.IsMap() && Str(item, "name") == name) return item[inner];
  }
  return YAML::Node();
}

// Data field (base64) wins over the file field; files are relative to the kubeconfig's dir.
StatusOr<std::string> DataOrFile(const YAML::Node& node, const char* data_key, const char* file_key,
                                 const fs::path& dir, const std::string& where) {
  std::string data = Str(node, data_key);
  if (!data.empty()) {
    auto decoded = Base64Decode(data);
    if (!decoded) return InvalidArgument(where + "." + data_key + ": not valid base64");
    return *decoded;
  }
  std::string file = Str(node, file_key);
  if (file.empty()) return std::string();
  fs::path p(file);
  if (p.is_relative()) p = dir / p;
  return ReadFile(p.string(), where + "." + file_key);
}

bool Truthy(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key]) return false;
  try {
    return n[key].as<bool>();
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

StatusOr<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context, bool allow_insecure) {
  auto text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("kubeconfig " + path + ": not valid YAML: " + e.what());
  }
  try {
    if (!root.IsMap()) return InvalidArgument("kubeconfig " + path + ": not a YAML mapping");
    fs::path dir = fs::absolute(fs::path(path)).parent_path();
    std::string ctx_name = context.empty() ? Str(root, "current-context") : context;
    if (ctx_name.empty()) return InvalidArgument("kubeconfig " + path + ": no current-context and no context given");
    YAML::Node ctx = FindNamed(root, "contexts", "context", ctx_name);
    if (!ctx || !ctx.IsMap()) return InvalidArgument("kubeconfig " + path + ": context \"" + ctx_name + "\" not found");
    std::string cluster_name = Str(ctx, "cluster");
    std::string user_name = Str(ctx, "user");
    YAML::Node cluster = FindNamed(root, "clusters", "cluster", cluster_name);
    if (!cluster || !cluster.IsMap())
      return InvalidArgument("kubeconfig " + path + ": cluster \"" + cluster_name + "\" of context \"" + ctx_name +
                             "\" not found");
    ClientConfig cfg;
    std::string where = "kubeconfig " + path + ": clusters[" + cluster_name + "]";
    cfg.server = Str(cluster, "server");
    while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
    if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0)
      return InvalidArgument(where + ".server: must be an http(s) URL, got \"" + cfg.server + "\"");
    auto ca = DataOrFile(cluster, "certificate-authority-data", "certificate-authority", dir, where);
    if (!ca.ok()) return ca.status();
    cfg.tls.ca_pem = *ca;
    cfg.tls.server_name = Str(cluster, "tls-server-name");
    if (Truthy(cluster, "insecure-skip-tls-verify")) {
      if (!allow_insecure)
        return InvalidArgument(where +
                               ".insecure-skip-tls-verify: refusing to skip TLS verification (pass the "
                               "insecure flag to allow it)");
      cfg.tls.insecure_skip_verify = true;
    }
    if (!user_name.empty()) {
      YAML::Node user = FindNamed(root, "users", "user", user_name);
      std::string uwhere = "kubeconfig " + path + ": users[" + user_name + "]";
      if (!user || !user.IsMap()) return InvalidArgument(uwhere + ": not found (context \"" + ctx_name + "\")");
      {
        if (user["exec"] || user["auth-provider"])
          return InvalidArgument(uwhere + ": exec / auth-provider credentials are not supported; use a token or "
                                          "client certificate");
        auto cert = DataOrFile(user, "client-certificate-data", "client-certificate", dir, uwhere);
        if (!cert.ok()) return cert.status();
        auto key = DataOrFile(user, "client-key-data", "client-key", dir, uwhere);
        if (!key.ok()) return key.status();
        if (cert->empty() != key->empty())
          return InvalidArgument(uwhere + ": client certificate and client key must be given together");
        cfg.tls.client_cert_pem = *cert;
        cfg.tls.client_key_pem = *key;
        cfg.bearer_token = Str(user, "token");
        std::string token_file = Str(user, "tokenFile");
        if (!token_file.empty()) {
          fs::path p(token_file);
          if (p.is_relative()) p = dir / p;
          cfg.bearer_token_file = p.string();
          if (cfg.bearer_token.empty()) {
            auto tok = ReadFile(cfg.bearer_token_file, uwhere + ".tokenFile");
            if (!tok.ok()) return tok.status();
          }
        }
        if (!Str(user, "username").empty() && cfg.bearer_token.empty() && cfg.tls.client_cert_pem.empty())
          return InvalidArgument(uwhere + ": basic auth (username/password) is not supported");
      }
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return InvalidArgument("kubeconfig " + path + ": " + e.what());
  }
}

StatusOr<ClientConfig> InClusterConfigFrom(const std::string& sa_dir, const std::string& host,
                                           const std::string& port) {
  if (host.empty() || port.empty())
    return Status(StatusCode::kNotFound, "not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
  ClientConfig cfg;
  cfg.server = host.find(':') != std::string::npos ? "https://[" + host + "]:" + port : "https://" + host + ":" + port;
  cfg.bearer_token_file = sa_dir + "/token";
  auto tok = ReadFile(cfg.bearer_token_file, "in-cluster service-account token");
  if (!tok.ok()) return tok.status();
  auto ca = ReadFile(sa_dir + "/ca.crt", "in-cluster CA");
  if (!ca.ok()) return ca.status();
  cfg.tls.ca_pem = *ca;
  return cfg;
}

StatusOr<ClientConfig> InClusterConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  return InClusterConfigFrom("/var/run/secrets/kubernetes.io/serviceaccount", host ? host : "", port ? port : "");
}

StatusOr<ClientConfig> ResolveConfig(const std::string& kubeconfig_flag, const std::string& context,
                                     bool allow_insecure) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(kubeconfig_flag, context, allow_insecure);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    // Only the first file of a list: merging kubeconfigs is not supported.
    std::string first(env);
    first = first.substr(0, first.find(':'));
    if (!first.empty()) return LoadKubeconfig(first, context, allow_insecure);
  }
  auto in_cluster = InClusterConfig();
  if (in_cluster.ok() || in_cluster.status().code() != StatusCode::kNotFound) return in_cluster;
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string path = std::string(home) + "/.kube/config";
    if (fs::exists(path)) return LoadKubeconfig(path, context, allow_insecure);
  }
  return Status(StatusCode::kNotFound,
                "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, run in a cluster, or create "
                "~/.kube/config");
}

}  // namespace kpc::kube
