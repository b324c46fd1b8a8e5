#pragma once
// The operator: informers for KubeletPolicy and Node, the configz scheduler, a work queue of
// policy keys and the level-based reconciler that evaluates every selected node and writes the
// policy's status (through the status subresource), Events on transitions, and metrics.
//
// Start() runs the informers (every replica keeps warm caches); RunLeader() runs the scheduler
// and the workers until `stop` returns true — only the leader calls it.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "controller/configz_scheduler.h"
#include "base/metrics.h"
#include "controller/node_info.h"
#include "controller/policy_status.h"
#include "controller/remediation.h"
#include "controller/work_queue.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "policy/model.h"
#include "policy/parse_cache.h"

namespace kpc::controller {

inline constexpr const char* kPolicyPath = "/apis/kubeletpolicy.io/v1alpha1/kubeletpolicies";

struct OperatorOptions {
  int workers = 2;
  std::chrono::milliseconds configz_timeout{10000};
  SchedulerOptions scheduler;
  std::string component = "kubelet-policy-controller";
  RemediationOptions remediation;
  std::chrono::seconds file_audit_interval{3600};
  double file_audit_qps = 5;  // audit Jobs created per second
};

class Operator {
 public:
  Operator(kube::Client& client, kube::EventRecorder& events, Registry& metrics, const Clock& clock,
           OperatorOptions options);
  ~Operator();

  void Start();             // informers
  bool HasSynced() const;   // both caches listed
  void RunLeader(const std::function<bool()>& stop);  // blocks
  void Stop();

  // One reconcile of a policy (exposed for tests and for `check --kubeconfig`).
  Status Reconcile(const std::string& name);

  // The KubeletPolicies in the informer cache (every replica; e.g. for the admission webhook's
  // conflict check). Empty until the cache has synced.
  std::vector<nlohmann::json> CachedPolicies() const;
  // The parse of each policy, shared with the admission webhook's conflict check.
  policy::PolicyParseCache& ParseCache() { return parse_cache_; }

 private:
  struct PolicyMemory {
    int64_t generation = -1;
    std::chrono::steady_clock::time_point generation_seen;
    bool states_loaded = false;
    std::map<std::string, NodeState> states;  // last reported state per node (for Events)
    std::vector<std::string> rule_ids;        // for removing metrics
    // The evaluation of each node's latest check, reused while nothing it depends on changed
    // (the check, the node's labels and kubelet version, the policy's generation), so a
    // reconcile evaluates only the nodes whose check is new.
    struct CachedEvaluation {
      std::chrono::steady_clock::time_point checked_at;
      int64_t generation = 0;
      std::map<std::string, std::string> labels;
      std::optional<int> kubelet_minor;
      int64_t evaluated_unix = 0;
      uint64_t facts_version = 0;
      NodeResult result;
      policy::NodeEvaluation evaluation;
    };
    std::map<std::string, CachedEvaluation> evaluations;
    // Remediation Jobs created but not yet seen by the Job informer (count against
    // maxUnavailable), and when each finished Job was first seen (its verification needs a
    // /configz check from after that).
    std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> created_jobs;
    std::map<std::string, std::chrono::steady_clock::time_point> finished_seen;
  };

  // The latest file audit of a node (from the audit Job's pod), and the files a remediation
  // reported after changing them.
  struct AuditRecord {
    agent::AgentResult result;
    int64_t created_unix = 0;
    std::string pod_uid;
    uint64_t version = 0;
    std::string error;
  };

  void OnPolicyChange(const nlohmann::json* old_obj, const nlohmann::json* new_obj);
  void OnNodeChange(const nlohmann::json* old_obj, const nlohmann::json* new_obj);
  void FetchConfigz(const std::string& node);
  void ScheduleNode(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies);
  void RescheduleAll();
  std::vector<policy::KubeletPolicy> ValidPolicies() const;
  // ParsePolicy of a cached object, memoized by resourceVersion (node events and audits ask for
  // every policy; parsing each time would dominate large fleets).
  std::shared_ptr<const policy::PolicyParseResult> Parsed(const nlohmann::json& obj) const {
    return parse_cache_.Parse(obj);
  }
  void EnqueuePoliciesSelecting(const NodeInfo& node);
  Status WriteStatus(const std::string& name, nlohmann::json obj, const StatusInput& in,
                     int64_t refresh_seconds);
  void EmitTransitions(const policy::KubeletPolicy& policy, const nlohmann::json& obj, PolicyMemory& mem,
                       const std::vector<NodeResult>& results, const std::map<std::string, std::string>& uids);
  // An Event about one node of a policy: recorded on the policy and on the Node.
  void RecordAboutNode(const kube::ObjectRef& policy, const kube::ObjectRef& node, const std::string& type,
                       const std::string& reason, const std::string& message);
  void UpdatePolicyMetrics(const std::string& name, const StatusInput& in, PolicyMemory& mem);
  void RemovePolicyMetrics(const std::string& name, PolicyMemory& mem);
  void Worker(const std::function<bool()>& stop);
  // Remediation and file audits.
  void OnPod(const nlohmann::json& pod);
  void OnJob(const nlohmann::json& job, bool deleted);
  void EnsureAudit(const std::string& node);
  policy::NodeFacts FactsFor(const NodeInfo& node, uint64_t* version) const;
  void Remediate(const policy::KubeletPolicy& policy, const nlohmann::json& obj, PolicyMemory& mem,
                 StatusInput& in, const std::map<std::string, NodeInfo>& infos);
  std::vector<std::pair<policy::KubeletPolicy, std::vector<std::string>>> ConflictingPolicies(
      const policy::KubeletPolicy& policy) const;

  kube::Client& client_;
  kube::EventRecorder& events_;
  const Clock& clock_;
  const OperatorOptions options_;
  WorkQueue queue_;
  NodeCheckStore checks_;
  std::unique_ptr<kube::Informer> policies_;
  std::unique_ptr<kube::Informer> nodes_;
  std::unique_ptr<ConfigzScheduler> scheduler_;
  std::unique_ptr<kube::Informer> jobs_;
  std::unique_ptr<kube::Informer> pods_;
  std::unique_ptr<ConfigzScheduler> auditor_;
  mutable std::mutex results_mu_;
  std::map<std::string, AuditRecord> audits_;                          // node -> latest audit
  std::map<std::string, StatusOr<agent::AgentResult>> job_results_;    // remediation Job -> result
  uint64_t audit_version_ = 0;
  mutable policy::PolicyParseCache parse_cache_;
  mutable std::mutex mem_mu_;
  std::map<std::string, PolicyMemory> memory_;

  // metrics
  GaugeFamily& nodes_gauge_;
  GaugeFamily& rule_gauge_;
  HistogramFamily& fetch_latency_;
  CounterFamily& fetch_errors_;
  HistogramFamily& reconcile_duration_;
  CounterFamily& status_writes_;
  CounterFamily& jobs_created_;
  CounterFamily& remediations_;
};

}  // namespace kpc::controller
