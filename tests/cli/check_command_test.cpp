#include "cli/check_command.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/check_flags.h"
#include "tests/cli/help_text.h"

namespace kpc::cli {
namespace {
namespace fs = std::filesystem;

const std::string kData = std::string(KPC_SHARED_DATA_DIR) + "/kubelet/";
const std::string kApiExample = std::string(KPC_SOURCE_DIR) + "/tests/testdata/api-example.yaml";
constexpr int64_t kNow = 1795000000;  // 2026-11-18, before the example exception expires

struct CheckRun {
  int code = 0;
  std::string out;
  std::string err;
  nlohmann::json json;
};

CheckRun Check(std::vector<std::string> args, bool json = true) {
  if (json) {
    args.push_back("--output");
    args.push_back("json");
  }
  std::ostringstream out, err;
  CheckRun r;
  r.code = RunCheck(args, out, err, kNow, false);
  r.out = out.str();
  r.err = err.str();
  if (json && (r.code == 0 || r.code == 1)) r.json = nlohmann::json::parse(r.out);
  return r;
}

// result of (node, rule) in a JSON report
std::string Result(const CheckRun& r, const std::string& node, const std::string& rule, std::string* source = nullptr) {
  for (const auto& row : r.json["results"]) {
    if (row["node"] == node && row["rule"] == rule) {
      if (source) *source = row["source"].is_null() ? "" : row["source"].get<std::string>();
      return row["result"];
    }
  }
  return "<missing>";
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("kpc-check-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) const {
    auto p = path_ / name;
    std::ofstream(p) << content;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(CheckCommandTest, ConfigzDirectoryOfRealSamples) {
  TempDir dir;
  for (const char* f : {"configz-eks-v1.30-al2023.json", "configz-kubeadm-v1.28.json",
                        "configz-k8s-docs-crio-local-up-cluster.json"}) {
    fs::copy_file(kData + f, dir.path() + "/" + fs::path(f).stem().string().substr(8) + ".json");
  }
  CheckRun r = Check({"--policy", kApiExample, "--configz", dir.path()});
  ASSERT_EQ(r.code, 1) << r.err << r.out;
  std::string src;
  // EKS: rotateCertificates is absent from configz, which means false.
  EXPECT_EQ(Result(r, "eks-v1.30-al2023", "rotate-certificates", &src), "Fail");
  EXPECT_EQ(src, "zero-value");
  EXPECT_EQ(Result(r, "eks-v1.30-al2023", "streaming-connection-idle-timeout"), "Pass");
  EXPECT_EQ(Result(r, "eks-v1.30-al2023", "anonymous-auth-disabled"), "Pass");
  EXPECT_EQ(Result(r, "eks-v1.30-al2023", "client-ca-file-set"), "Pass");
  EXPECT_EQ(Result(r, "eks-v1.30-al2023", "kubelet-config-file-permissions"), "NotApplicable");
  // the docs' dev cluster: anonymous auth and AlwaysAllow
  EXPECT_EQ(Result(r, "k8s-docs-crio-local-up-cluster", "anonymous-auth-disabled"), "Fail");
  EXPECT_EQ(Result(r, "k8s-docs-crio-local-up-cluster", "authorization-not-always-allow"), "Fail");
  EXPECT_EQ(Result(r, "k8s-docs-crio-local-up-cluster", "rotate-certificates"), "Pass");
  // kubeadm: compliant
  for (const char* rule : {"streaming-connection-idle-timeout", "event-record-qps", "make-iptables-util-chains",
                           "anonymous-auth-disabled", "authorization-not-always-allow", "client-ca-file-set",
                           "rotate-certificates"}) {
    EXPECT_EQ(Result(r, "kubeadm-v1.28", rule, &src), "Pass") << rule;
    EXPECT_EQ(src, "configz") << rule;
  }
  EXPECT_EQ(r.json["summary"]["nodes"], 3);
  EXPECT_EQ(r.json["summary"]["compliantNodes"], 1);
  EXPECT_EQ(r.json["summary"]["nonCompliantNodes"], 2);
}

TEST(CheckCommandTest, KubeadmConfigFileZeroDurationTakesKubeletDefault) {
  CheckRun r = Check({"--policy", kApiExample, "--config-file", kData + "file-kubeadm-var-lib-kubelet-config-v1.20.yaml",
                 "--node", "kubeadm-1"});
  std::string src;
  EXPECT_EQ(Result(r, "kubeadm-1", "streaming-connection-idle-timeout", &src), "Pass") << r.out;
  EXPECT_EQ(src, "default");
  EXPECT_EQ(Result(r, "kubeadm-1", "rotate-certificates", &src), "Pass");
  EXPECT_EQ(src, "config-file");
  EXPECT_EQ(Result(r, "kubeadm-1", "anonymous-auth-disabled", &src), "Pass");
  EXPECT_EQ(Result(r, "kubeadm-1", "event-record-qps", &src), "Pass");
  EXPECT_EQ(src, "default");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(CheckCommandTest, AksFlagsOnly) {
  CheckRun r = Check({"--policy", kApiExample, "--flags-file", kData + "file-aks-etc-default-kubelet.env"});
  const std::string node = "file-aks-etc-default-kubelet";
  std::string src;
  EXPECT_EQ(Result(r, node, "event-record-qps", &src), "Pass");  // --event-qps=0 >= 0
  EXPECT_EQ(src, "flag");
  EXPECT_EQ(Result(r, node, "anonymous-auth-disabled", &src), "Pass");
  EXPECT_EQ(src, "flag");
  EXPECT_EQ(Result(r, node, "authorization-not-always-allow", &src), "Pass");
  EXPECT_EQ(src, "flag");
  EXPECT_EQ(Result(r, node, "client-ca-file-set", &src), "Pass");
  EXPECT_EQ(Result(r, node, "rotate-certificates", &src), "Pass");
  EXPECT_EQ(src, "flag");
  EXPECT_EQ(Result(r, node, "streaming-connection-idle-timeout", &src), "Pass");
  EXPECT_EQ(src, "flag");
}

TEST(CheckCommandTest, EksConfigFileWithDropIn) {
  CheckRun r = Check({"--policy", kApiExample, "--config-file", kData + "file-eks-ami-al2-template-kubelet-config.json",
                 "--flags-file", kData + "file-eks-al2-10-kubelet-args.conf", "--node", "eks-1"});
  EXPECT_EQ(Result(r, "eks-1", "anonymous-auth-disabled"), "Pass") << r.out << r.err;
  EXPECT_EQ(Result(r, "eks-1", "client-ca-file-set"), "Pass");
  // the template does not set rotateCertificates: the kubelet runs it as false
  EXPECT_EQ(Result(r, "eks-1", "rotate-certificates"), "Fail");
  EXPECT_EQ(r.code, 1);
}

TEST(CheckCommandTest, FlagOverridesFile) {
  TempDir dir;
  auto cfg = dir.Write("config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmakeIPTablesUtilChains: true\n");
  auto flags = dir.Write("10-kubelet-args.conf", "[Service]\nEnvironment=\"KUBELET_ARGS=--make-iptables-util-chains=false\"\n");
  CheckRun r = Check({"--policy", kApiExample, "--config-file", cfg, "--flags-file", flags, "--node", "n"});
  std::string src;
  EXPECT_EQ(Result(r, "n", "make-iptables-util-chains", &src), "Fail") << r.out << r.err;
  EXPECT_EQ(src, "flag");
}

TEST(CheckCommandTest, ExceptionsApplyByNodeLabels) {
  TempDir dir;
  fs::copy_file(kData + "configz-k8s-docs-crio-local-up-cluster.json", dir.path() + "/dev.json");
  CheckRun r = Check({"--policy", kApiExample, "--configz", dir.path() + "/dev.json", "--node-labels", "pool=legacy-monitoring"});
  EXPECT_EQ(Result(r, "dev", "anonymous-auth-disabled"), "Exempt");
  CheckRun r2 = Check({"--policy", kApiExample, "--configz", dir.path() + "/dev.json"});
  EXPECT_EQ(Result(r2, "dev", "anonymous-auth-disabled"), "Fail");
  // a control-plane node is not selected by the example policy
  CheckRun r3 = Check({"--policy", kApiExample, "--configz", dir.path() + "/dev.json", "--node-labels",
                  "node-role.kubernetes.io/control-plane="});
  EXPECT_TRUE(r3.json["results"].empty());
  EXPECT_EQ(r3.code, 0);
}

TEST(CheckCommandTest, TableOutputIsReadable) {
  TempDir dir;
  fs::copy_file(kData + "configz-eks-v1.30-al2023.json", dir.path() + "/eks.json");
  CheckRun r = Check({"--policy", kApiExample, "--configz", dir.path() + "/eks.json"}, false);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("NODE"), std::string::npos);
  EXPECT_NE(r.out.find("eks  "), std::string::npos);
  EXPECT_NE(r.out.find("rotateCertificates is false (zero-value), want Equals true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0/1 nodes compliant"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos);  // no colour when not a terminal
}

TEST(CheckCommandTest, InvalidInputExitsTwoWithClearMessage) {
  TempDir dir;
  auto configz = dir.Write("n.json", "{\"kubeletconfig\": {}}");
  auto bad_policy = dir.Write("bad.yaml", "apiVersion: kubeletpolicy.io/v1alpha1\nkind: KubeletPolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - id: a\n      config: {path: readOnlyPort, operator: Bigger, value: 0}\n");
  CheckRun r = Check({"--policy", bad_policy, "--configz", configz});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.yaml:7: spec.rules[0].config.operator: unknown operator \"Bigger\""), std::string::npos) << r.err;

  auto garbage = dir.Write("garbage.json", "this is not json");
  r = Check({"--policy", kApiExample, "--configz", garbage});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("garbage.json"), std::string::npos) << r.err;

  std::string big(10 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('!' + (i * 7919) % 90);
  auto huge = dir.Write("huge.json", big);
  r = Check({"--policy", kApiExample, "--configz", huge});
  EXPECT_EQ(r.code, 2);
  r = Check({"--policy", huge, "--configz", configz});
  EXPECT_EQ(r.code, 2);

  r = Check({"--policy", dir.path() + "/missing.yaml", "--configz", configz});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.yaml: no such file"), std::string::npos);

  r = Check({"--policy", kApiExample});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--configz"), std::string::npos);

  r = Check({"--policy", kApiExample, "--configz", configz, "--bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown flag \"--bogus\""), std::string::npos) << r.err;
}

// The crashes, through `check` the way a user runs it: each is a short error or a verdict.
TEST(CheckCommandTest, HostileInputsGiveShortErrorsNotCrashes) {
  TempDir dir;
  auto configz = dir.Write("n.json", "{\"kubeletconfig\": {}}");
  const std::string head =
      "apiVersion: kubeletpolicy.io/v1alpha1\nkind: KubeletPolicy\nmetadata: {name: x}\nspec:\n  "
      "rules:\n";
  struct Case {
    const char* name;
    std::string rule;
    const char* says;
  } cases[] = {
      {"owner",
       "    - id: a\n      file: {target: KubeletConfigFile, owner: " + std::string(100'000, 'o') +
           "}\n",
       "spec.rules[0].file.owner: \"oooo"},
      {"path",
       "    - id: a\n      config: {path: " + std::string(120'000, 'p') + ", operator: Exists}\n",
       "spec.rules[0].config.path: must be at most 256 characters, got 120000"},
      {"name",
       "    - id: " + std::string(100'000, 'n') +
           "\n      config: {path: readOnlyPort, operator: Exists}\n",
       "spec.rules[0].id: \"nnnn"},
  };
  for (const auto& c : cases) {
    auto policy = dir.Write(std::string(c.name) + ".yaml", head + c.rule);
    CheckRun r = Check({"--policy", policy, "--configz", configz});
    EXPECT_EQ(r.code, 2) << c.name;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.name << ": " << r.err.substr(0, 500);
    EXPECT_LT(r.err.size(), 1000u) << c.name;
  }

  // /configz nested 200,000 levels at a field a rule reads.
  std::string deep = "{\"kubeletconfig\": {\"readOnlyPort\": " + std::string(200'000, '[') + "0" +
                     std::string(200'000, ']') + "}}";
  auto deep_configz = dir.Write("deep.json", deep);
  CheckRun r = Check({"--policy", kApiExample, "--configz", deep_configz});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("deep.json: the /configz response nests deeper than 64 levels"),
            std::string::npos)
      << r.err.substr(0, 500);
  EXPECT_LT(r.err.size(), 1000u);
  // A policy file nested as deeply.
  auto deep_policy =
      dir.Write("deep.yaml",
                head + "    - id: a\n      config: {path: readOnlyPort, operator: Equals, value: " +
                    std::string(200'000, '[') + "}\n");
  r = Check({"--policy", deep_policy, "--configz", configz});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("deep.yaml: the input nests deeper than 64 levels"), std::string::npos)
      << r.err.substr(0, 500);
}

}  // namespace
}  // namespace kpc::cli

namespace kpc::cli {
namespace {

// The shipped CIS profiles against every real sample in shared/data: each verdict asserted.
struct ProfileCase {
  const char* name;
  std::vector<std::string> args;  // inputs after --policy
  std::string node;
  std::map<std::string, std::string> verdicts;  // rule -> result
};

void PrintTo(const ProfileCase& c, std::ostream* os) { *os << c.name; }

class ShippedProfileTest : public ::testing::TestWithParam<ProfileCase> {};

TEST_P(ShippedProfileTest, EveryVerdict) {
  const auto& c = GetParam();
  std::vector<std::string> args = {"--policy", std::string(KPC_SOURCE_DIR) + "/deploy/samples/" +
                                                   (std::string(c.name).rfind("eks", 0) == 0   ? "cis-eks.yaml"
                                                    : std::string(c.name).rfind("aks", 0) == 0 ? "cis-aks.yaml"
                                                                                               : "cis-kubeadm.yaml")};
  args.insert(args.end(), c.args.begin(), c.args.end());
  CheckRun r = Check(args);
  ASSERT_TRUE(r.code == 0 || r.code == 1) << r.err;
  std::map<std::string, std::string> got;
  for (const auto& row : r.json["results"]) {
    if (row["node"] == c.node) got[row["rule"]] = row["result"];
  }
  for (const auto& [rule, want] : c.verdicts) {
    EXPECT_EQ(got[rule], want) << c.name << " rule " << rule;
  }
  // every rule of the profile was asserted
  for (const auto& [rule, result] : got) {
    EXPECT_TRUE(c.verdicts.count(rule)) << c.name << ": rule " << rule << " (" << result << ") not asserted";
  }
}

const std::map<std::string, std::string> kKubeadmFileRulesNA = {
    {"kubelet-service-file-permissions", "NotApplicable"}, {"kubelet-service-file-permissions-etc", "NotApplicable"},
    {"kubeconfig-file-permissions", "NotApplicable"},      {"client-ca-file-permissions", "NotApplicable"},
    {"kubelet-config-file-permissions", "NotApplicable"}};

std::map<std::string, std::string> With(std::map<std::string, std::string> a, const std::map<std::string, std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

INSTANTIATE_TEST_SUITE_P(
    SharedSamples, ShippedProfileTest,
    ::testing::Values(
        ProfileCase{"kubeadm_configz_v128", {"--configz", kData + "configz-kubeadm-v1.28.json"}, "configz-kubeadm-v1.28",
                    With({{"anonymous-auth-disabled", "Pass"}, {"authorization-not-always-allow", "Pass"},
                          {"authentication-webhook-enabled", "Pass"}, {"client-ca-file-set", "Pass"},
                          {"read-only-port-disabled", "Pass"}, {"streaming-connection-idle-timeout", "Pass"},
                          {"protect-kernel-defaults", "Fail"}, {"make-iptables-util-chains", "Pass"},
                          {"event-record-qps", "Pass"}, {"tls-cert-file-set", "Pass"}, {"tls-private-key-file-set", "Pass"},
                          {"rotate-certificates", "Pass"}, {"rotate-kubelet-server-certificate", "Pass"},
                          {"strong-tls-cipher-suites", "Fail"}, {"pod-pids-limit", "Fail"}, {"seccomp-default", "Fail"}},
                         kKubeadmFileRulesNA)},
        ProfileCase{"kubeadm_configz_eks_node", {"--configz", kData + "configz-eks-v1.30-al2023.json"}, "configz-eks-v1.30-al2023",
                    With({{"anonymous-auth-disabled", "Pass"}, {"authorization-not-always-allow", "Pass"},
                          {"authentication-webhook-enabled", "Pass"}, {"client-ca-file-set", "Pass"},
                          {"read-only-port-disabled", "Pass"}, {"streaming-connection-idle-timeout", "Pass"},
                          {"protect-kernel-defaults", "Pass"}, {"make-iptables-util-chains", "Pass"},
                          {"event-record-qps", "Pass"}, {"tls-cert-file-set", "Fail"}, {"tls-private-key-file-set", "Fail"},
                          {"rotate-certificates", "Fail"}, {"rotate-kubelet-server-certificate", "Pass"},
                          {"strong-tls-cipher-suites", "Pass"}, {"pod-pids-limit", "Fail"}, {"seccomp-default", "Fail"}},
                         kKubeadmFileRulesNA)},
        ProfileCase{"kubeadm_configz_docs_dev_cluster", {"--configz", kData + "configz-k8s-docs-crio-local-up-cluster.json"},
                    "configz-k8s-docs-crio-local-up-cluster",
                    With({{"anonymous-auth-disabled", "Fail"}, {"authorization-not-always-allow", "Fail"},
                          {"authentication-webhook-enabled", "Pass"}, {"client-ca-file-set", "Pass"},
                          {"read-only-port-disabled", "Fail"}, {"streaming-connection-idle-timeout", "Pass"},
                          {"protect-kernel-defaults", "Fail"}, {"make-iptables-util-chains", "Pass"},
                          {"event-record-qps", "Pass"}, {"tls-cert-file-set", "Pass"}, {"tls-private-key-file-set", "Pass"},
                          {"rotate-certificates", "Pass"}, {"rotate-kubelet-server-certificate", "Pass"},
                          {"strong-tls-cipher-suites", "Fail"}, {"pod-pids-limit", "Fail"}, {"seccomp-default", "Fail"}},
                         kKubeadmFileRulesNA)},
        ProfileCase{"kubeadm_config_file_v120", {"--config-file", kData + "file-kubeadm-var-lib-kubelet-config-v1.20.yaml", "--node", "k"}, "k",
                    With({{"anonymous-auth-disabled", "Pass"}, {"authorization-not-always-allow", "Pass"},
                          {"authentication-webhook-enabled", "Pass"}, {"client-ca-file-set", "Pass"},
                          {"read-only-port-disabled", "Pass"}, {"streaming-connection-idle-timeout", "Pass"},
                          {"protect-kernel-defaults", "Fail"}, {"make-iptables-util-chains", "Pass"},
                          {"event-record-qps", "Pass"}, {"tls-cert-file-set", "Fail"}, {"tls-private-key-file-set", "Fail"},
                          {"rotate-certificates", "Pass"}, {"rotate-kubelet-server-certificate", "Pass"},
                          {"strong-tls-cipher-suites", "Fail"}, {"pod-pids-limit", "Fail"}, {"seccomp-default", "Fail"}},
                         kKubeadmFileRulesNA)},
        ProfileCase{"eks_config_file_and_drop_in",
                    {"--config-file", kData + "file-eks-ami-al2-template-kubelet-config.json", "--flags-file",
                     kData + "file-eks-al2-10-kubelet-args.conf", "--node", "e"},
                    "e",
                    {{"anonymous-auth-disabled", "Pass"}, {"authorization-not-always-allow", "Pass"},
                     {"authentication-webhook-enabled", "Pass"}, {"client-ca-file-set", "Pass"},
                     {"read-only-port-disabled", "Pass"}, {"streaming-connection-idle-timeout", "Pass"},
                     {"make-iptables-util-chains", "Pass"}, {"event-record-qps", "Pass"}, {"rotate-certificates", "Fail"},
                     {"rotate-kubelet-server-certificate", "Pass"}, {"seccomp-default", "Fail"},
                     {"kubeconfig-file-permissions", "NotApplicable"}, {"kubelet-config-file-permissions", "NotApplicable"},
                     {"kubelet-service-file-permissions", "NotApplicable"}}},
        ProfileCase{"aks_flags_only", {"--flags-file", kData + "file-aks-etc-default-kubelet.env", "--node", "a"}, "a",
                    {{"anonymous-auth-disabled", "Pass"}, {"authorization-not-always-allow", "Pass"},
                     {"authentication-webhook-enabled", "Pass"}, {"client-ca-file-set", "Pass"},
                     {"read-only-port-disabled", "Pass"}, {"streaming-connection-idle-timeout", "Pass"},
                     {"make-iptables-util-chains", "Pass"}, {"event-record-qps", "Pass"}, {"rotate-certificates", "Pass"},
                     {"rotate-kubelet-server-certificate", "Pass"}, {"protect-kernel-defaults", "Pass"},
                     {"seccomp-default", "Fail"}, {"azure-json-file-permissions", "NotApplicable"},
                     {"kubeconfig-file-permissions", "NotApplicable"}, {"kubelet-config-file-permissions", "NotApplicable"},
                     {"kubelet-service-file-permissions", "NotApplicable"}}}),
    [](const ::testing::TestParamInfo<ProfileCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace kpc::cli

namespace kpc::cli {
namespace {

// ---- the flags of `check` ----

CheckFlags MustParseCheck(const std::vector<std::string>& args) {
  auto line = ParseCheckFlags(args);
  EXPECT_TRUE(line.ok()) << line.status().message();
  if (!line.ok()) return {};
  EXPECT_FALSE(line->help);
  return line->flags;
}

std::string CheckParseError(const std::vector<std::string>& args) {
  auto line = ParseCheckFlags(args);
  if (line.ok()) return "<parsed>";
  EXPECT_EQ(line.status().code(), StatusCode::kInvalidArgument);
  return line.status().message();
}

std::string JoinWords(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string Labels(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

struct CheckValueCase {
  std::string flag;
  std::string value;
  std::vector<std::string> other;  // to make the line valid
  std::function<std::string(const CheckFlags&)> field;
  std::string want;
};

TEST(CheckFlagsTest, EveryValueFlagParsesInBothForms) {
  const std::vector<std::string> policy = {"-p", "p.yaml"};
  const std::vector<std::string> configz = {"-p", "p.yaml", "--configz", "dir"};
  const std::vector<std::string> files = {"-p", "p.yaml", "--config-file", "c.yaml"};
  const std::vector<CheckValueCase> cases = {
      {"--policy", "a.yaml", {"--configz", "d"}, [](const CheckFlags& f) { return JoinWords(f.policies); }, "a.yaml"},
      {"-p", "a.yaml", {"--configz", "d"}, [](const CheckFlags& f) { return JoinWords(f.policies); }, "a.yaml"},
      {"--configz", "nodes/", policy, [](const CheckFlags& f) { return f.configz; }, "nodes/"},
      {"--config-file", "/etc/k.yaml", policy, [](const CheckFlags& f) { return f.config_file; }, "/etc/k.yaml"},
      {"--flags-file", "/etc/default/kubelet", policy, [](const CheckFlags& f) { return JoinWords(f.flags_files); },
       "/etc/default/kubelet"},
      {"--node", "worker-1", files, [](const CheckFlags& f) { return f.node; }, "worker-1"},
      {"--node-labels", "a=1,b=,c", configz, [](const CheckFlags& f) { return Labels(f.node_labels); },
       "a=1,b=,c="},
      {"--kubelet-version", "v1.30.2", configz,
       [](const CheckFlags& f) { return std::to_string(f.kubelet_minor.value_or(-1)); }, "30"},
      {"--kubelet-version", "1.28", configz,
       [](const CheckFlags& f) { return std::to_string(f.kubelet_minor.value_or(-1)); }, "28"},
      {"--kubelet-version", "29", configz,
       [](const CheckFlags& f) { return std::to_string(f.kubelet_minor.value_or(-1)); }, "29"},
      {"--kubeconfig", "/k", {}, [](const CheckFlags& f) { return f.kubeconfig + (f.live ? " live" : ""); },
       "/k live"},
      {"--context", "ctx", {"--live"}, [](const CheckFlags& f) { return f.context; }, "ctx"},
      {"--output", "json", configz, [](const CheckFlags& f) { return f.output; }, "json"},
      {"-o", "json", configz, [](const CheckFlags& f) { return f.output; }, "json"},
      {"--color", "never", configz, [](const CheckFlags& f) { return f.color; }, "never"},
      {"--color", "always", configz, [](const CheckFlags& f) { return f.color; }, "always"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> spaced = c.other, joined = c.other;
    spaced.insert(spaced.end(), {c.flag, c.value});
    joined.push_back(c.flag + "=" + c.value);
    EXPECT_EQ(c.field(MustParseCheck(spaced)), c.want) << JoinWords(spaced);
    if (c.flag.rfind("--", 0) == 0) {
      EXPECT_EQ(c.field(MustParseCheck(joined)), c.want) << JoinWords(joined);
    }
  }
}

TEST(CheckFlagsTest, DefaultsAndRepeatedFlags) {
  CheckFlags f = MustParseCheck({"--policy", "a.yaml", "--configz", "d"});
  EXPECT_EQ(f.output, "table");
  EXPECT_EQ(f.color, "auto");
  EXPECT_FALSE(f.live);
  EXPECT_FALSE(f.labels_given);
  EXPECT_TRUE(f.node_labels.empty());
  EXPECT_FALSE(f.kubelet_minor);
  EXPECT_EQ(f.node, "");

  f = MustParseCheck({"-p", "a.yaml", "--policy=b.yaml", "-p", "c.yaml", "--flags-file", "1.conf",
                      "--flags-file=2.conf", "--node-labels", "a=1,b=2", "--node-labels=b=3,c=4", "--output", "json",
                      "-o", "table"});
  EXPECT_EQ(JoinWords(f.policies), "a.yaml,b.yaml,c.yaml");
  EXPECT_EQ(JoinWords(f.flags_files), "1.conf,2.conf");
  EXPECT_EQ(Labels(f.node_labels), "a=1,b=3,c=4");  // merged, later wins
  EXPECT_EQ(f.output, "table");                      // last wins

  // --node-labels with nothing in it still means "the node's labels are known: none"
  f = MustParseCheck({"-p", "a.yaml", "--configz", "d", "--node-labels="});
  EXPECT_TRUE(f.labels_given);
  EXPECT_TRUE(f.node_labels.empty());
}

TEST(CheckFlagsTest, LiveMode) {
  EXPECT_TRUE(MustParseCheck({"--live"}).live);
  EXPECT_TRUE(MustParseCheck({"--kubeconfig", ""}).live);
  EXPECT_TRUE(MustParseCheck({"--kubeconfig=/k", "--live=false"}).live);
  EXPECT_TRUE(MustParseCheck({"--live=false", "--kubeconfig=/k"}).live);
  EXPECT_FALSE(MustParseCheck({"--live=false", "-p", "a.yaml", "--configz", "d"}).live);
  EXPECT_EQ(JoinWords(MustParseCheck({"--live", "-p", "a.yaml"}).policies), "a.yaml");
}

TEST(CheckFlagsTest, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-p", "a", "--configz", "d", "--output", "yaml"}, "--output: must be table or json, got \"yaml\""},
      {{"-p", "a", "--configz", "d", "-o", "wide"}, "--output: must be table or json, got \"wide\""},
      {{"--live", "--output=yaml"}, "--output: must be table or json"},
      {{"-p", "a", "--configz", "d", "--color", "sometimes"}, "--color: must be auto, always or never"},
      {{"--live", "--color=yes"}, "--color: must be auto, always or never"},
      {{"-p", "a", "--configz", "d", "--kubelet-version", "latest"},
       "--kubelet-version: \"latest\" is not a version like v1.30.2"},
      {{"--policy", "", "--configz", "d"}, "--policy: needs a FILE, got \"\""},
      {{"-p", "a", "--flags-file="}, "--flags-file: needs a FILE"},
      {{"-p", "a", "--configz"}, "--configz needs a value: --configz PATH or --configz=PATH"},
      {{"-p"}, "--policy needs a value"},
      {{"--live=maybe"}, "--live: must be true or false, got \"maybe\""},
  };
  for (const auto& [args, want] : cases) {
    EXPECT_NE(CheckParseError(args).find(want), std::string::npos)
        << JoinWords(args) << " -> " << CheckParseError(args) << "\nwant: " << want;
  }
}

TEST(CheckFlagsTest, UnknownFlagsAndStrayWords) {
  EXPECT_EQ(CheckParseError({"-p", "a", "--configz", "d", "--bogus"}), "unknown flag \"--bogus\"");
  EXPECT_EQ(CheckParseError({"-p", "a", "--configz", "d", "-x"}), "unknown flag \"-x\"");
  EXPECT_EQ(CheckParseError({"-p", "a", "b", "--configz", "d"}), "unexpected argument \"b\" (flags start with --)");
}

TEST(CheckFlagsTest, ChecksAcrossFlags) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--configz", "d"}, "--policy FILE is required (one or more)"},
      {{"-p", "a"}, "give the node configuration: --configz PATH, or --config-file FILE and/or --flags-file FILE"},
      {{"-p", "a", "--configz", "d", "--config-file", "c"}, "use either --configz or --config-file/--flags-file, not both"},
      {{"-p", "a", "--configz", "d", "--flags-file", "c"}, "use either --configz or --config-file/--flags-file"},
      {{"-p", "a", "--configz", "d", "--node", "n"}, "--node is for --config-file/--flags-file"},
      {{"--live", "--configz", "d"}, "with --kubeconfig (live mode) nodes, labels and configz come from the cluster"},
      {{"--kubeconfig", "k", "--node-labels", "a=b"}, "with --kubeconfig (live mode)"},
      {{"--kubeconfig", "k", "--node", "n"}, "with --kubeconfig (live mode)"},
      {{"--kubeconfig", "k", "--config-file", "c"}, "with --kubeconfig (live mode)"},
  };
  for (const auto& [args, want] : cases) {
    EXPECT_NE(CheckParseError(args).find(want), std::string::npos) << JoinWords(args) << " -> " << CheckParseError(args);
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"-p", "a", "--configz", "d"},
                                                                {"-p", "a", "--config-file", "c", "--node", "n"},
                                                                {"-p", "a", "--flags-file", "f"},
                                                                {"--live"},
                                                                {"--kubeconfig", "k", "-p", "a", "-o", "json"}}) {
    EXPECT_EQ(CheckParseError(args), "<parsed>") << JoinWords(args);
  }
}

TEST(CheckFlagsTest, HelpGroupsAreTrue) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"-p", "a", "--help"}}) {
    auto line = ParseCheckFlags(args);
    ASSERT_TRUE(line.ok()) << line.status().message();
    ASSERT_TRUE(line->help);
  }
  const std::string help = *ParseCheckFlags({"--help"})->help;
  const std::map<std::string, std::vector<std::string>> want = {
      {"Inputs",
       {"--policy", "--configz", "--config-file", "--flags-file", "--node", "--node-labels", "--kubelet-version"}},
      {"Live mode", {"--live", "--kubeconfig", "--context"}},
      {"Output", {"--output", "--color"}},
  };
  EXPECT_EQ(help_text::HelpGroups(help), want) << help;
  EXPECT_NE(help_text::HelpEntry(help, "--policy").find("--policy, -p FILE"), std::string::npos);
  EXPECT_NE(help_text::HelpEntry(help, "--policy").find("(repeatable)"), std::string::npos);
  EXPECT_NE(help_text::HelpEntry(help, "--flags-file").find("(repeatable)"), std::string::npos);
  EXPECT_NE(help_text::HelpEntry(help, "--output").find("--output, -o FORMAT"), std::string::npos);
  EXPECT_NE(help_text::HelpEntry(help, "--output").find("(default table)"), std::string::npos);
  EXPECT_NE(help_text::HelpEntry(help, "--color").find("(default auto)"), std::string::npos);
  EXPECT_NE(help.find("\nExit status: 0 no rule fails, 1 a rule fails or could not be evaluated, 2 invalid input.\n"),
            std::string::npos);
}

TEST(CheckFlagsTest, RunCheckExitCodesForHelpAndUsageErrors) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCheck({"--help"}, out, err, kNow, false), 0);
  EXPECT_EQ(out.str(), *ParseCheckFlags({"--help"})->help);
  EXPECT_EQ(err.str(), "");
  std::ostringstream out2, err2;
  EXPECT_EQ(RunCheck({"-p", kApiExample, "--configz", "d", "--color=blue"}, out2, err2, kNow, false), 2);
  EXPECT_EQ(out2.str(), "");
  EXPECT_EQ(err2.str(),
            "error: --color: must be auto, always or never, got \"blue\"\n\n"
            "Run 'kubelet-policy-controller check --help' for usage.\n");
}

}  // namespace
}  // namespace kpc::cli
