#pragma once
// The rollout of a DryRun or Enforce KubeletPolicy over its selected nodes (api.md
// "Remediation", "Enforcement"): which node gets a remediation Job now (at most
// remediation.maxUnavailable at once), whose finished Job is verified through /configz, which
// node is Blocked (a conflicting policy, a flag the agent cannot rewrite) or only Planned
// (DryRun), and when the rollout stalls (failureThreshold consecutive failures; it stays stalled
// until the spec changes). Jobs of nodes that are no longer selected — deleted mid-remediation,
// or relabelled — neither count as failures nor take a maxUnavailable slot, whether they
// failed, are still running, or were only just created.
//
// Pure: PlanRollout decides over plain inputs that the remediation controller gathers from its
// caches, and returns the status of every node plus the actions to carry out, in order.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "agent/result.h"
#include "base/status.h"
#include "controller/node_info.h"
#include "controller/policy_status.h"
#include "controller/remediation.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::controller {

using TimePoint = std::chrono::steady_clock::time_point;

// What the leader remembers of one policy's rollout between reconciles. PlanRollout forgets
// entries whose Job or node has gone, so neither map outlives what it is about.
struct RolloutMemory {
  // Jobs this process created that the Job cache has not shown yet: name -> (node, when). They
  // count against maxUnavailable; forgotten once seen, after two minutes, or when the node is
  // no longer selected (deleted, relabelled).
  std::map<std::string, std::pair<std::string, TimePoint>> created_jobs;
  // When each succeeded, unverified Job was first seen: its verification needs a /configz
  // check from after that. Forgotten once verified or when the Job is gone.
  std::map<std::string, TimePoint> finished_seen;
};

// One selected node as the compliance controller left it.
struct RolloutNode {
  NodeResult result;  // the node's verdict (Compliant, NonCompliant, Unknown or Pending)
  // The evaluation behind the verdict; null when the node was not evaluated (Pending) or could
  // not be (configz unavailable).
  const policy::NodeEvaluation* evaluation = nullptr;
  bool audited = false;  // a file audit's facts went into the evaluation
  NodeInfo info;
  std::optional<TimePoint> last_check;  // when the node's latest /configz check finished
};

struct RolloutInput {
  const policy::KubeletPolicy* policy = nullptr;  // REQUIRES: enforcement DryRun or Enforce
  std::vector<RolloutNode> nodes;                 // every selected node, in status order
  bool jobs_synced = true;                        // the Job and Pod caches have listed
  std::vector<JobView> jobs;                      // this policy's remediation Jobs, any order
  // The agent's result for each remediation Job whose pod terminated (an error: no result).
  std::map<std::string, StatusOr<agent::AgentResult>> job_results;
  // Every other valid, unsuspended policy (Audit ones and the policy itself are skipped).
  std::vector<policy::KubeletPolicy> others;
  nlohmann::json previous_status;  // the policy's .status (null when none)
  RolloutMemory memory;
  TimePoint now;
  RemediationOptions options;
};

// Actions, carried out in the order given.
struct CreateJob {
  size_t node_index = 0;  // into RolloutPlan::nodes
  std::string node, node_uid;
  nlohmann::json manifest;
  std::string name;
  NodeResult if_failed;       // the node's status should the create fail
  std::string event_message;  // RemediationStarted, when the Job is new (not AlreadyExists)
};
// Records the verification verdict on a succeeded Job (annotation, safe to repeat). A failure
// other than NotFound abandons the rest of the plan: the reconcile is retried.
struct PatchVerification {
  std::string job;
  std::string node, node_uid;
  bool fixed = false;         // Succeeded (true) or Failed
  std::string event_message;  // RemediationSucceeded, when fixed
};
struct DeleteJob {  // a verified fix the node drifted away from: it runs again
  std::string job;
};
struct TriggerCheck {  // a /configz check of the node, now
  std::string node;
};
struct PolicyEvent {  // an Event on the policy only
  std::string type, reason, message;
};
using RolloutAction =
    std::variant<PatchVerification, TriggerCheck, DeleteJob, CreateJob, PolicyEvent>;

struct RolloutPlan {
  std::vector<NodeResult> nodes;  // RolloutInput::nodes with the rollout's states laid over
  std::vector<RolloutAction> actions;
  RolloutMemory memory;                // to keep for the next reconcile (plus the Jobs created)
  std::optional<std::string> stalled;  // StatusInput::rollout_stalled
  // Counts behind StatusInput::remediating / remediating_message.
  int in_progress = 0;
  int waiting = 0;
  int max_unavailable = 0;
  std::string waiting_message;  // set instead of the counts while the Job caches sync
};

RolloutPlan PlanRollout(const RolloutInput& in);

// "remediating 2 node(s) (maxUnavailable 2), 3 waiting"; empty when nothing is in progress or
// waiting.
std::string RemediatingMessage(const RolloutPlan& plan);

}  // namespace kpc::controller
