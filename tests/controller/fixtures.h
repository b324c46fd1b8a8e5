#pragma once
// Shared test fixtures of the controller tests: a policy with config and file rules, and the
// evaluation of a node that fails every one of them.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "agent/result.h"
#include "controller/node_facts.h"
#include "policy/effective_config.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::controller::fixtures {

using nlohmann::json;
namespace pol = kpc::policy;

// Enforce, generation 3: "stream" (remediable), "qps" (no remediation value), "authz"
// (remediation disabled), "kubeconfig-perms" (a file rule). `spec_patch` is merged into spec.
inline pol::KubeletPolicy Policy(const json& spec_patch = json::object(),
                                 const std::string& name = "cis") {
  json obj = json::parse(R"({
    "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy",
    "metadata": {"name": "cis", "uid": "u-1", "generation": 3},
    "spec": {"enforcement": "Enforce", "rules": [
      {"id": "stream", "config": {"path": "streamingConnectionIdleTimeout", "operator": "NotEquals", "value": "0s"},
       "remediation": {"value": "4h0m0s"}},
      {"id": "qps", "config": {"path": "eventRecordQPS", "operator": "GreaterThanOrEqual", "value": 5}},
      {"id": "authz", "config": {"path": "authorization.mode", "operator": "NotEquals", "value": "AlwaysAllow"},
       "remediation": {"value": "Webhook", "enabled": false}},
      {"id": "kubeconfig-perms", "file": {"target": "KubeletKubeconfig", "maxMode": "0600", "owner": "root", "group": "root"}}
    ]}})");
  obj["metadata"]["name"] = name;
  obj["spec"].merge_patch(spec_patch);
  auto r = pol::ParsePolicy(obj);
  EXPECT_TRUE(r.policy.has_value())
      << (r.errors.empty() ? "" : r.errors[0].field + ": " + r.errors[0].message);
  return *r.policy;
}

// The evaluation of Policy()'s rules on a node whose /configz holds `kubeletconfig` and whose
// kubeconfig (/etc/kubernetes/kubelet.conf) has `mode`, owned by `owner`:root.
inline pol::NodeEvaluation EvaluateWith(const pol::KubeletPolicy& p, const json& kubeletconfig,
                                        uint32_t mode, const std::string& owner,
                                        pol::NodeFacts* facts_out = nullptr) {
  auto config = pol::EffectiveConfigFromConfigz(json{{"kubeletconfig", kubeletconfig}}.dump());
  EXPECT_TRUE(config.ok());
  pol::NodeFacts facts;
  facts.name = "worker-1";
  agent::AgentResult audit;
  audit.command = "audit-files";
  audit.ok = true;
  audit.kubelet.kubeconfig = "/etc/kubernetes/kubelet.conf";
  pol::FileFacts f;
  f.exists = true;
  f.mode = mode;
  f.uid = owner == "root" ? 0 : 1000;
  f.owner = owner;
  f.group = "root";
  audit.files["/etc/kubernetes/kubelet.conf"] = f;
  MergeAuditFacts(audit, facts);
  if (facts_out) *facts_out = facts;
  return pol::EvaluateNode(p, facts, *config, 0);
}

// A node failing every rule of Policy(): timeout 0s, qps 0, AlwaysAllow, kubeconfig 0644
// alice:root.
inline pol::NodeEvaluation FailingEverything(const pol::KubeletPolicy& p,
                                             pol::NodeFacts* facts_out = nullptr) {
  return EvaluateWith(p,
                      json::parse(R"({"streamingConnectionIdleTimeout": "0s", "eventRecordQPS": 0,
                                         "authorization": {"mode": "AlwaysAllow"}})"),
                      0644, "alice", facts_out);
}

// A node passing every rule of Policy().
inline pol::NodeEvaluation PassingEverything(const pol::KubeletPolicy& p) {
  return EvaluateWith(
      p, json::parse(R"({"streamingConnectionIdleTimeout": "4h0m0s", "eventRecordQPS": 5,
                                         "authorization": {"mode": "Webhook"}})"),
      0600, "root");
}

}  // namespace kpc::controller::fixtures
