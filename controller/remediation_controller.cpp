#include "controller/remediation_controller.h"

#include <spdlog/spdlog.h>

#include "policy/verdict.h"

namespace kpc::controller {

using nlohmann::json;

void RecordAboutNode(kube::EventRecorder& events, const kube::ObjectRef& policy,
                     const kube::ObjectRef& node, const std::string& type,
                     const std::string& reason, const std::string& message) {
  const std::string msg = policy::TruncateMessage(message, 1024);
  events.Record(policy, type, reason, msg);
  events.Record(node, type, reason, msg);
}

kube::ObjectRef PolicyRef(const policy::KubeletPolicy& policy, const json& obj) {
  std::string uid;
  if (obj.contains("metadata") && obj["metadata"].is_object())
    uid = obj["metadata"].value("uid", "");
  return {"kubeletpolicy.io/v1alpha1", "KubeletPolicy", policy.name, "", uid};
}

RemediationController::RemediationController(kube::Client& client, kube::EventRecorder& events,
                                             Registry& metrics, const Clock& clock,
                                             const kube::Store& jobs, const kube::Store& pods,
                                             NodeFactsStore& facts, RemediationOptions options,
                                             Hooks hooks)
    : client_(client),
      events_(events),
      clock_(clock),
      jobs_(jobs),
      pods_(pods),
      facts_(facts),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      jobs_created_(JobsCreatedCounter(metrics)),
      remediations_(metrics.AddCounter(
          "kubeletpolicy_node_remediations_total",
          "Node remediations whose Job succeeded, by the verification result (Succeeded, Failed).",
          {"result"})),
      input_rejected_(metrics.AddCounter(policy::kInputRejectedMetric, policy::kInputRejectedHelp,
                                         {"source", "limit"})) {}

std::string RemediationController::JobsPath() const {
  return "/apis/batch/v1/namespaces/" + options_.job_namespace + "/jobs";
}

RolloutInput RemediationController::Gather(const policy::KubeletPolicy& policy, const json& obj,
                                           std::vector<RolloutNode> nodes,
                                           std::vector<policy::KubeletPolicy> others) {
  RolloutInput in;
  in.policy = &policy;
  in.nodes = std::move(nodes);
  in.jobs_synced = jobs_.HasSynced() && pods_.HasSynced();
  for (const auto& j : jobs_.List()) {
    auto v = JobViewFromJson(j);
    if (v && v->type == "remediate" && v->policy == policy.name) in.jobs.push_back(std::move(*v));
  }
  in.others = std::move(others);
  in.previous_status = obj.contains("status") ? obj["status"] : json();
  in.now = clock_.Now();
  in.options = options_;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& j : in.jobs) {
    auto it = job_results_.find(j.name);
    if (it != job_results_.end()) in.job_results.emplace(j.name, it->second);
  }
  in.memory = memory_[policy.name];
  return in;
}

StatusOr<RemediationController::Outcome> RemediationController::Reconcile(
    const policy::KubeletPolicy& policy, const json& obj, std::vector<RolloutNode> nodes,
    std::vector<policy::KubeletPolicy> others) {
  RolloutInput in = Gather(policy, obj, std::move(nodes), std::move(others));
  RolloutPlan plan = PlanRollout(in);
  Status retry;
  if (Status s = Execute(policy, obj, plan, retry); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> l(mu_);
    memory_[policy.name] = plan.memory;
  }
  Outcome out;
  out.stalled = plan.stalled;
  out.remediating_message = RemediatingMessage(plan);
  out.nodes = std::move(plan.nodes);
  out.status = retry;
  return out;
}

Status RemediationController::Execute(const policy::KubeletPolicy& policy, const json& obj,
                                      RolloutPlan& plan, Status& retry) {
  const kube::ObjectRef policy_ref = PolicyRef(policy, obj);
  auto node_ref = [](const std::string& node, const std::string& uid) {
    return kube::ObjectRef{"v1", "Node", node, "", uid};
  };
  for (auto& action : plan.actions) {
    if (auto* p = std::get_if<PatchVerification>(&action)) {
      json patch = {
          {"metadata",
           {{"annotations", {{kVerificationAnnotation, p->fixed ? "Succeeded" : "Failed"}}}}}};
      kube::Result r =
          client_.Patch(JobsPath() + "/" + p->job, patch, "application/merge-patch+json");
      if (!r.ok() && r.status.code() != StatusCode::kNotFound) {
        return Status(r.status.code(),
                      "recording the verification on Job " + p->job + ": " + r.status.message());
      }
      remediations_.WithLabels({p->fixed ? "Succeeded" : "Failed"}).Inc();
      if (p->fixed)
        RecordAboutNode(events_, policy_ref, node_ref(p->node, p->node_uid), "Normal",
                        "RemediationSucceeded", p->event_message);
    } else if (auto* t = std::get_if<TriggerCheck>(&action)) {
      if (hooks_.trigger_check) hooks_.trigger_check(t->node);
    } else if (auto* d = std::get_if<DeleteJob>(&action)) {
      kube::Result r = client_.Delete(JobsPath() + "/" + d->job, "propagationPolicy=Background");
      if (!r.ok() && r.status.code() != StatusCode::kNotFound) retry = r.status;
    } else if (auto* c = std::get_if<CreateJob>(&action)) {
      kube::Result r = client_.Create(JobsPath(), c->manifest);
      if (!r.ok() && r.status.code() != StatusCode::kAlreadyExists) {
        spdlog::warn("kubeletpolicy {}: creating remediation Job {} for node {}: {}", policy.name,
                     c->name, c->node, r.status.message());
        plan.nodes[c->node_index] = c->if_failed;
        --plan.in_progress;
        ++plan.waiting;
        retry = r.status;
        continue;
      }
      plan.memory.created_jobs[c->name] = {c->node, clock_.Now()};
      if (r.ok()) {
        jobs_created_.WithLabels({"remediate"}).Inc();
        RecordAboutNode(events_, policy_ref, node_ref(c->node, c->node_uid), "Normal",
                        "RemediationStarted", c->event_message);
      }
    } else if (auto* e = std::get_if<PolicyEvent>(&action)) {
      events_.Record(policy_ref, e->type, e->reason, e->message);
    }
  }
  return Status::Ok();
}

void RemediationController::Forget(const std::string& policy) {
  std::lock_guard<std::mutex> l(mu_);
  memory_.erase(policy);
}

void RemediationController::OnJob(const json& job, bool deleted) {
  auto v = JobViewFromJson(job);
  if (!v || v->type != "remediate") return;
  if (deleted) {
    std::lock_guard<std::mutex> l(mu_);
    job_results_.erase(v->name);
  }
  if (!v->policy.empty() && hooks_.enqueue_policy) hooks_.enqueue_policy(v->policy);
}

namespace {

std::string JobNameOfPod(const json& pod) {
  std::string job = LabelOf(pod, "batch.kubernetes.io/job-name");
  return job.empty() ? LabelOf(pod, "job-name") : job;
}

}  // namespace

void RemediationController::OnPodDeleted(const json& pod) {
  if (LabelOf(pod, kJobTypeLabel) != "remediate") return;
  const std::string job = JobNameOfPod(pod);
  if (job.empty() || !jobs_.HasSynced()) return;
  std::string ns;
  if (pod.contains("metadata") && pod["metadata"].is_object())
    ns = pod["metadata"].value("namespace", "");
  if (jobs_.Get(ns + "/" + job)) return;  // the Job stays: its result still counts
  std::lock_guard<std::mutex> l(mu_);
  job_results_.erase(job);
}

size_t RemediationController::RecordedJobResults() const {
  std::lock_guard<std::mutex> l(mu_);
  return job_results_.size();
}

void RemediationController::OnPod(const json& pod) {
  if (LabelOf(pod, kJobTypeLabel) != "remediate") return;
  auto result = AgentResultFromPod(pod);
  if (!result) return;  // not terminated yet
  const std::string node = AnnotationOf(pod, kNodeAnnotation);
  const std::string job = JobNameOfPod(pod);
  if (node.empty() || job.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!job_results_.emplace(job, result->result).second) return;
  }
  if (result->refused_by) {
    input_rejected_
        .WithLabels({"agent-result", std::string(policy::InputLimitName(*result->refused_by))})
        .Inc();
  }
  if (result->result.ok()) facts_.RecordChangedFiles(node, result->result->files);
  const std::string policy = LabelOf(pod, kPolicyLabel);
  if (!policy.empty() && hooks_.enqueue_policy) hooks_.enqueue_policy(policy);
}

}  // namespace kpc::controller
