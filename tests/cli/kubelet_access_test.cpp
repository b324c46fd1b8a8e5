#include "cli/kubelet_access.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../kube/fake_client.h"

namespace kpc::cli {
namespace {

TEST(KubeletAccessTest, ServiceAccountReferences) {
  struct Case {
    std::string ref;
    std::string ns, name;  // empty: an error
  };
  const std::vector<Case> cases = {
      {"reader", "home", "reader"},
      {"other/reader", "other", "reader"},
      {"kubelet-policy-controller-kubelet-client", "home", "kubelet-policy-controller-kubelet-client"},
      {"", "", ""},
      {"/reader", "", ""},
      {"ns/", "", ""},
      {"a/b/c", "", ""},
      {"Reader", "", ""},
      {"-r", "", ""},
      {std::string(64, 'a'), "", ""},
  };
  for (const auto& c : cases) {
    auto got = ParseServiceAccountRef(c.ref, "home");
    if (c.name.empty()) {
      EXPECT_FALSE(got.ok()) << c.ref;
      if (!got.ok()) {
        EXPECT_NE(got.status().message().find("is not NAME or NAMESPACE/NAME"), std::string::npos);
      }
    } else {
      ASSERT_TRUE(got.ok()) << c.ref << ": " << got.status().message();
      EXPECT_EQ(got->first, c.ns);
      EXPECT_EQ(got->second, c.name);
    }
  }
}

class KubeletAccessFromTest : public ::testing::Test {
 protected:
  StatusOr<controller::ConfigzAccess> From(const RunFlags& f) {
    return KubeletAccessFrom(f, api_, kube_, clock_);
  }
  FakeClock clock_;
  kube::testing::FakeKube kube_;
  kube::ClientConfig api_;
};

TEST_F(KubeletAccessFromTest, ProxyModeNeedsNothingElse) {
  RunFlags f;
  f.configz_source = "apiserver-proxy";
  f.kubelet_ca_file = "/nonexistent";  // not read in this mode
  auto a = From(f);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->source, controller::ConfigzSourceKind::kApiserverProxy);
  EXPECT_EQ(a->kubelet_http, nullptr);
}

TEST_F(KubeletAccessFromTest, KubeletModeByDefaultWithATokenOfTheReaderServiceAccount) {
  ::unsetenv("POD_NAMESPACE");
  auto a = From(RunFlags{});
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->source, controller::ConfigzSourceKind::kKubelet);
  ASSERT_NE(a->kubelet_http, nullptr);
  ASSERT_NE(a->kubelet_tokens, nullptr);
  EXPECT_EQ(a->kubelet_tokens->Describe(),
            "ServiceAccount kubelet-policy-system/kubelet-policy-controller-kubelet-client");
  EXPECT_EQ(a->kubelet.preferred_address_types,
            (std::vector<std::string>{"InternalIP", "ExternalIP", "Hostname"}));
  ::setenv("POD_NAMESPACE", "kps", 1);
  a = From(RunFlags{});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kubelet_tokens->Describe(), "ServiceAccount kps/kubelet-policy-controller-kubelet-client");
  ::unsetenv("POD_NAMESPACE");

  RunFlags own;
  own.kubelet_client_service_account = "";
  api_.bearer_token = "mine";
  a = From(own);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a->kubelet_tokens->Token(), "mine");
}

TEST_F(KubeletAccessFromTest, TheCaFileMustHoldACertificate) {
  RunFlags f;
  f.kubelet_ca_file = "/nonexistent/ca.crt";
  auto a = From(f);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message(), "--kubelet-certificate-authority: cannot read /nonexistent/ca.crt");

  const auto path = std::filesystem::temp_directory_path() / ("kpc-ca-" + std::to_string(::getpid()));
  std::ofstream(path) << "not a certificate";
  f.kubelet_ca_file = path.string();
  a = From(f);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message(), "--kubelet-certificate-authority: " + path.string() + " holds no PEM certificate");
  std::ofstream(path) << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  EXPECT_TRUE(From(f).ok());
  std::filesystem::remove(path);

  RunFlags bad;
  bad.kubelet_client_service_account = "Not/Valid";
  EXPECT_FALSE(From(bad).ok());
}

}  // namespace
}  // namespace kpc::cli
