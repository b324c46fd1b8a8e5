// kubeconfig / in-cluster loading from temporary files.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kube/client.h"

namespace kpc::kube {
namespace {

namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kpc-kubeconfig-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "certs");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& rel, const std::string& text) {
    auto p = dir_ / rel;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

// base64 of "CA-PEM", "CERT-PEM", "KEY-PEM"
constexpr const char* kCaB64 = "Q0EtUEVN";
constexpr const char* kCertB64 = "Q0VSVC1QRU0=";
constexpr const char* kKeyB64 = "S0VZLVBFTQ==";

TEST_F(KubeconfigTest, DataFieldsAndCurrentContext) {
  std::string path = Write("config", std::string(R"(apiVersion: v1
kind: Config
current-context: admin@test
clusters:
- name: other
  cluster: {server: "https://other:6443"}
- name: test
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: )") + kCaB64 + R"(
users:
- name: admin
  user:
    client-certificate-data: )" + kCertB64 + R"(
    client-key-data: )" + kKeyB64 + R"(
contexts:
- name: admin@test
  context: {cluster: test, user: admin}
- name: other
  context: {cluster: other, user: admin}
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:6443");
  EXPECT_EQ(cfg->tls.ca_pem, "CA-PEM");
  EXPECT_EQ(cfg->tls.client_cert_pem, "CERT-PEM");
  EXPECT_EQ(cfg->tls.client_key_pem, "KEY-PEM");
  EXPECT_FALSE(cfg->tls.insecure_skip_verify);

  auto other = LoadKubeconfig(path, "other");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->server, "https://other:6443");

  auto missing = LoadKubeconfig(path, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("context \"nope\" not found"), std::string::npos);
}

TEST_F(KubeconfigTest, FileFieldsAreRelativeToTheKubeconfig) {
  Write("certs/ca.crt", "CA-FROM-FILE");
  Write("certs/client.crt", "CERT-FROM-FILE");
  Write("certs/client.key", "KEY-FROM-FILE");
  Write("token", "tok-from-file\n");
  std::string path = Write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority: certs/ca.crt, tls-server-name: kubernetes}}]
users:
- name: u
  user: {client-certificate: certs/client.crt, client-key: certs/client.key, tokenFile: token}
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->tls.ca_pem, "CA-FROM-FILE");
  EXPECT_EQ(cfg->tls.client_cert_pem, "CERT-FROM-FILE");
  EXPECT_EQ(cfg->tls.client_key_pem, "KEY-FROM-FILE");
  EXPECT_EQ(cfg->tls.server_name, "kubernetes");
  EXPECT_EQ(cfg->bearer_token_file, (dir_ / "token").string());
}

TEST_F(KubeconfigTest, StaticToken) {
  std::string path = Write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443"}}]
users: [{name: u, user: {token: abc.def}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->bearer_token, "abc.def");
  EXPECT_TRUE(cfg->tls.ca_pem.empty());
}

TEST_F(KubeconfigTest, InsecureIsRefusedUnlessAllowed) {
  std::string path = Write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  auto refused = LoadKubeconfig(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("insecure-skip-tls-verify"), std::string::npos);
  auto allowed = LoadKubeconfig(path, "", /*allow_insecure=*/true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_TRUE(allowed->tls.insecure_skip_verify);
}

TEST_F(KubeconfigTest, ErrorsNameTheFieldAndFile) {
  struct Case {
    std::string yaml, expect;
  };
  std::vector<Case> cases = {
      {"{{{ not yaml", "not valid YAML"},
      {"- a list", "not a YAML mapping"},
      {"clusters: []", "no current-context"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]", "cluster \"k\""},
      {"current-context: c\nclusters: [{name: k, cluster: {server: k:6443}}]\ncontexts: [{name: c, context: {cluster: k}}]",
       "server: must be an http(s) URL"},
      {"current-context: c\nclusters: [{name: k, cluster: {server: 'https://k', certificate-authority-data: '!!!'}}]\n"
       "contexts: [{name: c, context: {cluster: k}}]",
       "certificate-authority-data: not valid base64"},
      {"current-context: c\nclusters: [{name: k, cluster: {server: 'https://k', certificate-authority: /nonexistent/ca}}]\n"
       "contexts: [{name: c, context: {cluster: k}}]",
       "certificate-authority: cannot read /nonexistent/ca"},
      {"current-context: c\nclusters: [{name: k, cluster: {server: 'https://k'}}]\n"
       "users: [{name: u, user: {exec: {command: aws}}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]",
       "exec / auth-provider"},
      {"current-context: c\nclusters: [{name: k, cluster: {server: 'https://k'}}]\n"
       "users: [{name: u, user: {client-certificate-data: Q0E=}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]",
       "must be given together"},
      {"current-context: c\nclusters: [{name: k, cluster: {server: 'https://k'}}]\ncontexts: [{name: c, context: {cluster: k, user: ghost}}]",
       "users[ghost]: not found"},
  };
  for (const auto& c : cases) {
    std::string path = Write("config", c.yaml);
    auto cfg = LoadKubeconfig(path);
    ASSERT_FALSE(cfg.ok()) << c.yaml;
    EXPECT_NE(cfg.status().message().find(c.expect), std::string::npos) << cfg.status().message();
    EXPECT_NE(cfg.status().message().find(path), std::string::npos) << cfg.status().message();
  }
  auto missing = LoadKubeconfig((dir_ / "missing").string());
  EXPECT_FALSE(missing.ok());
}

TEST_F(KubeconfigTest, InClusterConfigFromServiceAccountDir) {
  Write("certs/token", "sa-token");
  Write("certs/ca.crt", "SA-CA");
  auto cfg = InClusterConfigFrom((dir_ / "certs").string(), "10.96.0.1", "443");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->tls.ca_pem, "SA-CA");
  EXPECT_EQ(cfg->bearer_token_file, (dir_ / "certs/token").string());
  auto v6 = InClusterConfigFrom((dir_ / "certs").string(), "fd00::1", "443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->server, "https://[fd00::1]:443");
  auto outside = InClusterConfigFrom((dir_ / "certs").string(), "", "");
  EXPECT_EQ(outside.status().code(), StatusCode::kNotFound);
}

TEST_F(KubeconfigTest, ResolvePrefersTheFlag) {
  std::string path = Write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://flag:6443"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  auto cfg = ResolveConfig(path, "", false);
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server, "https://flag:6443");
}

}  // namespace
}  // namespace kpc::kube
