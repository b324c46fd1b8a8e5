#include "policy/effective_config.h"

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "policy/field_path.h"

namespace kpc::policy {
namespace {

using nlohmann::json;

std::string ReadShared(const std::string& name) {
  std::ifstream in(std::string(KPC_SHARED_DATA_DIR) + "/kubelet/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json* At(const EffectiveConfig& ec, const std::string& path) {
  auto p = FieldPath::Parse(path);
  EXPECT_TRUE(p.ok()) << path;
  return p.ok() ? p->Find(ec.config) : nullptr;
}

json Value(const EffectiveConfig& ec, const std::string& path) {
  const json* v = At(ec, path);
  return v == nullptr ? json("<absent>") : *v;
}

// Source as the header defines it: no entry means the primary input.
ValueSource SourceOf(const EffectiveConfig& ec, const std::string& path) {
  auto it = ec.sources.find(path);
  if (it != ec.sources.end()) return it->second;
  return ec.live ? ValueSource::kConfigz : ValueSource::kConfigFile;
}

std::vector<KubeletFlag> Flags(std::string_view content, std::string_view name = "test.env") {
  auto flags = ParseKubeletFlags(content, name);
  EXPECT_TRUE(flags.ok()) << flags.status().message();
  return flags.ok() ? *flags : std::vector<KubeletFlag>{};
}

std::string Dump(const std::vector<KubeletFlag>& flags) {
  std::string out;
  for (const auto& f : flags) {
    out += f.name + (f.value ? "=" + *f.value : "") + " @" + f.origin + "\n";
  }
  return out;
}

bool HasWarningContaining(const EffectiveConfig& ec, const std::string& text) {
  for (const auto& w : ec.warnings) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

// ----------------------------------------------------------------------------- /configz

TEST(ConfigzTest, ParsesTheSharedSamples) {
  for (const char* name : {"configz-kubeadm-v1.28.json", "configz-eks-v1.30-al2023.json",
                           "configz-k8s-docs-crio-local-up-cluster.json"}) {
    SCOPED_TRACE(name);
    auto ec = EffectiveConfigFromConfigz(ReadShared(name));
    ASSERT_TRUE(ec.ok()) << ec.status().message();
    EXPECT_TRUE(ec->live);
    EXPECT_TRUE(ec->sources.empty());
    EXPECT_EQ(Value(*ec, "streamingConnectionIdleTimeout"), "4h0m0s");
    EXPECT_EQ(SourceOf(*ec, "streamingConnectionIdleTimeout"), ValueSource::kConfigz);
  }
  auto eks = EffectiveConfigFromConfigz(ReadShared("configz-eks-v1.30-al2023.json"));
  ASSERT_TRUE(eks.ok());
  EXPECT_EQ(At(*eks, "readOnlyPort"), nullptr);  // omitted zero value
  EXPECT_EQ(Value(*eks, R"(evictionHard["memory.available"])"), "100Mi");
  EXPECT_EQ(Value(*eks, "featureGates.RotateKubeletServerCertificate"), true);
}

TEST(ConfigzTest, RejectsGarbageAndQuotesWhatWasReceived) {
  auto ec = EffectiveConfigFromConfigz("<html>502 Bad Gateway</html>");
  ASSERT_FALSE(ec.ok());
  EXPECT_EQ(ec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ec.status().message().find("not valid JSON"), std::string::npos) << ec.status().message();
  EXPECT_NE(ec.status().message().find("<html>502 Bad Gateway</html>"), std::string::npos);

  auto empty = EffectiveConfigFromConfigz("");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty body"), std::string::npos) << empty.status().message();
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (auto& c : out) {
    x = x * 1664525u + 1013904223u;  // cheap LCG: the content only has to be arbitrary
    c = static_cast<char>(x >> 24);
  }
  return out;
}

TEST(ConfigzTest, TenMegabytesOfGarbageGiveABoundedMessage) {
  std::string garbage = RandomBytes(10 * 1024 * 1024, 42);
  auto ec = EffectiveConfigFromConfigz(garbage);
  ASSERT_FALSE(ec.ok());
  EXPECT_EQ(ec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_LT(ec.status().message().size(), 1000u);
  EXPECT_NE(ec.status().message().find("10485760 bytes"), std::string::npos) << ec.status().message();
}

TEST(ConfigzTest, LargeGarbageBelowTheSizeLimitIsParsedAndRejected) {
  std::string garbage = RandomBytes(3 * 1024 * 1024, 7);
  garbage[0] = '{';
  auto ec = EffectiveConfigFromConfigz(garbage);
  ASSERT_FALSE(ec.ok());
  EXPECT_NE(ec.status().message().find("not valid JSON"), std::string::npos) << ec.status().message();
  EXPECT_LT(ec.status().message().size(), 1000u);
  // nlohmann quotes everything it read of an unterminated string; the message stays bounded.
  std::string unterminated = "\"" + std::string(1024 * 1024, 'a');
  auto ec2 = EffectiveConfigFromConfigz(unterminated);
  ASSERT_FALSE(ec2.ok());
  EXPECT_LT(ec2.status().message().size(), 1000u);
}

TEST(ConfigzTest, DeeplyNestedInputDoesNotCrash) {
  auto ec = EffectiveConfigFromConfigz(std::string(200000, '['));
  EXPECT_FALSE(ec.ok());
  auto ec2 = EffectiveConfigFromConfigz(std::string(100000, '[') + std::string(100000, ']'));
  ASSERT_FALSE(ec2.ok());
  // Refused before parsing, by the nesting limit (it used to be parsed, then refused as an array).
  EXPECT_NE(ec2.status().message().find("nests deeper than 64 levels"), std::string::npos)
      << ec2.status().message();
}

TEST(ConfigzTest, RejectsWrongShapes) {
  struct Case {
    const char* body;
    const char* expect;
  } cases[] = {
      {R"({"kubeletconfig": 5})", "\"kubeletconfig\" in the /configz response is a number"},
      {R"({"kubeletconfig": null})", "is null"},
      {R"({"kubeletconfig": [1]})", "is an array"},
      {R"({"kubeletconfig": "x"})", "is a string"},
      {R"({"kubelet": {}})", "no \"kubeletconfig\" key"},
      {R"([{"kubeletconfig": {}}])", "is an array, expected an object"},
      {"42", "is a number"},
      {"null", "is null"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto ec = EffectiveConfigFromConfigz(c.body);
    ASSERT_FALSE(ec.ok());
    EXPECT_EQ(ec.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ec.status().message().find(c.expect), std::string::npos) << ec.status().message();
  }
  auto ok = EffectiveConfigFromConfigz(R"({"kubeletconfig": {}})");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->config.empty());
}

TEST(ValueSourceTest, NamesAreStable) {
  EXPECT_EQ(ValueSourceName(ValueSource::kConfigz), "configz");
  EXPECT_EQ(ValueSourceName(ValueSource::kZeroValue), "zero-value");
  EXPECT_EQ(ValueSourceName(ValueSource::kDefault), "default");
  EXPECT_EQ(ValueSourceName(ValueSource::kConfigFile), "config-file");
  EXPECT_EQ(ValueSourceName(ValueSource::kFlag), "flag");
  EXPECT_EQ(ValueSourceName(ValueSource::kRuleDefault), "rule-default");
}

// ----------------------------------------------------------------------------- flags files

TEST(FlagsFileTest, EksSystemdDropInWithContinuationLines) {
  auto flags = Flags(ReadShared("file-eks-al2-10-kubelet-args.conf"), "10-kubelet-args.conf");
  ASSERT_EQ(flags.size(), 5u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "node-ip");
  EXPECT_EQ(flags[0].value, "192.168.78.181");
  EXPECT_EQ(flags[0].origin, "10-kubelet-args.conf:2");
  EXPECT_EQ(flags[1].name, "pod-infra-container-image");
  EXPECT_EQ(flags[1].value, "602401143452.dkr.ecr.eu-west-3.amazonaws.com/eks/pause:3.5");
  EXPECT_EQ(flags[1].origin, "10-kubelet-args.conf:3");
  EXPECT_EQ(flags[2].name, "v");
  EXPECT_EQ(flags[2].value, "2");
  EXPECT_EQ(flags[2].origin, "10-kubelet-args.conf:4");
  EXPECT_EQ(flags[3].name, "cloud-provider");
  EXPECT_EQ(flags[4].name, "container-runtime");
  EXPECT_EQ(flags[4].value, "remote");  // the closing quote is not part of the value
  EXPECT_EQ(flags[4].origin, "10-kubelet-args.conf:6");
}

TEST(FlagsFileTest, AksEnvFileOnlyTakesKubeletVariablesThatHoldFlags) {
  auto flags = Flags(ReadShared("file-aks-etc-default-kubelet.env"), "/etc/default/kubelet");
  ASSERT_EQ(flags.size(), 32u) << Dump(flags);  // every --flag of KUBELET_FLAGS
  EXPECT_EQ(flags.front().name, "address");
  EXPECT_EQ(flags.front().origin, "/etc/default/kubelet:1");
  EXPECT_EQ(flags.back().name, "tls-private-key-file");
  for (const auto& f : flags) {
    EXPECT_TRUE(f.value.has_value()) << f.name;
    EXPECT_EQ(f.name.find("kubernetes.azure.com"), std::string::npos);  // KUBELET_NODE_LABELS skipped
  }
  auto eviction = std::find_if(flags.begin(), flags.end(), [](auto& f) { return f.name == "eviction-hard"; });
  ASSERT_NE(eviction, flags.end());
  EXPECT_EQ(eviction->value, "memory.available<750Mi,nodefs.available<10%,nodefs.inodesFree<5%");
}

TEST(FlagsFileTest, BareBooleanFlagsAndSpaceSeparatedValues) {
  auto flags = Flags("--rotate-certificates --event-qps 5 --anonymous-auth false --unknown-thing value "
                     "--oom-score-adj -999 --read-only-port=0 --bogus-bool --protect-kernel-defaults");
  ASSERT_EQ(flags.size(), 8u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "rotate-certificates");
  EXPECT_FALSE(flags[0].value.has_value());
  EXPECT_EQ(flags[1].name, "event-qps");
  EXPECT_EQ(flags[1].value, "5");
  // A boolean flag never takes the next word (pflag): "false" is a stray argument.
  EXPECT_EQ(flags[2].name, "anonymous-auth");
  EXPECT_FALSE(flags[2].value.has_value());
  EXPECT_EQ(flags[3].name, "unknown-thing");
  EXPECT_EQ(flags[3].value, "value");
  // pflag gives a non-boolean flag the next word even when it starts with '-'.
  EXPECT_EQ(flags[4].name, "oom-score-adj");
  EXPECT_EQ(flags[4].value, "-999");
  EXPECT_EQ(flags[5].value, "0");
  EXPECT_EQ(flags[6].name, "bogus-bool");
  EXPECT_FALSE(flags[6].value.has_value());
  EXPECT_FALSE(flags[7].value.has_value());
}

TEST(FlagsFileTest, SingleDashUnderscoresAndEndOfFlags) {
  auto flags = Flags("-v=2 --read_only_port=10255 -- --max-pods=5");
  ASSERT_EQ(flags.size(), 2u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "v");
  EXPECT_EQ(flags[0].value, "2");
  EXPECT_EQ(flags[1].name, "read-only-port");
}

TEST(FlagsFileTest, QuotingInSystemdUnits) {
  const char* unit =
      "[Unit]\n"
      "Description=The kubelet's unit; quotes here don't matter\n"
      "[Service]\n"
      "Environment=\"KUBELET_A=--max-pods=20 --cluster-dns=10.0.0.10\" KUBELET_B=--rotate-certificates "
      "'KUBELET_C=--node-labels=a=b' OTHER=--read-only-port=1\n"
      "Environment=KUBELET_EXTRA_ARGS=\n"
      "Environment=\"KUBELET_NODE_LABELS=role=worker\"\n";
  auto flags = Flags(unit, "kubelet.service");
  ASSERT_EQ(flags.size(), 4u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "max-pods");
  EXPECT_EQ(flags[0].origin, "kubelet.service:4");
  EXPECT_EQ(flags[1].name, "cluster-dns");
  EXPECT_EQ(flags[2].name, "rotate-certificates");
  EXPECT_EQ(flags[3].name, "node-labels");
  EXPECT_EQ(flags[3].value, "a=b");
}

TEST(FlagsFileTest, ExecStartFlagsCountAndVariablesAreSkipped) {
  const char* unit =
      "[Service]\n"
      "# comment with an apostrophe: don't\n"
      "; another comment --max-pods=1\n"
      "EnvironmentFile=-/etc/default/kubelet\n"
      "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
      "ExecStart=\n"
      "ExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS ${KUBELET_EXTRA_ARGS} \\\n"
      "    --read-only-port=10255 \\\n"
      "    --anonymous-auth \"--tls-min-version=VersionTLS12\"\n";
  auto flags = Flags(unit, "10-kubeadm.conf");
  ASSERT_EQ(flags.size(), 4u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "config");
  EXPECT_EQ(flags[0].origin, "10-kubeadm.conf:5");
  EXPECT_EQ(flags[1].name, "read-only-port");
  EXPECT_EQ(flags[1].value, "10255");
  EXPECT_EQ(flags[1].origin, "10-kubeadm.conf:8");
  EXPECT_EQ(flags[2].name, "anonymous-auth");
  EXPECT_FALSE(flags[2].value.has_value());
  EXPECT_EQ(flags[3].name, "tls-min-version");
  EXPECT_EQ(flags[3].value, "VersionTLS12");
  EXPECT_EQ(flags[3].origin, "10-kubeadm.conf:9");
}

TEST(FlagsFileTest, KubeadmFlagsEnvAndShellQuoting) {
  const char* env =
      "# written by kubeadm\n"
      "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock "
      "--pod-infra-container-image=registry.k8s.io/pause:3.9\"\n"
      "export KUBELET_EXTRA_ARGS='--max-pods=50 --event-qps=0'  # trailing comment --read-only-port=1\n"
      "KUBELET_OPTS=\"--feature-gates=A=true \\\n"
      "  --eviction-hard=memory.available<5%\"\n"
      "KUBELET_MULTILINE=\"--cgroup-driver=systemd\n"
      "  --hairpin-mode=none\"\n"
      "HTTP_PROXY=--not-a-kubelet-variable\n"
      "KUBELET_NODE_LABELS=team=bob's\n"
      "KUBELET_LAST=--max-pods=7\n";
  auto flags = Flags(env, "kubeadm-flags.env");
  ASSERT_EQ(flags.size(), 9u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "container-runtime-endpoint");
  EXPECT_EQ(flags[0].value, "unix:///var/run/containerd/containerd.sock");
  EXPECT_EQ(flags[0].origin, "kubeadm-flags.env:2");
  EXPECT_EQ(flags[1].name, "pod-infra-container-image");
  EXPECT_EQ(flags[2].name, "max-pods");
  EXPECT_EQ(flags[3].name, "event-qps");
  EXPECT_EQ(flags[3].value, "0");
  EXPECT_EQ(flags[3].origin, "kubeadm-flags.env:3");
  EXPECT_EQ(flags[4].name, "feature-gates");
  EXPECT_EQ(flags[5].name, "eviction-hard");
  EXPECT_EQ(flags[5].value, "memory.available<5%");
  EXPECT_EQ(flags[5].origin, "kubeadm-flags.env:5");
  EXPECT_EQ(flags[6].name, "cgroup-driver");
  EXPECT_EQ(flags[7].name, "hairpin-mode");
  EXPECT_EQ(flags[7].origin, "kubeadm-flags.env:7");
  // An apostrophe inside an unquoted value does not swallow the next line.
  EXPECT_EQ(flags[8].value, "7");
  EXPECT_EQ(flags[8].origin, "kubeadm-flags.env:10");
}

TEST(FlagsFileTest, PlainFlagsFileWithCommentsAndCommandLine) {
  const char* plain =
      "# flags, one per line\n"
      "--max-pods=30\n"
      "\n"
      "   --cluster-domain cluster.local   # trailing\n"
      "/usr/bin/kubelet --v=4\n"
      "echo --not-a-flag\n";
  auto flags = Flags(plain, "flags.txt");
  ASSERT_EQ(flags.size(), 3u) << Dump(flags);
  EXPECT_EQ(flags[0].origin, "flags.txt:2");
  EXPECT_EQ(flags[1].name, "cluster-domain");
  EXPECT_EQ(flags[1].value, "cluster.local");
  EXPECT_EQ(flags[1].origin, "flags.txt:4");
  EXPECT_EQ(flags[2].name, "v");
}

// Found by tests/fuzz/kubelet_flags_fuzz.cpp: "--=x" made a flag without a name.
TEST(FlagsFileTest, WordsWithoutAFlagNameAreNotFlags) {
  auto flags = Flags("KUBELET_FLAGS=--=true -=x --event-qps=5 --= -\n", "kubelet");
  ASSERT_EQ(flags.size(), 1u) << Dump(flags);
  EXPECT_EQ(flags[0].name, "event-qps");
  EXPECT_EQ(flags[0].value, "5");
}

TEST(FlagsFileTest, UnterminatedQuoteIsAnErrorNamingTheLine) {
  auto flags = ParseKubeletFlags("--a=b\n--c='oops\n", "x.env");
  ASSERT_FALSE(flags.ok());
  EXPECT_EQ(flags.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(flags.status().message().find("x.env:2"), std::string::npos) << flags.status().message();
  auto unit = ParseKubeletFlags("[Service]\nExecStart=/usr/bin/kubelet \"--a=b\n", "k.service");
  ASSERT_FALSE(unit.ok());
  EXPECT_NE(unit.status().message().find("k.service:2"), std::string::npos) << unit.status().message();
}

TEST(FlagsFileTest, EmptyAndBinaryInputsDoNotCrash) {
  EXPECT_TRUE(Flags("").empty());
  std::string junk = RandomBytes(100000, 7);
  (void)ParseKubeletFlags(junk, "junk");
  (void)ParseKubeletFlags(junk, "junk.conf");
  EXPECT_TRUE(Flags("\\").empty());
  EXPECT_TRUE(Flags("KUBELET_X=\\").empty());
}

// ----------------------------------------------------------------------------- config files

TEST(ConfigFileTest, ParsesYamlAndJsonAndChecksKind) {
  auto yaml = ParseKubeletConfigFile(ReadShared("file-kubeadm-var-lib-kubelet-config-v1.20.yaml"), "config.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.status().message();
  EXPECT_EQ((*yaml)["streamingConnectionIdleTimeout"], "0s");
  auto js = ParseKubeletConfigFile(ReadShared("file-eks-ami-al2-template-kubelet-config.json"), "kubelet-config.json");
  ASSERT_TRUE(js.ok()) << js.status().message();
  EXPECT_EQ((*js)["readOnlyPort"], 0);

  auto wrong_kind = ParseKubeletConfigFile("apiVersion: v1\nkind: Pod\n", "pod.yaml");
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_NE(wrong_kind.status().message().find("pod.yaml:2"), std::string::npos) << wrong_kind.status().message();
  EXPECT_NE(wrong_kind.status().message().find("KubeletConfiguration"), std::string::npos);

  auto wrong_version = ParseKubeletConfigFile(
      "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1alpha9\n", "c.yaml");
  ASSERT_FALSE(wrong_version.ok());
  EXPECT_NE(wrong_version.status().message().find("c.yaml:2"), std::string::npos);

  EXPECT_FALSE(ParseKubeletConfigFile("", "e.yaml").ok());
  EXPECT_FALSE(ParseKubeletConfigFile("- a\n- b\n", "list.yaml").ok());
  auto bad_json = ParseKubeletConfigFile("{\"a\": ", "bad.json");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.status().message().find("bad.json"), std::string::npos);
  auto bad_yaml = ParseKubeletConfigFile("a: [1,\n", "bad.yaml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_NE(bad_yaml.status().message().find("bad.yaml"), std::string::npos);
  // Without TypeMeta the content is still a configuration.
  EXPECT_TRUE(ParseKubeletConfigFile("maxPods: 10\n", "bare.yaml").ok());
}

// ----------------------------------------------------------------------------- effective config

TEST(EffectiveConfigTest, KubeadmZeroDurationsTakeTheKubeletDefaults) {
  auto file = ParseKubeletConfigFile(ReadShared("file-kubeadm-var-lib-kubelet-config-v1.20.yaml"), "config.yaml");
  ASSERT_TRUE(file.ok());
  auto ec = ComputeEffectiveConfig(*file, {});
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_FALSE(ec->live);
  EXPECT_EQ(Value(*ec, "streamingConnectionIdleTimeout"), "4h0m0s");
  EXPECT_EQ(SourceOf(*ec, "streamingConnectionIdleTimeout"), ValueSource::kDefault);
  EXPECT_EQ(Value(*ec, "authentication.webhook.cacheTTL"), "2m0s");
  EXPECT_EQ(Value(*ec, "nodeStatusReportFrequency"), "5m0s");
  EXPECT_EQ(Value(*ec, "shutdownGracePeriod"), "0s");  // not defaulted by the kubelet
  // Values in the file stay, attributed to it.
  EXPECT_EQ(Value(*ec, "rotateCertificates"), true);
  EXPECT_EQ(SourceOf(*ec, "rotateCertificates"), ValueSource::kConfigFile);
  EXPECT_EQ(Value(*ec, "authentication.anonymous.enabled"), false);
  EXPECT_EQ(SourceOf(*ec, "authentication.anonymous.enabled"), ValueSource::kConfigFile);
  // Absent fields take the v1beta1 defaults.
  EXPECT_EQ(Value(*ec, "eventRecordQPS"), 50);
  EXPECT_EQ(SourceOf(*ec, "eventRecordQPS"), ValueSource::kDefault);
  EXPECT_EQ(Value(*ec, "makeIPTablesUtilChains"), true);
  EXPECT_EQ(Value(*ec, R"(evictionHard["imagefs.available"])"), "15%");
  EXPECT_EQ(SourceOf(*ec, R"(evictionHard["imagefs.available"])"), ValueSource::kDefault);
  EXPECT_EQ(At(*ec, "readOnlyPort"), nullptr);  // no default: stays the zero value
  EXPECT_EQ(At(*ec, "kind"), nullptr);
  EXPECT_TRUE(ec->warnings.empty()) << ec->warnings.front();
}

TEST(EffectiveConfigTest, ExplicitZeroOfAPointerFieldStays) {
  auto ec = ComputeEffectiveConfig(json{{"eventRecordQPS", 0}, {"eventBurst", 0}, {"healthzPort", 0}}, {});
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(Value(*ec, "eventRecordQPS"), 0);
  EXPECT_EQ(SourceOf(*ec, "eventRecordQPS"), ValueSource::kConfigFile);
  EXPECT_EQ(Value(*ec, "eventBurst"), 100);  // non-pointer: zero means default
  EXPECT_EQ(Value(*ec, "healthzPort"), 0);
}

TEST(EffectiveConfigTest, DependentDefaults) {
  auto ec = ComputeEffectiveConfig(
      json{{"nodeStatusUpdateFrequency", "20s"}, {"maxParallelImagePulls", 5}, {"podPidsLimit", -7}}, {});
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(Value(*ec, "nodeStatusReportFrequency"), "20s");
  EXPECT_EQ(Value(*ec, "serializeImagePulls"), false);
  EXPECT_EQ(Value(*ec, "podPidsLimit"), -1);
  auto plain = ComputeEffectiveConfig(json::object(), {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(Value(*plain, "serializeImagePulls"), true);
  EXPECT_EQ(Value(*plain, "podPidsLimit"), -1);
}

TEST(EffectiveConfigTest, EksJsonTemplateWithEksDropIn) {
  auto file = ParseKubeletConfigFile(ReadShared("file-eks-ami-al2-template-kubelet-config.json"), "kubelet-config.json");
  ASSERT_TRUE(file.ok());
  auto flags = Flags(ReadShared("file-eks-al2-10-kubelet-args.conf"), "10-kubelet-args.conf");
  auto ec = ComputeEffectiveConfig(*file, flags);
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(Value(*ec, "readOnlyPort"), 0);
  EXPECT_EQ(Value(*ec, "authentication.anonymous.enabled"), false);
  EXPECT_EQ(Value(*ec, "authorization.mode"), "Webhook");
  EXPECT_EQ(Value(*ec, "streamingConnectionIdleTimeout"), "4h0m0s");
  EXPECT_EQ(Value(*ec, "protectKernelDefaults"), true);
  EXPECT_EQ(Value(*ec, "featureGates.RotateKubeletServerCertificate"), true);
  EXPECT_EQ(Value(*ec, "cgroupDriver"), "cgroupfs");
  // --v=2 sets logging.verbosity.
  EXPECT_EQ(Value(*ec, "logging.verbosity"), 2);
  EXPECT_EQ(SourceOf(*ec, "logging.verbosity"), ValueSource::kFlag);
  EXPECT_EQ(ec->origins.at("logging.verbosity"), "10-kubelet-args.conf:4");
  // --node-ip, --cloud-provider, --pod-infra-container-image are KubeletFlags: no warning;
  // --container-runtime was removed from the kubelet.
  ASSERT_EQ(ec->warnings.size(), 1u) << ec->warnings.front();
  EXPECT_NE(ec->warnings[0].find("--container-runtime"), std::string::npos);
  EXPECT_NE(ec->warnings[0].find("10-kubelet-args.conf:6"), std::string::npos);
}

TEST(EffectiveConfigTest, AksFlagsOnlyKubelet) {
  auto flags = Flags(ReadShared("file-aks-etc-default-kubelet.env"), "/etc/default/kubelet");
  auto ec = ComputeEffectiveConfig(std::nullopt, flags);
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(Value(*ec, "eventRecordQPS"), 0);
  EXPECT_EQ(SourceOf(*ec, "eventRecordQPS"), ValueSource::kFlag);
  EXPECT_EQ(ec->origins.at("eventRecordQPS"), "/etc/default/kubelet:1");
  EXPECT_EQ(Value(*ec, "authentication.anonymous.enabled"), false);
  EXPECT_EQ(SourceOf(*ec, "authentication.anonymous.enabled"), ValueSource::kFlag);
  EXPECT_EQ(Value(*ec, "authentication.webhook.enabled"), true);
  EXPECT_EQ(Value(*ec, "authorization.mode"), "Webhook");
  EXPECT_EQ(Value(*ec, "readOnlyPort"), 0);
  EXPECT_EQ(Value(*ec, "rotateCertificates"), true);
  EXPECT_EQ(Value(*ec, "protectKernelDefaults"), true);
  EXPECT_EQ(Value(*ec, "streamingConnectionIdleTimeout"), "4h");  // as written
  EXPECT_EQ(Value(*ec, "authentication.x509.clientCAFile"), "/etc/kubernetes/certs/ca.crt");
  EXPECT_EQ(Value(*ec, "evictionHard"),
            (json{{"memory.available", "750Mi"}, {"nodefs.available", "10%"}, {"nodefs.inodesFree", "5%"}}));
  EXPECT_EQ(SourceOf(*ec, R"(evictionHard["memory.available"])"), ValueSource::kFlag);
  EXPECT_EQ(ec->sources.count(R"(evictionHard["imagefs.available"])"), 0u);  // dropped default
  EXPECT_EQ(Value(*ec, "featureGates.DisableAcceleratorUsageMetrics"), false);
  EXPECT_EQ(Value(*ec, "featureGates.CSIMigration"), true);
  EXPECT_EQ(Value(*ec, "featureGates").size(), 6u);
  EXPECT_EQ(Value(*ec, "kubeReserved"), (json{{"cpu", "100m"}, {"memory", "1843Mi"}}));
  EXPECT_EQ(Value(*ec, "tlsCipherSuites").size(), 8u);
  EXPECT_EQ(Value(*ec, "clusterDNS"), json::array({"10.0.0.10"}));
  EXPECT_EQ(Value(*ec, "enforceNodeAllocatable"), json::array({"pods"}));
  EXPECT_EQ(Value(*ec, "containerLogMaxSize"), "50M");
  EXPECT_EQ(Value(*ec, "staticPodPath"), "/etc/kubernetes/manifests");
  // Not set by any flag: the flags-only defaults.
  EXPECT_EQ(Value(*ec, "makeIPTablesUtilChains"), true);
  EXPECT_EQ(SourceOf(*ec, "makeIPTablesUtilChains"), ValueSource::kDefault);
  EXPECT_TRUE(HasWarningContaining(*ec, "--azure-container-registry-config"));
  EXPECT_FALSE(HasWarningContaining(*ec, "--kubeconfig"));
  EXPECT_FALSE(HasWarningContaining(*ec, "--cloud-provider"));
}

TEST(EffectiveConfigTest, FlagsOnlyKubeletStartsFromInsecureLegacyDefaults) {
  auto ec = ComputeEffectiveConfig(std::nullopt, {});
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(Value(*ec, "authentication.anonymous.enabled"), true);
  EXPECT_EQ(Value(*ec, "authentication.webhook.enabled"), false);
  EXPECT_EQ(Value(*ec, "authorization.mode"), "AlwaysAllow");
  EXPECT_EQ(Value(*ec, "readOnlyPort"), 10255);
  EXPECT_EQ(SourceOf(*ec, "readOnlyPort"), ValueSource::kDefault);
  EXPECT_EQ(Value(*ec, "streamingConnectionIdleTimeout"), "4h0m0s");
  // With a file, even an empty one, the secure v1beta1 defaults apply.
  auto with_file = ComputeEffectiveConfig(json::object(), {});
  ASSERT_TRUE(with_file.ok());
  EXPECT_EQ(Value(*with_file, "authentication.anonymous.enabled"), false);
  EXPECT_EQ(Value(*with_file, "authorization.mode"), "Webhook");
  EXPECT_EQ(At(*with_file, "readOnlyPort"), nullptr);
}

TEST(EffectiveConfigTest, FlagOverridesFile) {
  json file = {{"readOnlyPort", 0}, {"streamingConnectionIdleTimeout", "5m"}, {"anonymous", nullptr}};
  auto ec = ComputeEffectiveConfig(
      file, Flags("--read-only-port=10255\n--streaming-connection-idle-timeout=0\n--anonymous-auth\n", "f.env"));
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(Value(*ec, "readOnlyPort"), 10255);
  EXPECT_EQ(SourceOf(*ec, "readOnlyPort"), ValueSource::kFlag);
  EXPECT_EQ(ec->origins.at("readOnlyPort"), "f.env:1");
  // A flag is applied after defaulting, so 0 really disables the timeout.
  EXPECT_EQ(Value(*ec, "streamingConnectionIdleTimeout"), "0");
  EXPECT_EQ(ec->origins.at("streamingConnectionIdleTimeout"), "f.env:2");
  EXPECT_EQ(Value(*ec, "authentication.anonymous.enabled"), true);
  EXPECT_EQ(SourceOf(*ec, "authentication.anonymous.enabled"), ValueSource::kFlag);
}

TEST(EffectiveConfigTest, FeatureGateFlagsMergeOverTheFile) {
  json file = {{"featureGates", {{"A", true}, {"B", true}}}};
  auto ec = ComputeEffectiveConfig(file, Flags("--feature-gates=B=false,C=t\n--feature-gates=D=0"));
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(Value(*ec, "featureGates"), (json{{"A", true}, {"B", false}, {"C", true}, {"D", false}}));
  EXPECT_EQ(SourceOf(*ec, "featureGates.A"), ValueSource::kConfigFile);
  EXPECT_EQ(SourceOf(*ec, "featureGates.B"), ValueSource::kFlag);
  EXPECT_EQ(SourceOf(*ec, "featureGates.D"), ValueSource::kFlag);
  EXPECT_EQ(ec->origins.at("featureGates.C"), "test.env:1");
  EXPECT_EQ(ec->sources.count("featureGates"), 0u);
}

TEST(EffectiveConfigTest, OtherMapFlagsReplaceTheMapThenAccumulate) {
  json file = {{"evictionHard", {{"memory.available", "1Gi"}, {"nodefs.available", "5%"}}}};
  auto ec = ComputeEffectiveConfig(
      file, Flags("--eviction-hard=memory.available<200Mi --eviction-hard=pid.available<10%"));
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(Value(*ec, "evictionHard"), (json{{"memory.available", "200Mi"}, {"pid.available", "10%"}}));
  EXPECT_EQ(SourceOf(*ec, "evictionHard"), ValueSource::kFlag);
  EXPECT_EQ(SourceOf(*ec, R"(evictionHard["pid.available"])"), ValueSource::kFlag);
  EXPECT_EQ(ec->origins.at(R"(evictionHard["pid.available"])"), "test.env:1");
  auto lists = ComputeEffectiveConfig(json{{"clusterDNS", {"1.1.1.1"}}},
                                      Flags("--cluster-dns=10.0.0.1,10.0.0.2 --cluster-dns=10.0.0.3"));
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(Value(*lists, "clusterDNS"), json::array({"10.0.0.1", "10.0.0.2", "10.0.0.3"}));
  auto options = ComputeEffectiveConfig(json::object(), Flags("--cpu-manager-policy-options=a=1,2"));
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(Value(*options, "cpuManagerPolicyOptions"), (json{{"a", "1,2"}}));
}

TEST(EffectiveConfigTest, SeccompDefaultFlagCanOnlyTurnTheFeatureOn) {
  auto on = ComputeEffectiveConfig(json::object(), Flags("--seccomp-default"));
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(Value(*on, "seccompDefault"), true);
  auto stays = ComputeEffectiveConfig(json{{"seccompDefault", true}}, Flags("--seccomp-default=false"));
  ASSERT_TRUE(stays.ok());
  EXPECT_EQ(Value(*stays, "seccompDefault"), true);
  EXPECT_EQ(SourceOf(*stays, "seccompDefault"), ValueSource::kConfigFile);
}

TEST(EffectiveConfigTest, BadFlagValuesAreErrorsNamingFlagAndOrigin) {
  const char* cases[] = {
      "--event-qps=lots", "--event-qps=99999999999", "--anonymous-auth=yes",
      "--streaming-connection-idle-timeout=4 hours", "--feature-gates=A", "--feature-gates=A=maybe",
      "--eviction-hard=memory.available=1Gi", "--container-log-max-size=huge", "--max-pods",
      "--memory-manager-policy",
  };
  for (const char* text : cases) {
    SCOPED_TRACE(text);
    auto ec = ComputeEffectiveConfig(json::object(), Flags(text, "bad.conf.txt"));
    ASSERT_FALSE(ec.ok());
    EXPECT_EQ(ec.status().code(), StatusCode::kInvalidArgument);
    std::string name = std::string(text).substr(0, std::string(text).find('='));
    EXPECT_NE(ec.status().message().find(name), std::string::npos) << ec.status().message();
    EXPECT_NE(ec.status().message().find("bad.conf.txt:1"), std::string::npos) << ec.status().message();
  }
}

TEST(EffectiveConfigTest, TypedFlagValuesFollowGoParsing) {
  auto ec = ComputeEffectiveConfig(
      json::object(), Flags("--max-pods=0x20 --oom-score-adj=-1000 --pod-max-pids=4294967296 "
                            "--make-iptables-util-chains=F --anonymous-auth=1 --registry-qps=0o17 "
                            "--kube-api-qps=2147483647 --tls-cipher-suites=A,B"));
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(Value(*ec, "maxPods"), 32);
  EXPECT_EQ(Value(*ec, "oomScoreAdj"), -1000);
  EXPECT_EQ(Value(*ec, "podPidsLimit"), 4294967296LL);
  EXPECT_EQ(Value(*ec, "makeIPTablesUtilChains"), false);
  EXPECT_EQ(Value(*ec, "authentication.anonymous.enabled"), true);
  EXPECT_EQ(Value(*ec, "registryPullQPS"), 15);
  EXPECT_EQ(Value(*ec, "kubeAPIQPS"), 2147483647);
  EXPECT_EQ(Value(*ec, "tlsCipherSuites"), json::array({"A", "B"}));
  EXPECT_FALSE(ComputeEffectiveConfig(json::object(), Flags("--kube-api-qps=2147483648")).ok());
  EXPECT_TRUE(ComputeEffectiveConfig(json::object(), Flags("--oom-score-adj=-2147483648")).ok());
  EXPECT_FALSE(ComputeEffectiveConfig(json::object(), Flags("--max-pods=08")).ok());
}

TEST(EffectiveConfigTest, UnknownFlagsAreWarningsNotErrors) {
  auto ec = ComputeEffectiveConfig(json::object(),
                                   Flags("--made-up-flag=1 --kubeconfig=/k --register-with-taints=a=b:NoSchedule"));
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  ASSERT_EQ(ec->warnings.size(), 2u);
  EXPECT_NE(ec->warnings[0].find("unknown kubelet flag --made-up-flag"), std::string::npos) << ec->warnings[0];
  EXPECT_NE(ec->warnings[0].find("test.env:1"), std::string::npos);
  EXPECT_NE(ec->warnings[1].find("registerWithTaints"), std::string::npos) << ec->warnings[1];
}

TEST(EffectiveConfigTest, MalformedFileFieldsAreWarnedAbout) {
  auto ec = ComputeEffectiveConfig(json{{"readOnlyPort", "abc"}, {"streamingConnectionIdleTimeout", "4 hours"}}, {});
  ASSERT_TRUE(ec.ok());
  EXPECT_TRUE(HasWarningContaining(*ec, "readOnlyPort"));
  EXPECT_TRUE(HasWarningContaining(*ec, "streamingConnectionIdleTimeout"));
  EXPECT_FALSE(ComputeEffectiveConfig(json::array(), {}).ok());
}

// ---- limits ----

// {"kubeletconfig": {"a": [[...[1]...]]}}: `depth` levels in all.
std::string ConfigzOfDepth(size_t depth) {
  return "{\"kubeletconfig\": {\"a\": " + std::string(depth - 2, '[') + "1" +
         std::string(depth - 2, ']') + "}}";
}

TEST(ConfigzLimitsTest, DepthAtUnderAndOverSixtyFour) {
  EXPECT_TRUE(EffectiveConfigFromConfigz(ConfigzOfDepth(63)).ok());
  EXPECT_TRUE(EffectiveConfigFromConfigz(ConfigzOfDepth(64)).ok());
  auto over = EffectiveConfigFromConfigz(ConfigzOfDepth(65));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("the /configz response nests deeper than 64 levels"),
            std::string::npos)
      << over.status().message();
  EXPECT_LT(over.status().message().size(), 1000u);
  auto hostile = EffectiveConfigFromConfigz(std::string(200'000, '[') + std::string(200'000, ']'));
  ASSERT_FALSE(hostile.ok());
  EXPECT_NE(hostile.status().message().find("nests deeper than 64 levels"), std::string::npos);
}

// A node could put a UTF-8 byte order mark first: the JSON parser skips it, and the nesting
// limit must hold all the same (evaluating a rule copies the value found, recursively).
// A YAML config file whose apiVersion is not UTF-8 is an error, not an exception (the message
// quotes the value, as JSON). Found by tests/fuzz/configz_eval_fuzz.cpp.
TEST(KubeletConfigFileTest, TextThatIsNotUtf8IsAnError) {
  auto cfg =
      ParseKubeletConfigFile("apiVersion: kubelet.config.k8s.io/\xA5v1beta1\n", "config.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("not valid UTF-8"), std::string::npos)
      << cfg.status().message();
}

TEST(ConfigzLimitsTest, ByteOrderMarkDoesNotLiftTheDepthLimit) {
  const std::string bom = "\xEF\xBB\xBF";
  EXPECT_TRUE(EffectiveConfigFromConfigz(bom + ConfigzOfDepth(64)).ok());
  auto over = EffectiveConfigFromConfigz(bom + ConfigzOfDepth(65));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("nests deeper than 64 levels"), std::string::npos)
      << over.status().message();
}

TEST(ConfigzLimitsTest, SizeAtUnderAndOverTheLimit) {
  auto sized = [](size_t n) {
    std::string head = "{\"kubeletconfig\": {\"a\": \"", tail = "\"}}";
    return head + std::string(n - head.size() - tail.size(), 'x') + tail;
  };
  EXPECT_TRUE(EffectiveConfigFromConfigz(sized(4u << 20)).ok());
  EXPECT_TRUE(EffectiveConfigFromConfigz(sized((4u << 20) - 1)).ok());
  auto over = EffectiveConfigFromConfigz(sized((4u << 20) + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("is 4194305 bytes, over the 4 MiB limit"),
            std::string::npos);
  EXPECT_LT(over.status().message().size(), 1000u);
  // The caller's limits (--configz-max-bytes) apply instead of the default.
  EXPECT_FALSE(EffectiveConfigFromConfigz(sized(2048), {1024, 64}).ok());
  EXPECT_TRUE(EffectiveConfigFromConfigz(sized(2048), {2048, 64}).ok());
}

TEST(KubeletConfigFileLimitsTest, JsonAndYamlAreBoundedBeforeParsing) {
  const std::string head = "{\"kind\": \"KubeletConfiguration\", \"x\": ";
  EXPECT_TRUE(
      ParseKubeletConfigFile(head + std::string(62, '[') + std::string(62, ']') + "}", "k.json")
          .ok());
  auto deep =
      ParseKubeletConfigFile(head + std::string(64, '[') + std::string(64, ']') + "}", "k.json");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("k.json nests deeper than 64 levels"), std::string::npos)
      << deep.status().message();
  auto yaml = ParseKubeletConfigFile(
      "kind: KubeletConfiguration\nx: " + std::string(64, '[') + std::string(64, ']') + "\n",
      "k.yaml");
  ASSERT_FALSE(yaml.ok());
  EXPECT_NE(yaml.status().message().find("k.yaml: the input nests deeper than 64 levels"),
            std::string::npos)
      << yaml.status().message();
  auto big = ParseKubeletConfigFile("kind: KubeletConfiguration\n#" + std::string(4u << 20, 'x'),
                                    "k.yaml");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("over the 4 MiB limit"), std::string::npos)
      << big.status().message().substr(0, 200);
}

}  // namespace
}  // namespace kpc::policy
