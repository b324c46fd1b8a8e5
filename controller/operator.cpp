#include "controller/operator.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace kpc::controller {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Policies are small; keep everything but managedFields.
json TransformPolicy(const json& obj) {
  json out = obj;
  if (out.contains("metadata") && out["metadata"].is_object()) out["metadata"].erase("managedFields");
  return out;
}

std::unique_ptr<kube::Informer> NewInformer(kube::Client& client, const Clock& clock, std::string path,
                                            std::string label_selector,
                                            std::function<json(const json&)> transform,
                                            std::function<void(const json*, const json*)> on_change) {
  kube::InformerOptions o;
  o.list_path = std::move(path);
  o.label_selector = std::move(label_selector);
  o.transform = std::move(transform);
  return std::make_unique<kube::Informer>(
      client, clock, o,
      kube::InformerHandlers{[on_change](const json& n) { on_change(nullptr, &n); },
                             [on_change](const json& a, const json& b) { on_change(&a, &b); },
                             [on_change](const json& o) { on_change(&o, nullptr); }});
}

}  // namespace

Operator::Operator(kube::Client& client, kube::EventRecorder& events, Registry& metrics, const Clock& clock,
                   OperatorOptions options)
    : clock_(clock),
      options_(std::move(options)),
      queue_(clock),
      reconcile_duration_(metrics.AddHistogram("kubeletpolicy_reconcile_duration_seconds",
                                               "Duration of one KubeletPolicy reconcile.")) {
  metrics.AddCallbackGauge("kubeletpolicy_workqueue_depth", "Policy keys waiting in the work queue.",
                           [this] { return static_cast<double>(queue_.Len() + queue_.DelayedLen()); });
  const std::string ns = options_.remediation.job_namespace;
  const std::string managed = std::string(kManagedByLabel) + "=" + kManagedBy;
  policies_ = NewInformer(client, clock_, kPolicyPath, "", TransformPolicy,
                          [this](const json* a, const json* b) { OnPolicyChange(a, b); });
  nodes_ = NewInformer(client, clock_, "/api/v1/nodes", "", TransformNode,
                       [this](const json* a, const json* b) { OnNodeChange(a, b); });
  jobs_ = NewInformer(client, clock_, "/apis/batch/v1/namespaces/" + ns + "/jobs", managed, TransformJob,
                      [this](const json* a, const json* b) { remediation_->OnJob(b ? *b : *a, b == nullptr); });
  pods_ = NewInformer(client, clock_, "/api/v1/namespaces/" + ns + "/pods", managed, TransformPod,
                      [this](const json* a, const json* b) {
                        if (!b) {
                          remediation_->OnPodDeleted(*a);
                          return;
                        }
                        audits_->OnPod(*b);
                        remediation_->OnPod(*b);
                      });
  index_ = std::make_unique<PolicyIndex>(*policies_, parse_cache_);
  auto enqueue = [this](const std::string& policy) { queue_.Add(policy); };
  remediation_ = std::make_unique<RemediationController>(
      client, events, metrics, clock_, *jobs_, *pods_, facts_, options_.remediation,
      RemediationController::Hooks{[this](const std::string& n) { compliance_->Trigger(n); }, enqueue});
  if (options_.configz.source == ConfigzSourceKind::kKubelet) {
    KubeletSourceOptions kubelet = options_.configz.kubelet;
    kubelet.max_body_bytes = options_.configz_max_bytes;
    configz_ = NewKubeletSource(*nodes_, options_.configz.kubelet_http,
                                options_.configz.kubelet_tokens, std::move(kubelet));
  } else {
    configz_ = NewApiserverProxySource(client, options_.configz_max_bytes);
  }
  compliance_ = std::make_unique<ComplianceController>(
      client, *configz_, events, metrics, clock_, *policies_, *nodes_, *index_, facts_, *remediation_,
      ComplianceOptions{options_.configz_timeout, options_.scheduler},
      ComplianceController::Hooks{[this](const std::string& n) { EnqueuePoliciesSelecting(n); }});
  audits_ = std::make_unique<FileAuditController>(
      client, metrics, clock_, facts_,
      FileAuditOptions{options_.file_audit_interval, options_.file_audit_qps, options_.remediation},
      FileAuditController::Hooks{
          [this](const std::string& n) -> std::optional<NodeInfo> {
            auto obj = nodes_->Get(n);
            if (!obj) return std::nullopt;
            return NodeInfoFromJson(*obj);
          },
          [this] { return index_->Active(); },
          [this](const std::string& n) { EnqueuePoliciesSelecting(n); }});

  for (auto* inf : {policies_.get(), nodes_.get(), jobs_.get(), pods_.get()}) {
    manager_.Add({"informer", false, [inf] { inf->Start(); }, [inf] { inf->Stop(); }});
  }
  manager_.Add({"resync", true, [this] {
                  RescheduleAll();
                  for (const auto& obj : policies_->List()) queue_.Add(NameOf(obj));
                }, nullptr});
  manager_.Add({"configz scheduler", true, [this] { compliance_->Start(); }, [this] { compliance_->Stop(); }});
  manager_.Add({"file-audit scheduler", true, [this] { audits_->Start(); }, [this] { audits_->Stop(); }});
  manager_.Add({"workers", true, [this] { StartWorkers(); }, [this] { StopWorkers(); }});
}

Operator::~Operator() { Stop(); }

void Operator::Start() { manager_.StartShared(); }

bool Operator::HasSynced() const { return policies_->HasSynced() && nodes_->HasSynced(); }

void Operator::Stop() {
  queue_.ShutDown();
  manager_.StopAll();
}

void Operator::RunLeader(const std::function<bool()>& stop) {
  spdlog::info("leading: starting the configz scheduler and {} workers", options_.workers);
  leader_stop_ = stop;
  manager_.RunLeader(stop, [this] { return queue_.ShuttingDown(); });
}

void Operator::StartWorkers() {
  workers_stop_ = false;
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Worker(); });
}

void Operator::StopWorkers() {
  workers_stop_ = true;
  for (auto& w : workers_) w.join();
  workers_.clear();
}

// Only the worker touches the queue: a reconcile returns what it wants done with its key.
void Operator::Worker() {
  auto stopping = [this] { return workers_stop_ || (leader_stop_ && leader_stop_()); };
  while (!stopping()) {
    auto key = queue_.Get(200ms);
    if (!key) {
      if (queue_.ShuttingDown()) return;
      continue;
    }
    const auto start = clock_.Now();
    ReconcileResult r = stopping() ? ReconcileResult{} : compliance_->Reconcile(*key);
    reconcile_duration_.WithLabels({}).Observe(std::chrono::duration<double>(clock_.Now() - start).count());
    if (r.status.ok()) {
      queue_.Forget(*key);
      if (r.requeue_after) queue_.AddAfter(*key, *r.requeue_after);
    } else {
      auto delay = queue_.AddRateLimited(*key);
      spdlog::warn("kubeletpolicy {}: reconcile failed, retrying in {} ms: {}", *key,
                   std::chrono::duration_cast<std::chrono::milliseconds>(delay).count(), r.status.message());
    }
    queue_.Done(*key);
  }
}

void Operator::Reschedule(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies) {
  compliance_->Reschedule(node, policies);
  audits_->Reschedule(node, policies);
}

void Operator::RescheduleAll() {
  auto policies = index_->Active();
  for (const auto& n : nodes_->List()) Reschedule(NodeInfoFromJson(n), policies);
}

void Operator::EnqueuePoliciesSelecting(const NodeInfo& node) {
  // Invalid policies are reconciled by their own events; here only the ones that select.
  for (const auto& name : index_->Selecting(node)) queue_.Add(name);
}

void Operator::EnqueuePoliciesSelecting(const std::string& node) {
  if (auto n = nodes_->Get(node)) EnqueuePoliciesSelecting(NodeInfoFromJson(*n));
}

void Operator::OnPolicyChange(const json* old_obj, const json* new_obj) {
  const json& any = new_obj ? *new_obj : *old_obj;
  std::string name = NameOf(any);
  if (name.empty()) return;
  if (!new_obj) parse_cache_.Forget(name);
  queue_.Add(name);
  bool generation_changed = !old_obj || !new_obj || GenerationOf(*old_obj) != GenerationOf(*new_obj);
  if (!generation_changed) return;
  RescheduleAll();
  if (!new_obj) return;
  // A new policy, or a new generation of one: re-check the nodes it selects now.
  auto r = index_->Parsed(*new_obj);
  if (!r->policy || r->policy->suspend) return;
  const bool audit = r->policy->HasFileRules();
  for (const auto& n : nodes_->List()) {
    NodeInfo info = NodeInfoFromJson(n);
    if (!r->policy->node_selector.Matches(info.labels)) continue;
    compliance_->Trigger(info.name);
    if (audit) audits_->Trigger(info.name);
  }
}

void Operator::OnNodeChange(const json* old_obj, const json* new_obj) {
  if (!new_obj) {
    NodeInfo gone = NodeInfoFromJson(*old_obj);
    compliance_->Forget(gone.name);
    audits_->Forget(gone.name);
    EnqueuePoliciesSelecting(gone);
    return;
  }
  NodeInfo now = NodeInfoFromJson(*new_obj);
  bool recheck = !old_obj;
  std::optional<NodeInfo> before;
  if (old_obj) {
    before = NodeInfoFromJson(*old_obj);
    recheck = (before->labels != now.labels) || (!before->ready && now.ready) ||
              (before->kubelet_version != now.kubelet_version);
  }
  if (!recheck) return;
  Reschedule(now, index_->Active());
  compliance_->Trigger(now.name);
  EnqueuePoliciesSelecting(now);
  if (before && before->labels != now.labels) EnqueuePoliciesSelecting(*before);  // relabelled out
}

}  // namespace kpc::controller
