// Fuzz target: a node's configuration to a compliance verdict, the controller's path: a
// /configz body (or a kubelet config file) -> the effective configuration
// (policy/effective_config.h) -> the fixed CIS policy evaluated against it (policy/evaluate.h).
// Properties: no crash, sanitizer report or escaping exception; what is accepted nests no
// deeper than its limit (policy/limits.h); an evaluation has one result
// per rule, in policy order, each with a message unless it is NotApplicable; file rules
// without file facts are NotApplicable; Compliant()/HasErrors()/FailedRules() agree with the
// results; EvaluateConfigRule gives the same result as EvaluateNode for non-exempt rules.
// Input: a /configz body or a config file [NUL choices: kubelet minor, file-or-configz, file
// facts].

#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/effective_config.h"
#include "policy/evaluate.h"
#include "policy/limits.h"
#include "tests/fuzz/cis_policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace policy = kpc::policy;

// 2026-01-01: before the CIS policy's exception expires (2027-01-31).
constexpr int64_t kNowUnix = 1767225600;

void Evaluate(const policy::EffectiveConfig& config, kpc::fuzz::Input& in) {
  const policy::KubeletPolicy& cis = kpc::fuzz::CisPolicy();
  policy::NodeFacts node;
  node.name = "node-1";
  if (uint8_t m = in.Byte(); m % 3 != 0) node.kubelet_minor = 20 + m % 20;
  if (in.Byte() % 2 == 1) node.labels["pool"] = "legacy-monitoring";  // the exception's nodes
  const bool audited = in.Byte() % 2 == 1;
  if (audited) {
    node.file_targets["KubeletConfigFile"] = "/var/lib/kubelet/config.yaml";
    node.file_targets["KubeletKubeconfig"] = "/etc/kubernetes/kubelet.conf";
    policy::FileFacts f;
    f.exists = in.Byte() % 4 != 0;
    f.mode = (static_cast<uint32_t>(in.Byte()) << 8 | in.Byte()) & 07777;
    f.uid = in.Byte() % 2;
    f.owner = f.uid == 0 ? "root" : "";
    node.files["/var/lib/kubelet/config.yaml"] = f;
  }
  policy::NodeEvaluation ev = policy::EvaluateNode(cis, node, config, kNowUnix);
  FUZZ_CHECK(ev.rules.size() == cis.rules.size(), std::to_string(ev.rules.size()));
  bool failed = false, errors = false;
  size_t failed_count = 0;
  for (size_t i = 0; i < ev.rules.size(); ++i) {
    const policy::RuleEvaluation& r = ev.rules[i];
    const policy::Rule& rule = cis.rules[i];
    FUZZ_CHECK(r.rule_id == rule.id, r.rule_id + " at " + std::to_string(i));
    FUZZ_CHECK(r.result == policy::RuleResult::kNotApplicable || !r.message.empty(), r.rule_id);
    if (rule.file && !audited) {
      FUZZ_CHECK(r.result == policy::RuleResult::kNotApplicable, r.rule_id + ": " + r.message);
    }
    if (rule.config && r.result != policy::RuleResult::kExempt) {
      policy::RuleEvaluation alone = policy::EvaluateConfigRule(rule, config, node.kubelet_minor);
      FUZZ_CHECK(alone.result == r.result, r.rule_id + ": " + r.message + " / " + alone.message);
    }
    failed |= r.result == policy::RuleResult::kFail;
    errors |= r.result == policy::RuleResult::kError;
    if (r.result == policy::RuleResult::kFail || r.result == policy::RuleResult::kError)
      ++failed_count;
  }
  FUZZ_CHECK(ev.Compliant() == !(failed || errors), "Compliant()");
  FUZZ_CHECK(ev.HasErrors() == errors, "HasErrors()");
  FUZZ_CHECK(ev.FailedRules().size() <= failed_count, "FailedRules()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const uint8_t mode = in.Byte();
  const std::string_view text = in.text();
  if (mode % 2 == 0) {
    auto config = policy::EffectiveConfigFromConfigz(text);
    if (config.ok()) {
      FUZZ_CHECK(config->live && config->config.is_object(), "configz");
      FUZZ_CHECK(!policy::NestsDeeperThan(config->config, policy::kConfigzLimits.max_depth),
                 "a /configz deeper than its limit was accepted");
      Evaluate(*config, in);
    }
  } else {
    auto file = policy::ParseKubeletConfigFile(text, mode % 4 == 1 ? "config.yaml" : "config.json");
    if (!file.ok()) return 0;
    FUZZ_CHECK(file->is_object(), "not an object");
    FUZZ_CHECK(!policy::NestsDeeperThan(*file, policy::kKubeletConfigFileLimits.max_depth),
               "a config file deeper than its limit was accepted");
    auto config = policy::ComputeEffectiveConfig(*file, {});
    if (config.ok()) {
      FUZZ_CHECK(!config->live && config->config.is_object(), "computed");
      Evaluate(*config, in);
    }
  }
  return 0;
}
