#pragma once
// The remediation controller: the rollout part of a DryRun/Enforce policy's reconcile. It
// gathers PlanRollout's inputs (the policy's remediation Jobs from the Job cache, the agent
// results read from their pods, what it remembers of the rollout) and carries the plan out:
// Jobs created, verified and deleted in the remediation namespace, Events, metrics. It also
// records every terminated remediation pod's result (the files it changed go to the node facts
// at once) and asks for the policy to be reconciled when its Jobs or pods change.
//
// Reconcile is called for one policy at a time (the work queue never hands a key to two
// workers); the rest is thread-safe. Every write is safe to repeat (deterministic Job names,
// AlreadyExists is success, NotFound on delete/patch is done).

#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/metrics.h"
#include "base/status.h"
#include "controller/node_facts.h"
#include "controller/rollout.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/store.h"

namespace kpc::controller {

// An Event about one node of a policy: recorded on the policy and on the Node.
void RecordAboutNode(kube::EventRecorder& events, const kube::ObjectRef& policy,
                     const kube::ObjectRef& node, const std::string& type,
                     const std::string& reason, const std::string& message);
kube::ObjectRef PolicyRef(const policy::KubeletPolicy& policy, const nlohmann::json& obj);

class RemediationController {
 public:
  struct Hooks {
    std::function<void(const std::string& node)> trigger_check;     // a /configz check now
    std::function<void(const std::string& policy)> enqueue_policy;  // reconcile it
  };
  // Every reference must outlive the controller.
  RemediationController(kube::Client& client, kube::EventRecorder& events, Registry& metrics,
                        const Clock& clock, const kube::Store& jobs, const kube::Store& pods,
                        NodeFactsStore& facts, RemediationOptions options, Hooks hooks);

  struct Outcome {
    std::vector<NodeResult> nodes;  // the rollout's states laid over the compliance verdicts
    std::optional<std::string> stalled;
    std::string remediating_message;  // empty: not remediating
    Status status;  // not OK: something failed (e.g. a Job create); retry with backoff
  };
  // REQUIRES: policy.enforcement is DryRun or Enforce. `others`: every other valid, unsuspended
  // policy. An error means nothing should be written for this pass (a verification could not be
  // recorded): retry with backoff.
  StatusOr<Outcome> Reconcile(const policy::KubeletPolicy& policy, const nlohmann::json& obj,
                              std::vector<RolloutNode> nodes,
                              std::vector<policy::KubeletPolicy> others);
  // The policy was deleted.
  void Forget(const std::string& policy);

  // Informer handlers. A Job's recorded result goes when the Job is deleted, or — should a late
  // pod update have brought it back — when a pod of it is deleted after the Job.
  void OnJob(const nlohmann::json& job, bool deleted);
  void OnPod(const nlohmann::json& pod);
  void OnPodDeleted(const nlohmann::json& pod);

  // What is kept per Job (tests: nothing stays behind a deleted Job).
  size_t RecordedJobResults() const;

 private:
  RolloutInput Gather(const policy::KubeletPolicy& policy, const nlohmann::json& obj,
                      std::vector<RolloutNode> nodes, std::vector<policy::KubeletPolicy> others);
  // Carries out `plan` in order, updating its nodes and counts where a Job could not be created
  // (`retry` then says why). Returns an error, with the rest of the plan skipped, when a
  // verification could not be recorded.
  Status Execute(const policy::KubeletPolicy& policy, const nlohmann::json& obj, RolloutPlan& plan,
                 Status& retry);
  std::string JobsPath() const;

  kube::Client& client_;
  kube::EventRecorder& events_;
  const Clock& clock_;
  const kube::Store& jobs_;
  const kube::Store& pods_;
  NodeFactsStore& facts_;
  const RemediationOptions options_;
  const Hooks hooks_;
  CounterFamily& jobs_created_;
  CounterFamily& remediations_;
  CounterFamily& input_rejected_;

  mutable std::mutex mu_;
  std::map<std::string, StatusOr<agent::AgentResult>>
      job_results_;                              // remediation Job -> agent result
  std::map<std::string, RolloutMemory> memory_;  // policy -> rollout memory
};

}  // namespace kpc::controller
