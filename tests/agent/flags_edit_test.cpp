#include "agent/flags_edit.h"

#include <gtest/gtest.h>

namespace kpc::agent {
namespace {

using nlohmann::json;

policy::FieldMatch M(const std::string& path) {
  auto p = policy::FieldPath::Parse(path);
  EXPECT_TRUE(p.ok());
  auto m = policy::LookupField(*p);
  EXPECT_TRUE(m.has_value()) << path;
  return *m;
}

FlagsEdit Edit(const std::string& content, const std::string& file, const std::string& path,
               const json& v) {
  auto e = SetFlagInFile(content, file, M(path), v);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? *e : FlagsEdit{};
}

const char* kDropIn =
    "# kubelet arguments (simulated node, written by kpc-testenv)\n"
    "[Service]\n"
    "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
    "Environment=\"KUBELET_ARGS=--streaming-connection-idle-timeout=0 "
    "--kubeconfig=/etc/kubernetes/kubelet.conf\"\n";

TEST(FlagsEditTest, DropInValueRewrittenInPlace) {
  FlagsEdit e = Edit(kDropIn, "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
                     "streamingConnectionIdleTimeout", "4h0m0s");
  EXPECT_TRUE(e.changed);
  EXPECT_EQ(e.from, std::optional<std::string>("0"));
  EXPECT_EQ(e.to, "4h0m0s");
  std::string expect = kDropIn;
  expect.replace(expect.find("timeout=0 "), 10, "timeout=4h0m0s ");
  EXPECT_EQ(e.text, expect);
  // Idempotent.
  FlagsEdit again = Edit(e.text, "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
                         "streamingConnectionIdleTimeout", "4h0m0s");
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.text, e.text);
}

TEST(FlagsEditTest, FileWithoutTheFlagIsUnchanged) {
  FlagsEdit e = Edit(kDropIn, "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
                     "eventRecordQPS", 5);
  EXPECT_FALSE(e.changed);
  EXPECT_EQ(e.text, kDropIn);
}

TEST(FlagsEditTest, EnvFileQuotedValue) {
  const std::string env =
      "# kubelet arguments\nKUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\n"
      "KUBELET_ARGS=\"--event-qps=0 --make-iptables-util-chains=false\"\n";
  FlagsEdit e = Edit(env, "/etc/default/kubelet", "eventRecordQPS", 5);
  EXPECT_EQ(e.text,
            "# kubelet arguments\nKUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\n"
            "KUBELET_ARGS=\"--event-qps=5 --make-iptables-util-chains=false\"\n");
  FlagsEdit b = Edit(e.text, "/etc/default/kubelet", "makeIPTablesUtilChains", true);
  EXPECT_EQ(b.text,
            "# kubelet arguments\nKUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\n"
            "KUBELET_ARGS=\"--event-qps=5 --make-iptables-util-chains=true\"\n");
}

TEST(FlagsEditTest, KubeadmFlagsEnvWithSeparateValueWord) {
  const std::string env =
      "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock "
      "--streaming-connection-idle-timeout 0 "
      "--pod-infra-container-image=registry.k8s.io/pause:3.9\"\n";
  FlagsEdit e =
      Edit(env, "/var/lib/kubelet/kubeadm-flags.env", "streamingConnectionIdleTimeout", "5m0s");
  std::string expect = env;
  expect.replace(expect.find("timeout 0 "), 10, "timeout 5m0s ");
  EXPECT_EQ(e.text, expect);
}

TEST(FlagsEditTest, BareBooleanFlagGetsAValue) {
  const std::string env = "KUBELET_ARGS=\"--anonymous-auth --v=2\"\n";
  FlagsEdit e = Edit(env, "/etc/sysconfig/kubelet", "authentication.anonymous.enabled", false);
  EXPECT_EQ(e.text, "KUBELET_ARGS=\"--anonymous-auth=false --v=2\"\n");
  EXPECT_EQ(e.from, std::optional<std::string>("true"));
}

TEST(FlagsEditTest, EveryOccurrenceIsRewritten) {
  const std::string unit =
      "[Service]\nEnvironment=\"A=--event-qps=0\"\nExecStart=/usr/bin/kubelet $A --event-qps=1\n";
  FlagsEdit e = Edit(unit, "/lib/systemd/system/kubelet.service", "eventRecordQPS", 5);
  EXPECT_EQ(
      e.text,
      "[Service]\nEnvironment=\"A=--event-qps=0\"\nExecStart=/usr/bin/kubelet $A --event-qps=5\n");
  // A is not a KUBELET_ variable, so its flag is not the kubelet's: only ExecStart's changes.
  const std::string two =
      "[Service]\nEnvironment=\"KUBELET_A=--event-qps=0\"\nExecStart=/usr/bin/kubelet $KUBELET_A "
      "--event-qps=1\n";
  FlagsEdit t = Edit(two, "/lib/systemd/system/kubelet.service", "eventRecordQPS", 5);
  EXPECT_EQ(t.text,
            "[Service]\nEnvironment=\"KUBELET_A=--event-qps=5\"\nExecStart=/usr/bin/kubelet "
            "$KUBELET_A --event-qps=5\n");
}

TEST(FlagsEditTest, FeatureGatesMapFlag) {
  const std::string env =
      "KUBELET_ARGS=\"--feature-gates=A=true,RotateKubeletServerCertificate=false,B=false\"\n";
  FlagsEdit e =
      Edit(env, "/etc/default/kubelet", "featureGates.RotateKubeletServerCertificate", true);
  EXPECT_EQ(
      e.text,
      "KUBELET_ARGS=\"--feature-gates=A=true,RotateKubeletServerCertificate=true,B=false\"\n");
  EXPECT_EQ(e.from, std::optional<std::string>("false"));
  EXPECT_EQ(e.to, "true");
  // A gate the flag does not name: the config file's gate is merged back, the flag stays.
  FlagsEdit other = Edit(env, "/etc/default/kubelet", "featureGates.SeccompDefault", true);
  EXPECT_FALSE(other.changed);
}

TEST(FlagsEditTest, EvictionHardMapFlagGetsAMissingKey) {
  const std::string env = "KUBELET_ARGS=\"--eviction-hard=memory.available<100Mi\"\n";
  FlagsEdit e = Edit(env, "/etc/default/kubelet", R"(evictionHard["memory.available"])", "200Mi");
  EXPECT_EQ(e.text, "KUBELET_ARGS=\"--eviction-hard=memory.available<200Mi\"\n");
  // The flag replaces the whole map, so a key it lacks is added to it.
  FlagsEdit add = Edit(env, "/etc/default/kubelet", R"(evictionHard["nodefs.available"])", "10%");
  EXPECT_TRUE(add.changed);
  EXPECT_EQ(add.text,
            "KUBELET_ARGS=\"--eviction-hard=memory.available<100Mi,nodefs.available<10%\"\n");
}

TEST(FlagsEditTest, PercentIsRefusedInUnitFilesOnly) {
  const std::string unit =
      "[Service]\nEnvironment=\"KUBELET_ARGS=--eviction-hard=memory.available<100Mi\"\n";
  auto e = SetFlagInFile(unit, "/etc/systemd/system/kubelet.service.d/20.conf",
                         M(R"(evictionHard["nodefs.available"])"), "10%");
  EXPECT_FALSE(e.ok());
}

TEST(FlagsEditTest, ValuesThatNeedQuotingAreRefused) {
  const std::string env = "KUBELET_ARGS=\"--client-ca-file=/a\"\n";
  auto e = SetFlagInFile(env, "/etc/default/kubelet", M("authentication.x509.clientCAFile"),
                         "$(HOME)/ca");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("client-ca-file"), std::string::npos);
  auto s = SetFlagInFile(env, "/etc/default/kubelet", M("authentication.x509.clientCAFile"), "a b");
  EXPECT_FALSE(s.ok());
}

TEST(FlagsEditTest, QuotedFlagValuesAreRefusedNotMangled) {
  const std::string env = "KUBELET_ARGS=--event-qps='0'\n";
  auto e = SetFlagInFile(env, "/etc/default/kubelet", M("eventRecordQPS"), 5);
  EXPECT_FALSE(e.ok());
}

TEST(FlagsEditTest, CommentedFlagsAreNotTouched) {
  const std::string env = "# KUBELET_ARGS=\"--event-qps=0\"\nKUBELET_ARGS=\"--event-qps=1\"\n";
  FlagsEdit e = Edit(env, "/etc/default/kubelet", "eventRecordQPS", 5);
  EXPECT_EQ(e.text, "# KUBELET_ARGS=\"--event-qps=0\"\nKUBELET_ARGS=\"--event-qps=5\"\n");
}

TEST(FlagsEditTest, OverrideDetection) {
  std::vector<policy::KubeletFlag> flags = {{"feature-gates", std::string("A=true"), ""},
                                            {"event_qps", std::string("0"), ""}};
  EXPECT_TRUE(FlagsOverrideField(flags, M("featureGates.A")));
  EXPECT_FALSE(FlagsOverrideField(flags, M("featureGates.B")));
  EXPECT_TRUE(FlagsOverrideField(flags, M("eventRecordQPS")));
  EXPECT_FALSE(FlagsOverrideField(flags, M("streamingConnectionIdleTimeout")));
}

TEST(FlagsEditTest, FlagValueText) {
  EXPECT_EQ(FlagValueText(true, *M("authentication.anonymous.enabled").field), "true");
  EXPECT_EQ(FlagValueText(json::array({"A", "B"}), *M("tlsCipherSuites").field), "A,B");
  EXPECT_EQ(FlagValueText(json{{"memory.available", "1Gi"}}, *M("evictionHard").field),
            "memory.available<1Gi");
  EXPECT_EQ(FlagValueText(json{{"A", true}}, *M("featureGates").field), "A=true");
}

}  // namespace
}  // namespace kpc::agent

namespace kpc::agent {
namespace {

TEST(FlagsEditFuzzTest, MutatedFilesEditCorrectlyOrFail) {
  const std::string base =
      "[Service]\nEnvironment=\"KUBELET_ARGS=--event-qps=0 --feature-gates=A=true,B=false\"\n"
      "ExecStart=/usr/bin/kubelet $KUBELET_ARGS \\\n  --event-qps 1 --anonymous-auth\n";
  const std::string alphabet = " =-\"'\\\n#;$%,<x";
  uint32_t seed = 777;
  auto rnd = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  int edited = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string doc = base;
    for (int m = 0, n = 1 + static_cast<int>(rnd(3)); m < n; ++m) {
      size_t at = rnd(static_cast<uint32_t>(doc.size()));
      if (rnd(2) == 0) {
        doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at),
                   alphabet[rnd(static_cast<uint32_t>(alphabet.size()))]);
      } else {
        doc.erase(at, 1 + rnd(3));
      }
    }
    const char* paths[] = {"eventRecordQPS", "featureGates.B", "authentication.anonymous.enabled"};
    const json values[] = {5, true, false};
    size_t k = rnd(3);
    auto e =
        SetFlagInFile(doc, "/etc/systemd/system/kubelet.service.d/10.conf", M(paths[k]), values[k]);
    if (!e.ok() || !e->changed) continue;
    ++edited;
    auto before = policy::ParseKubeletFlags(doc, "10.conf");
    auto after = policy::ParseKubeletFlags(e->text, "10.conf");
    ASSERT_TRUE(before.ok() && after.ok()) << e->text;
    ASSERT_EQ(before->size(), after->size()) << "from:\n" << doc << "\nto:\n" << e->text;
  }
  EXPECT_GT(edited, 100);
}

}  // namespace
}  // namespace kpc::agent
