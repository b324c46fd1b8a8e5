#pragma once
// The operator behind `run`: informers for KubeletPolicies, Nodes, and the Jobs and Pods of the
// remediation namespace (every replica keeps them warm), a work queue of policy keys, and three
// controllers over those caches — compliance (configz checks, evaluation, status, Events),
// remediation (rollouts of DryRun/Enforce policies) and file audit (audit Jobs, file facts).
// Informer events are routed to the controllers here; reconciles run on the queue's workers,
// which only the leader runs. A deleted Node is forgotten at once (its check schedules, last
// check, file facts and audit backoff) and the policies that selected it are reconciled, which
// drops it from their memory and rollouts; a deleted Job or pod drops the Job's result.
//
// Start() runs the informers; RunLeader() runs the schedulers and the workers until `stop`
// returns true — only the leader calls it. Thread-safe.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/metrics.h"
#include "controller/compliance.h"
#include "controller/configz_scheduler.h"
#include "controller/configz_source.h"
#include "controller/file_audit.h"
#include "controller/manager.h"
#include "controller/node_facts.h"
#include "controller/policy_index.h"
#include "controller/remediation.h"
#include "controller/remediation_controller.h"
#include "controller/work_queue.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "policy/parse_cache.h"

namespace kpc::controller {

// Where /configz comes from (controller/configz_source.h).
struct ConfigzAccess {
  ConfigzSourceKind source = ConfigzSourceKind::kKubelet;
  // kubelet mode: REQUIRED non-null http (the kubelet TLS settings) and tokens.
  KubeletSourceOptions kubelet;
  std::shared_ptr<net::HttpClient> kubelet_http;
  std::shared_ptr<kube::TokenSource> kubelet_tokens;
};

struct OperatorOptions {
  int workers = 2;
  std::chrono::milliseconds configz_timeout{10000};
  size_t configz_max_bytes = policy::kConfigzLimits.max_bytes;  // of each /configz answer
  ConfigzAccess configz;
  SchedulerOptions scheduler;
  std::string component = "kubelet-policy-controller";
  RemediationOptions remediation;
  std::chrono::seconds file_audit_interval{3600};
  double file_audit_qps = 5;  // audit Jobs created per second
};

class Operator {
 public:
  // Every reference must outlive the operator.
  Operator(kube::Client& client, kube::EventRecorder& events, Registry& metrics, const Clock& clock,
           OperatorOptions options);
  ~Operator();

  void Start();            // informers
  bool HasSynced() const;  // the policy and node caches have listed
  void RunLeader(const std::function<bool()>& stop);  // blocks
  void Stop();

 private:
  void OnPolicyChange(const nlohmann::json* old_obj, const nlohmann::json* new_obj);
  void OnNodeChange(const nlohmann::json* old_obj, const nlohmann::json* new_obj);
  void RescheduleAll();
  void Reschedule(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies);
  void EnqueuePoliciesSelecting(const NodeInfo& node);
  void EnqueuePoliciesSelecting(const std::string& node);
  void StartWorkers();
  void StopWorkers();
  void Worker();

  const Clock& clock_;
  const OperatorOptions options_;
  WorkQueue queue_;
  policy::PolicyParseCache parse_cache_;
  NodeFactsStore facts_;
  std::unique_ptr<kube::Informer> policies_;
  std::unique_ptr<kube::Informer> nodes_;
  std::unique_ptr<kube::Informer> jobs_;
  std::unique_ptr<kube::Informer> pods_;
  std::unique_ptr<PolicyIndex> index_;
  std::unique_ptr<RemediationController> remediation_;
  std::unique_ptr<ConfigzSource> configz_;
  std::unique_ptr<ComplianceController> compliance_;
  std::unique_ptr<FileAuditController> audits_;
  Manager manager_;
  std::atomic<bool> workers_stop_{false};
  std::function<bool()> leader_stop_;
  std::vector<std::thread> workers_;
  HistogramFamily& reconcile_duration_;
};

}  // namespace kpc::controller
