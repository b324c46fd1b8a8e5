#pragma once
// Remediation planning and the Jobs that carry it out (api.md "Remediation", "Enforcement").
// Pure: builds plans, agent argv, Job manifests and names, and reads Jobs and the agent's
// results (JobsCreatedCounter aside, which registers a metric). PlanRollout (rollout.h) decides a
// policy's rollout; the remediation controller does the I/O.
//
// A node's plan is the set of changes that would make its failing, remediable rules pass:
//  - a config rule that fails and has remediation.value (and remediation.enabled): set the field
//    (`agent remediate --set PATH=VALUE`; the agent rewrites the overriding flag too);
//  - a file rule that fails and has remediation.enabled: chmod to maxMode (clearing only the bits
//    outside it) and chown to owner:group, on the path the audit resolved.
// The Job name is deterministic in (policy, node, policy generation, plan), so a restarted
// controller or a second leader finds the Job it would create instead of doubling it.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/result.h"
#include "base/metrics.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::controller {

inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedBy = "kubelet-policy-controller";
inline constexpr const char* kJobTypeLabel = "kubeletpolicy.io/job-type";  // remediate | audit
inline constexpr const char* kPolicyLabel = "kubeletpolicy.io/policy";
inline constexpr const char* kNodeLabel = "kubeletpolicy.io/node";          // label-safe form
inline constexpr const char* kNodeAnnotation = "kubeletpolicy.io/node";     // exact node name
inline constexpr const char* kGenerationAnnotation = "kubeletpolicy.io/policy-generation";
inline constexpr const char* kPlanAnnotation = "kubeletpolicy.io/plan";
inline constexpr const char* kVerificationAnnotation = "kubeletpolicy.io/verification";

struct RemediationOptions {
  std::string job_namespace = "kubelet-policy-remediation";
  std::string image = "kubelet-policy-controller:latest";
  std::string image_pull_policy = "IfNotPresent";
  // argv of the kubelet restart, passed to the agent; empty = the agent's default (systemd on
  // the host through nsenter).
  std::vector<std::string> restart_command;
  // Host directories mounted into remediation Jobs under /host (audit Jobs: read-only).
  std::vector<std::string> host_paths = {"/etc", "/var/lib/kubelet", "/usr/lib/systemd", "/lib/systemd"};
  int64_t job_ttl_seconds = 24 * 3600;  // ttlSecondsAfterFinished (also the retry back-off)
  // Audit Jobs are kept until the next audit (their pods carry the result a restarted
  // controller reads back); set to the audit interval.
  int64_t audit_ttl_seconds = 3600;
  int64_t audit_timeout_seconds = 300;
};

// One planned change.
struct PlannedChange {
  std::string rule_id;
  bool file = false;
  // config rules
  std::string field;
  nlohmann::json from;  // observed (null: not set)
  nlohmann::json to;
  // file rules
  std::string path;
  std::string mode;   // "0600"; empty: unchanged
  std::string owner;  // "root:root", "root:", ":root"; empty: unchanged
  std::string Describe() const;
};

struct RemediationPlan {
  std::vector<PlannedChange> changes;
  // Failing rules that cannot be remediated (no value, remediation disabled, no audit path).
  std::vector<std::string> not_remediable;
  bool empty() const { return changes.empty(); }
  std::string Describe() const;  // "set streamingConnectionIdleTimeout 0s -> 4h0m0s; chmod ..."
};

// The plan for one node from its evaluation (rules in policy order; file rules carry the path
// the audit resolved in their observed value).
RemediationPlan PlanRemediation(const policy::KubeletPolicy& policy, const policy::NodeEvaluation& evaluation);

// `agent remediate ...` arguments (after the program name), with every `$` from user input
// doubled so that the kubelet's $(VAR) expansion gives the agent the text literally.
std::vector<std::string> RemediateArgs(const policy::KubeletPolicy& policy, const RemediationPlan& plan,
                                       const RemediationOptions& options);
std::vector<std::string> AuditArgs(const std::vector<std::string>& paths);
std::string EscapeExpansion(const std::string& s);

// Deterministic, DNS-1123, at most 63 characters: "kp-<policy>-<node>-<hash>" (parts
// truncated, the hash keeps them unique).
std::string RemediationJobName(const std::string& policy, const std::string& node, int64_t generation,
                               const std::vector<std::string>& args);
std::string AuditJobName(const std::string& node, const std::string& key);
// A label value for a node name (names over 63 characters are shortened with a hash).
std::string NodeLabelValue(const std::string& node);

struct JobSpecInput {
  std::string name;
  std::string type;  // remediate | audit
  std::string node;
  std::vector<std::string> args;  // agent arguments
  // remediate only:
  const policy::KubeletPolicy* policy = nullptr;
  std::string plan_description;
};
nlohmann::json BuildJob(const JobSpecInput& in, const RemediationOptions& options);

// What the remediation controller needs of a Job (from the Job informer).
struct JobView {
  std::string name;
  std::string uid;
  std::string type;
  std::string policy;
  std::string node;
  int64_t generation = 0;
  std::string plan;
  std::string verification;  // "", Succeeded, Failed
  int64_t created_unix = 0;
  int64_t finished_unix = 0;  // 0: not finished
  bool succeeded = false;
  bool failed = false;
  std::string failure_message;  // from the Failed condition
  bool Active() const { return !succeeded && !failed; }
};
std::optional<JobView> JobViewFromJson(const nlohmann::json& job);

// The agent's result in a pod's termination message (first container that terminated with a
// message), read within agent::kTerminationMessageLimits.
struct PodAgentResult {
  StatusOr<agent::AgentResult> result;           // an error when the message is not a result
  std::optional<policy::InputLimit> refused_by;  // the limit that refused the message, if one did
};
// nullopt when the pod has not terminated.
std::optional<PodAgentResult> AgentResultFromPod(const nlohmann::json& pod);

// metadata.creationTimestamp of any object in Unix seconds (0 when absent or malformed).
int64_t CreationUnix(const nlohmann::json& obj);
// metadata.labels[key] / metadata.annotations[key] of any object ("" when absent).
std::string LabelOf(const nlohmann::json& obj, const char* key);
std::string AnnotationOf(const nlohmann::json& obj, const char* key);

// kubeletpolicy_jobs_created_total{type}: the one counter of agent Jobs created, shared by the
// remediation and file-audit controllers.
CounterFamily& JobsCreatedCounter(Registry& metrics);

// Informer transforms: keep what the controllers read.
nlohmann::json TransformJob(const nlohmann::json& job);
nlohmann::json TransformPod(const nlohmann::json& pod);

}  // namespace kpc::controller
