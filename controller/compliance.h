#pragma once
// The compliance controller: schedules a /configz check of every selected node (the shortest
// checkInterval of the policies selecting it), parses each answer once, evaluates every policy
// that selects the node (evaluations cached per node until the check, the node or the policy
// changes), and reconciles a policy's status: through the status subresource, only when it
// changed, with Events on node transitions and metrics. For DryRun/Enforce policies the
// remediation controller lays its rollout over the verdicts before the one status write.
//
// Reconcile is level-based and idempotent, called for one policy at a time per key; the rest is
// thread-safe. Start/Stop run the configz scheduler (leader only).
//
// A throttled fetch (reason Throttled, a 429) is counted in
// kubeletpolicy_configz_fetch_errors_total but recorded nowhere: the node keeps its last check
// (a node never checked stays Pending), so no state changes and no Event is written; its next
// check waits for the answer's Retry-After.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/metrics.h"
#include "controller/configz_scheduler.h"
#include "controller/configz_source.h"
#include "controller/node_facts.h"
#include "controller/node_info.h"
#include "controller/policy_index.h"
#include "controller/policy_status.h"
#include "controller/reconcile.h"
#include "controller/remediation_controller.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/store.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::controller {

// ---- pure pieces ----

// The check interval of a node: the shortest checkInterval of the policies selecting it;
// nullopt when none does.
std::optional<std::chrono::nanoseconds> CheckInterval(
    const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies);

// The node's result for `policy` from its latest check and file facts: Unknown when the check
// failed, else the verdict of the evaluation (written to `evaluation`).
NodeResult EvaluateCheck(const policy::KubeletPolicy& policy, const NodeInfo& node,
                         const ConfigzResult& check, policy::NodeFacts facts, int64_t now_unix,
                         policy::NodeEvaluation* evaluation);

// The per-node states a policy's status reports (to continue from after a restart).
std::map<std::string, NodeState> StatesFromStatus(const nlohmann::json& status);

struct NodeEvent {
  std::string node;
  std::string type, reason, message;
};
// Events for the nodes whose state changed since `before` (a node missing there was Compliant),
// and the states to remember. Pending nodes keep their previous state and make no Event;
// moving between non-compliant states (NonCompliant, Planned, Failed, Blocked) is no news.
std::vector<NodeEvent> TransitionEvents(const std::string& policy,
                                        const std::map<std::string, NodeState>& before,
                                        const std::vector<NodeResult>& results,
                                        std::map<std::string, NodeState>* next);

// When the next exception of `policy` expires after `now_unix` (that changes verdicts then).
std::optional<int64_t> NextExceptionExpiry(const policy::KubeletPolicy& policy, int64_t now_unix);

// ---- the controller ----

struct ComplianceOptions {
  std::chrono::milliseconds configz_timeout{10000};
  SchedulerOptions scheduler;
};

class ComplianceController {
 public:
  struct Hooks {
    std::function<void(const std::string& node)>
        checked;  // a check finished: reconcile its policies
  };
  // Every reference must outlive the controller.
  ComplianceController(kube::Client& client, ConfigzSource& configz, kube::EventRecorder& events, Registry& metrics,
                       const Clock& clock, const kube::Store& policies, const kube::Store& nodes,
                       const PolicyIndex& index, NodeFactsStore& facts,
                       RemediationController& remediation, ComplianceOptions options, Hooks hooks);
  ~ComplianceController();

  ReconcileResult Reconcile(const std::string& name);

  // Checks the node on schedule when `policies` select it, else stops checking it.
  void Reschedule(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies);
  void Trigger(const std::string& node);  // check now (after a throttled node's Retry-After)
  void Forget(const std::string& node);   // the node is gone: its schedule and check go
  // Stores a check's result (the scheduler's fetches end here) and reports it through `checked`.
  void Record(const std::string& node, ConfigzResult result);

  void Start();
  void Stop();
  size_t InFlight() const { return scheduler_->InFlight(); }
  // What is kept per node (tests: nothing stays behind a deleted node).
  size_t ScheduledNodes() const { return scheduler_->Scheduled().size(); }
  size_t CheckedNodes() const { return checks_.Size(); }
  // Nodes remembered for `policy` (reported states, cached evaluations), the larger count.
  // REQUIRES: no reconcile of `policy` in progress.
  size_t RememberedNodes(const std::string& policy);

 private:
  // What the leader remembers of one policy between reconciles.
  struct Memory {
    int64_t generation = -1;
    std::chrono::steady_clock::time_point generation_seen;
    bool states_loaded = false;
    std::map<std::string, NodeState> states;  // last reported state per node (for Events)
    std::vector<std::string> rule_ids;        // for removing metrics
    // The evaluation of each node's latest check, reused while nothing it depends on changed
    // (the check, the node's labels and kubelet version, the policy's generation, its file
    // facts, an exception expiring), so a reconcile evaluates only the nodes whose check is new.
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
  };
  struct Selected {
    std::vector<NodeResult> results;
    std::vector<RolloutNode> rollout;  // points into Memory::evaluations
  };

  void Fetch(const std::string& node);
  Selected EvaluateSelected(const policy::KubeletPolicy& policy, Memory& mem, int64_t now_unix);
  ReconcileResult ReconcileValid(const policy::KubeletPolicy& policy, const nlohmann::json& obj,
                                 Memory& mem, StatusInput& in, int64_t refresh);
  Status WriteStatus(const std::string& name, nlohmann::json obj, const StatusInput& in,
                     int64_t refresh_seconds);
  void UpdateMetrics(const std::string& name, const StatusInput& in, Memory& mem);
  void RemoveMetrics(const std::string& name, const Memory& mem);

  kube::Client& client_;
  ConfigzSource& configz_;
  const std::string source_;  // the metrics label
  kube::EventRecorder& events_;
  const Clock& clock_;
  const kube::Store& policies_;
  const kube::Store& nodes_;
  const PolicyIndex& index_;
  NodeFactsStore& facts_;
  RemediationController& remediation_;
  const ComplianceOptions options_;
  const Hooks hooks_;
  NodeCheckStore checks_;
  std::unique_ptr<ConfigzScheduler> scheduler_;
  std::mutex mem_mu_;
  std::map<std::string, Memory> memory_;

  GaugeFamily& nodes_gauge_;
  GaugeFamily& rule_gauge_;
  HistogramFamily& fetch_latency_;
  CounterFamily& fetch_errors_;
  CounterFamily& status_writes_;
  CounterFamily& input_rejected_;
};

}  // namespace kpc::controller
