#include "controller/file_audit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace kpc::controller {

bool NeedsFileAudit(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies) {
  return std::any_of(policies.begin(), policies.end(), [&](const policy::KubeletPolicy& p) {
    return p.node_selector.Matches(node.labels) && p.HasFileRules();
  });
}

std::optional<JobSpecInput> PlanAudit(const NodeInfo& node,
                                      const std::vector<policy::KubeletPolicy>& policies,
                                      int64_t now_unix, std::chrono::seconds interval) {
  if (!NeedsFileAudit(node, policies)) return std::nullopt;
  std::set<std::string> paths;
  for (const auto& p : policies) {
    if (!p.node_selector.Matches(node.labels)) continue;
    for (const auto& r : p.rules) {
      if (r.file && r.file->target == policy::FileTarget::kPath) paths.insert(r.file->path);
    }
  }
  const int64_t slot = std::max<int64_t>(interval.count(), 1);
  std::string key = std::to_string(now_unix / slot);
  for (const auto& p : paths) key += "\n" + p;
  JobSpecInput in;
  in.type = "audit";
  in.node = node.name;
  in.args = AuditArgs(std::vector<std::string>(paths.begin(), paths.end()));
  in.name = AuditJobName(node.name, key);
  return in;
}

std::chrono::seconds AuditRetryDelay(int failures, std::chrono::seconds interval) {
  constexpr std::chrono::seconds kFirst{5}, kMax{300};
  std::chrono::seconds delay = kFirst;
  for (int i = 1; i < failures && delay < kMax; ++i) delay *= 2;
  return std::min({delay, kMax, std::max(interval, std::chrono::seconds(1))});
}

FileAuditController::FileAuditController(kube::Client& client, Registry& metrics,
                                         const Clock& clock, NodeFactsStore& facts,
                                         FileAuditOptions options, Hooks hooks)
    : client_(client),
      clock_(clock),
      facts_(facts),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      jobs_created_(JobsCreatedCounter(metrics)),
      input_rejected_(metrics.AddCounter(policy::kInputRejectedMetric, policy::kInputRejectedHelp,
                                         {"source", "limit"})) {
  // Few audits at a time: each is a pod on a node.
  scheduler_ = std::make_unique<ConfigzScheduler>(clock_, SchedulerOptions{2, options_.qps, 0.1},
                                                  [this](const std::string& n) { EnsureAudit(n); });
}

FileAuditController::~FileAuditController() { Stop(); }

void FileAuditController::Reschedule(const NodeInfo& node,
                                     const std::vector<policy::KubeletPolicy>& policies) {
  if (NeedsFileAudit(node, policies)) {
    scheduler_->Schedule(node.name, options_.interval);
  } else {
    scheduler_->Unschedule(node.name);
    std::lock_guard<std::mutex> lock(mu_);
    failures_.erase(node.name);
  }
}

void FileAuditController::Trigger(const std::string& node) { scheduler_->Trigger(node); }

void FileAuditController::Forget(const std::string& node) {
  scheduler_->Unschedule(node);
  facts_.Erase(node);
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(node);
}

size_t FileAuditController::BackingOffNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_.size();
}

void FileAuditController::RecordCreate(const std::string& node, bool created) {
  std::unique_lock<std::mutex> lock(mu_);
  if (created) {
    failures_.erase(node);
    return;
  }
  const int failures = ++failures_[node];
  lock.unlock();
  const auto delay = AuditRetryDelay(failures, options_.interval);
  spdlog::info("node {}: next file audit attempt in {} s ({} failed in a row)", node, delay.count(),
               failures);
  scheduler_->Defer(node, delay);
}

void FileAuditController::Start() { scheduler_->Start(); }
void FileAuditController::Stop() { scheduler_->Stop(); }

void FileAuditController::EnsureAudit(const std::string& node) {
  auto info = hooks_.node(node);
  if (!info) return;
  auto job = PlanAudit(*info, hooks_.policies(), clock_.UnixSeconds(), options_.interval);
  if (!job) return;
  const std::string path = "/apis/batch/v1/namespaces/" + options_.jobs.job_namespace + "/jobs";
  kube::Result r = client_.Create(path, BuildJob(*job, options_.jobs));
  if (r.ok()) {
    jobs_created_.WithLabels({"audit"}).Inc();
    spdlog::info("node {}: file audit Job {}/{} created", node, options_.jobs.job_namespace,
                 job->name);
  } else if (r.status.code() != StatusCode::kAlreadyExists) {
    spdlog::warn("node {}: creating file audit Job {}: {}", node, job->name, r.status.message());
  }
  RecordCreate(node, r.ok() || r.status.code() == StatusCode::kAlreadyExists);
}

void FileAuditController::OnPod(const nlohmann::json& pod) {
  if (LabelOf(pod, kJobTypeLabel) != "audit") return;
  auto result = AgentResultFromPod(pod);
  if (!result) return;  // not terminated yet
  const std::string node = AnnotationOf(pod, kNodeAnnotation);
  if (node.empty() || !pod.contains("metadata") || !pod["metadata"].is_object()) return;
  if (!facts_.RecordAudit(node, pod["metadata"].value("uid", ""), CreationUnix(pod),
                          result->result))
    return;
  if (result->refused_by) {
    input_rejected_
        .WithLabels({"agent-result", std::string(policy::InputLimitName(*result->refused_by))})
        .Inc();
  }
  if (hooks_.facts_changed) hooks_.facts_changed(node);
}

}  // namespace kpc::controller
