#include "controller/operator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "policy/evaluate.h"
#include "policy/units.h"
#include "policy/conflicts.h"

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

int64_t GenerationOf(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata")) return 0;
  const auto& md = obj["metadata"];
  return md.contains("generation") && md["generation"].is_number_integer() ? md["generation"].get<int64_t>() : 0;
}

std::string NameOf(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  return obj["metadata"].value("name", "");
}

std::string Truncate(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

NodeState StateFromName(const std::string& s) {
  if (s == "NonCompliant") return NodeState::kNonCompliant;
  if (s == "Unknown") return NodeState::kUnknown;
  if (s == "Remediating") return NodeState::kRemediating;
  if (s == "RemediationPlanned") return NodeState::kRemediationPlanned;
  if (s == "RemediationFailed") return NodeState::kRemediationFailed;
  if (s == "Blocked") return NodeState::kBlocked;
  return NodeState::kCompliant;
}

NodeResult EvaluateCheck(const policy::KubeletPolicy& policy, const NodeInfo& node, const ConfigzResult& check,
                        policy::NodeFacts facts, int64_t now_unix, policy::NodeEvaluation* evaluation) {
  NodeResult nr;
  nr.node = node.name;
  nr.last_checked_unix = check.checked_unix;
  StatusOr<policy::EffectiveConfig> config =
      check.ok ? check.Config() : StatusOr<policy::EffectiveConfig>(Unavailable(check.message));
  if (!config.ok()) {
    nr.state = NodeState::kUnknown;
    nr.message = check.ok ? "configz malformed: " + config.status().message() : check.message;
    return nr;
  }
  facts.name = node.name;
  facts.labels = node.labels;
  facts.kubelet_minor = node.kubelet_minor;
  policy::NodeEvaluation ev = policy::EvaluateNode(policy, facts, *config, now_unix);
  if (evaluation) *evaluation = ev;
  std::string msg;
  for (const auto& r : ev.rules) {
    if (r.result == policy::RuleResult::kFail) {
      nr.failed_rules.push_back(r.rule_id);
      msg += (msg.empty() ? "" : "; ") + r.message;
    }
  }
  if (!nr.failed_rules.empty()) {
    nr.state = NodeState::kNonCompliant;
  } else if (ev.HasErrors()) {
    nr.state = NodeState::kUnknown;
    for (const auto& r : ev.rules) {
      if (r.result == policy::RuleResult::kError) msg += (msg.empty() ? "" : "; ") + r.message;
    }
  } else {
    nr.state = NodeState::kCompliant;
  }
  nr.message = Truncate(msg, 1024);
  return nr;
}

bool HasFileRules(const policy::KubeletPolicy& p) {
  return std::any_of(p.rules.begin(), p.rules.end(), [](const policy::Rule& r) { return r.file.has_value(); });
}

std::string JobsPath(const std::string& ns) { return "/apis/batch/v1/namespaces/" + ns + "/jobs"; }

}  // namespace

Operator::Operator(kube::Client& client, kube::EventRecorder& events, Registry& metrics, const Clock& clock,
                   OperatorOptions options)
    : client_(client),
      events_(events),
      clock_(clock),
      options_(options),
      queue_(clock),
      nodes_gauge_(metrics.AddGauge("kubeletpolicy_nodes", "Nodes selected by a KubeletPolicy, by compliance state.",
                                    {"policy", "state"})),
      rule_gauge_(metrics.AddGauge("kubeletpolicy_rule_failing_nodes", "Nodes failing a rule of a KubeletPolicy.",
                                   {"policy", "rule"})),
      fetch_latency_(metrics.AddHistogram("kubeletpolicy_configz_fetch_duration_seconds",
                                          "Latency of /configz fetches through the API server's node proxy.", {},
                                          {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      fetch_errors_(metrics.AddCounter("kubeletpolicy_configz_fetch_errors_total",
                                       "Failed /configz fetches by reason.", {"reason"})),
      reconcile_duration_(metrics.AddHistogram("kubeletpolicy_reconcile_duration_seconds",
                                               "Duration of one KubeletPolicy reconcile.")),
      status_writes_(metrics.AddCounter("kubeletpolicy_status_writes_total",
                                        "KubeletPolicy status writes by result.", {"result"})),
      jobs_created_(metrics.AddCounter("kubeletpolicy_jobs_created_total",
                                       "Remediation and file-audit Jobs created, by type.", {"type"})),
      remediations_(metrics.AddCounter("kubeletpolicy_node_remediations_total",
                                       "Node remediations whose Job succeeded, by the verification result (Succeeded, Failed).",
                                       {"result"})) {
  metrics.AddCallbackGauge("kubeletpolicy_workqueue_depth", "Policy keys waiting in the work queue.",
                           [this] { return static_cast<double>(queue_.Len() + queue_.DelayedLen()); });
  metrics.AddCallbackGauge("kubeletpolicy_configz_fetches_in_flight", "Configz fetches in progress.",
                           [this] { return scheduler_ ? static_cast<double>(scheduler_->InFlight()) : 0.0; });

  kube::InformerOptions popts;
  popts.list_path = kPolicyPath;
  popts.transform = TransformPolicy;
  policies_ = std::make_unique<kube::Informer>(
      client_, clock_, popts,
      kube::InformerHandlers{[this](const json& o) { OnPolicyChange(nullptr, &o); },
                             [this](const json& a, const json& b) { OnPolicyChange(&a, &b); },
                             [this](const json& o) { OnPolicyChange(&o, nullptr); }});
  kube::InformerOptions nopts;
  nopts.list_path = "/api/v1/nodes";
  nopts.transform = TransformNode;
  nodes_ = std::make_unique<kube::Informer>(
      client_, clock_, nopts,
      kube::InformerHandlers{[this](const json& o) { OnNodeChange(nullptr, &o); },
                             [this](const json& a, const json& b) { OnNodeChange(&a, &b); },
                             [this](const json& o) { OnNodeChange(&o, nullptr); }});
  scheduler_ = std::make_unique<ConfigzScheduler>(clock_, options_.scheduler,
                                                  [this](const std::string& n) { FetchConfigz(n); });

  const std::string managed = std::string(kManagedByLabel) + "=" + kManagedBy;
  kube::InformerOptions jopts;
  jopts.list_path = JobsPath(options_.remediation.job_namespace);
  jopts.label_selector = managed;
  jopts.transform = TransformJob;
  jobs_ = std::make_unique<kube::Informer>(
      client_, clock_, jopts,
      kube::InformerHandlers{[this](const json& o) { OnJob(o, false); },
                             [this](const json&, const json& b) { OnJob(b, false); },
                             [this](const json& o) { OnJob(o, true); }});
  kube::InformerOptions podopts;
  podopts.list_path = "/api/v1/namespaces/" + options_.remediation.job_namespace + "/pods";
  podopts.label_selector = managed;
  podopts.transform = TransformPod;
  pods_ = std::make_unique<kube::Informer>(
      client_, clock_, podopts,
      kube::InformerHandlers{[this](const json& o) { OnPod(o); }, [this](const json&, const json& b) { OnPod(b); },
                             [](const json&) {}});
  // File audits: one Job per node per --file-audit-interval, few at a time.
  auditor_ = std::make_unique<ConfigzScheduler>(clock_, SchedulerOptions{2, options_.file_audit_qps, 0.1},
                                                [this](const std::string& n) { EnsureAudit(n); });
}

Operator::~Operator() { Stop(); }

void Operator::Start() {
  policies_->Start();
  nodes_->Start();
  jobs_->Start();
  pods_->Start();
}

std::vector<json> Operator::CachedPolicies() const { return policies_->List(); }

bool Operator::HasSynced() const { return policies_->HasSynced() && nodes_->HasSynced(); }

void Operator::Stop() {
  queue_.ShutDown();
  if (scheduler_) scheduler_->Stop();
  if (auditor_) auditor_->Stop();
  if (policies_) policies_->Stop();
  if (nodes_) nodes_->Stop();
  if (jobs_) jobs_->Stop();
  if (pods_) pods_->Stop();
}

std::vector<policy::KubeletPolicy> Operator::ValidPolicies() const {
  std::vector<policy::KubeletPolicy> out;
  for (const auto& obj : policies_->List()) {
    auto r = Parsed(obj);
    if (r->policy && !r->policy->suspend) out.push_back(*r->policy);
  }
  return out;
}

void Operator::ScheduleNode(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies) {
  std::optional<int64_t> interval;
  bool audit = false;
  for (const auto& p : policies) {
    if (!p.node_selector.Matches(node.labels)) continue;
    interval = std::min(interval.value_or(p.check_interval_ns), p.check_interval_ns);
    audit = audit || HasFileRules(p);
  }
  if (audit) {
    auditor_->Schedule(node.name, options_.file_audit_interval);
  } else {
    auditor_->Unschedule(node.name);
  }
  if (interval) {
    scheduler_->Schedule(node.name, std::chrono::nanoseconds(*interval));
  } else {
    scheduler_->Unschedule(node.name);
  }
}

void Operator::RescheduleAll() {
  auto policies = ValidPolicies();
  for (const auto& n : nodes_->List()) ScheduleNode(NodeInfoFromJson(n), policies);
}

void Operator::EnqueuePoliciesSelecting(const NodeInfo& node) {
  for (const auto& obj : policies_->List()) {
    auto r = Parsed(obj);
    // Invalid policies are reconciled by their own events; here only the ones that select.
    if (r->policy && r->policy->node_selector.Matches(node.labels)) queue_.Add(r->policy->name);
  }
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
  if (new_obj) {
    // A new policy, or a new generation of one: re-check the nodes it selects now.
    auto r = Parsed(*new_obj);
    if (r->policy && !r->policy->suspend) {
      const bool audit = HasFileRules(*r->policy);
      for (const auto& n : nodes_->List()) {
        NodeInfo info = NodeInfoFromJson(n);
        if (!r->policy->node_selector.Matches(info.labels)) continue;
        scheduler_->Trigger(info.name);
        if (audit) auditor_->Trigger(info.name);
      }
    }
  }
}

void Operator::OnNodeChange(const json* old_obj, const json* new_obj) {
  if (!new_obj) {
    NodeInfo gone = NodeInfoFromJson(*old_obj);
    scheduler_->Unschedule(gone.name);
    auditor_->Unschedule(gone.name);
    checks_.Erase(gone.name);
    {
      std::lock_guard<std::mutex> l(results_mu_);
      audits_.erase(gone.name);
    }
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
  ScheduleNode(now, ValidPolicies());
  scheduler_->Trigger(now.name);
  EnqueuePoliciesSelecting(now);
  if (before && before->labels != now.labels) EnqueuePoliciesSelecting(*before);  // relabelled out
}

void Operator::FetchConfigz(const std::string& node) {
  auto start = clock_.Now();
  ConfigzResult r = FetchNodeConfigz(client_, node, options_.configz_timeout);
  r.checked_at = clock_.Now();
  r.checked_unix = clock_.UnixSeconds();
  r.latency = r.checked_at - start;
  fetch_latency_.WithLabels({}).Observe(std::chrono::duration<double>(r.latency).count());
  if (!r.ok) {
    fetch_errors_.WithLabels({r.reason}).Inc();
    spdlog::warn("node {}: {}", node, r.message);
  } else {
    spdlog::debug("node {}: configz fetched in {} ms", node,
                  std::chrono::duration_cast<std::chrono::milliseconds>(r.latency).count());
  }
  checks_.Put(node, std::move(r));
  if (auto n = nodes_->Get(node)) EnqueuePoliciesSelecting(NodeInfoFromJson(*n));
}

void Operator::RunLeader(const std::function<bool()>& stop) {
  spdlog::info("leading: starting the configz scheduler and {} workers", options_.workers);
  RescheduleAll();
  for (const auto& obj : policies_->List()) queue_.Add(NameOf(obj));
  scheduler_->Start();
  auditor_->Start();
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers.emplace_back([this, &stop] { Worker(stop); });
  while (!stop() && !queue_.ShuttingDown()) std::this_thread::sleep_for(100ms);
  scheduler_->Stop();
  auditor_->Stop();
  for (auto& w : workers) w.join();
}

void Operator::Worker(const std::function<bool()>& stop) {
  while (!stop()) {
    auto key = queue_.Get(200ms);
    if (!key) {
      if (queue_.ShuttingDown()) return;
      continue;
    }
    auto start = clock_.Now();
    Status s = stop() ? Status::Ok() : Reconcile(*key);
    reconcile_duration_.WithLabels({}).Observe(std::chrono::duration<double>(clock_.Now() - start).count());
    if (s.ok()) {
      queue_.Forget(*key);
    } else {
      auto delay = queue_.AddRateLimited(*key);
      spdlog::warn("kubeletpolicy {}: reconcile failed, retrying in {} ms: {}", *key,
                   std::chrono::duration_cast<std::chrono::milliseconds>(delay).count(), s.message());
    }
    queue_.Done(*key);
  }
}

Status Operator::Reconcile(const std::string& name) {
  auto obj = policies_->Get(name);
  std::unique_lock<std::mutex> lock(mem_mu_);
  if (!obj) {
    auto it = memory_.find(name);
    if (it != memory_.end()) {
      RemovePolicyMetrics(name, it->second);
      memory_.erase(it);
    }
    return Status::Ok();
  }
  PolicyMemory& mem = memory_[name];
  lock.unlock();

  const int64_t generation = GenerationOf(*obj);
  if (mem.generation != generation) {
    mem.generation = generation;
    mem.generation_seen = clock_.Now();
  }
  const json previous = obj->contains("status") ? (*obj)["status"] : json();
  if (!mem.states_loaded) {
    // Continue from what the status already says, so a restart or a new leader does not repeat
    // transition Events.
    if (previous.is_object() && previous.contains("nodes") && previous["nodes"].is_array()) {
      for (const auto& n : previous["nodes"]) {
        if (n.is_object()) mem.states[n.value("name", "")] = StateFromName(n.value("state", ""));
      }
    }
    mem.states_loaded = true;
  }

  std::shared_ptr<const policy::PolicyParseResult> parsed_ptr = Parsed(*obj);
  const policy::PolicyParseResult& parsed = *parsed_ptr;
  StatusInput in;
  in.generation = generation;
  in.now_unix = clock_.UnixSeconds();
  if (!parsed.policy) {
    std::string msg = "invalid spec: ";
    for (size_t i = 0; i < parsed.errors.size(); ++i) {
      msg += (i ? "; " : "") + parsed.errors[i].field + ": " + parsed.errors[i].message;
    }
    in.invalid_spec = Truncate(msg, 1024);
    return WriteStatus(name, *obj, in, 300);
  }
  const policy::KubeletPolicy& policy = *parsed.policy;
  for (const auto& r : policy.rules) in.rule_ids.push_back(r.id);
  const int64_t refresh = std::max<int64_t>(policy.check_interval_ns / 1'000'000'000, 10);
  if (policy.suspend) {
    in.suspended = true;
    return WriteStatus(name, *obj, in, refresh);
  }

  // An exception that expired since a cached evaluation changes that node's verdict.
  auto expired_since = [&](int64_t since) {
    return std::any_of(policy.exceptions.begin(), policy.exceptions.end(), [&](const policy::PolicyException& e) {
      return e.expires_unix && *e.expires_unix > since && *e.expires_unix <= in.now_unix;
    });
  };
  std::map<std::string, std::string> uids;
  std::map<std::string, NodeInfo> infos;
  std::map<std::string, PolicyMemory::CachedEvaluation> evaluations;
  for (const auto& node_obj : nodes_->List()) {
    NodeInfo node = NodeInfoFromJson(node_obj);
    if (!policy.node_selector.Matches(node.labels)) continue;
    uids[node.name] = node.uid;
    infos[node.name] = node;
    auto check = checks_.Get(node.name);
    if (!check || check->checked_at < mem.generation_seen) {
      NodeResult pending;
      pending.node = node.name;
      pending.state = NodeState::kPending;
      in.nodes.push_back(std::move(pending));
      continue;
    }
    uint64_t facts_version = 0;
    policy::NodeFacts facts = FactsFor(node, &facts_version);
    auto cached = mem.evaluations.find(node.name);
    if (cached != mem.evaluations.end() && cached->second.checked_at == check->checked_at &&
        cached->second.generation == generation && cached->second.labels == node.labels &&
        cached->second.kubelet_minor == node.kubelet_minor && cached->second.facts_version == facts_version &&
        !expired_since(cached->second.evaluated_unix)) {
      evaluations[node.name] = std::move(cached->second);
    } else {
      PolicyMemory::CachedEvaluation e;
      e.checked_at = check->checked_at;
      e.generation = generation;
      e.labels = node.labels;
      e.kubelet_minor = node.kubelet_minor;
      e.evaluated_unix = in.now_unix;
      e.facts_version = facts_version;
      e.result = EvaluateCheck(policy, node, *check, std::move(facts), in.now_unix, &e.evaluation);
      evaluations[node.name] = std::move(e);
    }
    const NodeResult& nr = evaluations[node.name].result;
    for (const auto& r : nr.failed_rules) in.failing_by_rule[r]++;
    in.nodes.push_back(nr);
  }
  mem.evaluations = std::move(evaluations);  // nodes no longer selected drop out
  if (policy.enforcement != policy::Enforcement::kAudit) Remediate(policy, *obj, mem, in, infos);

  Status s = WriteStatus(name, *obj, in, refresh);
  if (!s.ok()) return s;
  // An exception that expires later changes verdicts then, with no node check to trigger it.
  std::optional<int64_t> next_expiry;
  for (const auto& e : policy.exceptions) {
    if (e.expires_unix && *e.expires_unix > in.now_unix) {
      next_expiry = std::min(next_expiry.value_or(*e.expires_unix), *e.expires_unix);
    }
  }
  if (next_expiry) queue_.AddAfter(name, std::chrono::seconds(*next_expiry - in.now_unix + 1));
  EmitTransitions(policy, *obj, mem, in.nodes, uids);
  UpdatePolicyMetrics(name, in, mem);
  return Status::Ok();
}

Status Operator::WriteStatus(const std::string& name, json obj, const StatusInput& in, int64_t refresh_seconds) {
  const std::string path = std::string(kPolicyPath) + "/" + name + "/status";
  for (int attempt = 0; attempt < 4; ++attempt) {
    json previous = obj.contains("status") ? obj["status"] : json();
    json status = ComputeStatus(in, previous);
    if (!StatusNeedsWrite(previous, status, in.now_unix, refresh_seconds)) return Status::Ok();
    obj["status"] = status;
    kube::Result r = client_.Update(path, obj);
    if (r.ok()) {
      status_writes_.WithLabels({"ok"}).Inc();
      spdlog::info("kubeletpolicy {}: status written (generation {}, {} nodes selected)", name, in.generation,
                   in.nodes.size());
      return Status::Ok();
    }
    if (r.status.code() == StatusCode::kConflict) {
      // Someone else wrote the object: read it fresh and recompute over its status.
      status_writes_.WithLabels({"conflict"}).Inc();
      kube::Result fresh = client_.Get(std::string(kPolicyPath) + "/" + name);
      if (!fresh.ok()) return fresh.status;
      if (GenerationOf(fresh.body) != in.generation) return Status::Ok();  // a newer spec will be reconciled
      obj = fresh.body;
      continue;
    }
    if (r.status.code() == StatusCode::kNotFound) return Status::Ok();  // deleted meanwhile
    status_writes_.WithLabels({"error"}).Inc();
    return r.status;
  }
  return Status(StatusCode::kConflict, "status of " + name + " kept conflicting");
}

void Operator::EmitTransitions(const policy::KubeletPolicy& policy, const json& obj, PolicyMemory& mem,
                               const std::vector<NodeResult>& results,
                               const std::map<std::string, std::string>& uids) {
  kube::ObjectRef policy_ref{"kubeletpolicy.io/v1alpha1", "KubeletPolicy", policy.name, "",
                             obj["metadata"].value("uid", "")};
  std::map<std::string, NodeState> next;
  for (const auto& r : results) {
    if (r.state == NodeState::kPending) {
      if (mem.states.count(r.node)) next[r.node] = mem.states[r.node];
      continue;
    }
    next[r.node] = r.state;
    auto it = mem.states.find(r.node);
    NodeState before = it == mem.states.end() ? NodeState::kCompliant : it->second;
    if (before == r.state) continue;
    kube::ObjectRef node_ref{"v1", "Node", r.node, "", uids.count(r.node) ? uids.at(r.node) : ""};
    std::string type = "Warning", reason, msg;
    auto noncompliant = [](NodeState s) {
      return s != NodeState::kCompliant && s != NodeState::kUnknown && s != NodeState::kPending;
    };
    switch (r.state) {
      case NodeState::kNonCompliant:
        // Back from a remediation state (planned, waiting, failed, blocked) is no news.
        if (noncompliant(before)) continue;
        reason = "NodeNonCompliant";
        msg = "node " + r.node + " does not comply with " + policy.name + ": " + r.message;
        break;
      case NodeState::kUnknown:
        reason = "ConfigzUnavailable";
        msg = "node " + r.node + " could not be checked for " + policy.name + ": " + r.message;
        break;
      case NodeState::kCompliant:
        type = "Normal";
        reason = "NodeCompliant";
        msg = "node " + r.node + " complies with " + policy.name;
        break;
      case NodeState::kRemediationPlanned:
        type = "Normal";
        reason = "RemediationPlanned";
        msg = "DryRun: remediation of node " + r.node + " for " + policy.name + " would: " + r.message;
        break;
      case NodeState::kRemediationFailed:
        reason = "RemediationFailed";
        msg = "remediation of node " + r.node + " for " + policy.name + " failed: " + r.message;
        break;
      case NodeState::kBlocked:
        reason = "RemediationBlocked";
        msg = "remediation of node " + r.node + " for " + policy.name + " is blocked: " + r.message;
        break;
      default:
        continue;
    }
    RecordAboutNode(policy_ref, node_ref, type, reason, msg);
  }
  mem.states = std::move(next);
}

void Operator::UpdatePolicyMetrics(const std::string& name, const StatusInput& in, PolicyMemory& mem) {
  int compliant = 0, noncompliant = 0, unknown = 0;
  for (const auto& n : in.nodes) {
    if (n.state == NodeState::kCompliant) ++compliant;
    else if (n.state == NodeState::kUnknown || n.state == NodeState::kPending) ++unknown;
    else ++noncompliant;
  }
  nodes_gauge_.WithLabels({name, "compliant"}).Set(compliant);
  nodes_gauge_.WithLabels({name, "noncompliant"}).Set(noncompliant);
  nodes_gauge_.WithLabels({name, "unknown"}).Set(unknown);
  for (const auto& id : mem.rule_ids) {
    if (std::find(in.rule_ids.begin(), in.rule_ids.end(), id) == in.rule_ids.end()) rule_gauge_.Remove({name, id});
  }
  for (const auto& id : in.rule_ids) {
    auto it = in.failing_by_rule.find(id);
    rule_gauge_.WithLabels({name, id}).Set(it == in.failing_by_rule.end() ? 0 : it->second);
  }
  mem.rule_ids = in.rule_ids;
}

void Operator::RemovePolicyMetrics(const std::string& name, PolicyMemory& mem) {
  for (const char* s : {"compliant", "noncompliant", "unknown"}) nodes_gauge_.Remove({name, s});
  for (const auto& id : mem.rule_ids) rule_gauge_.Remove({name, id});
}

void Operator::RecordAboutNode(const kube::ObjectRef& policy, const kube::ObjectRef& node, const std::string& type,
                               const std::string& reason, const std::string& message) {
  const std::string msg = Truncate(message, 1024);
  events_.Record(policy, type, reason, msg);
  events_.Record(node, type, reason, msg);
}

// ---- file audits and remediation -------------------------------------------------------------

policy::NodeFacts Operator::FactsFor(const NodeInfo& node, uint64_t* version) const {
  policy::NodeFacts facts;
  std::lock_guard<std::mutex> l(results_mu_);
  auto it = audits_.find(node.name);
  if (it == audits_.end()) {
    *version = 0;
    return facts;
  }
  MergeAuditFacts(it->second.result, facts);
  *version = it->second.version;
  return facts;
}

void Operator::EnsureAudit(const std::string& node) {
  auto obj = nodes_->Get(node);
  if (!obj) return;
  NodeInfo info = NodeInfoFromJson(*obj);
  std::set<std::string> paths;
  bool any = false;
  for (const auto& p : ValidPolicies()) {
    if (!p.node_selector.Matches(info.labels)) continue;
    for (const auto& r : p.rules) {
      if (!r.file) continue;
      any = true;
      if (r.file->target == policy::FileTarget::kPath) paths.insert(r.file->path);
    }
  }
  if (!any) return;
  // One audit per node per interval slot (and per set of paths): a restarted controller or a
  // second leader finds the Job of the current slot instead of creating another.
  const int64_t interval = std::max<int64_t>(options_.file_audit_interval.count(), 1);
  std::string key = std::to_string(clock_.UnixSeconds() / interval);
  for (const auto& p : paths) key += "\n" + p;
  JobSpecInput in;
  in.type = "audit";
  in.node = node;
  in.args = AuditArgs(std::vector<std::string>(paths.begin(), paths.end()));
  in.name = AuditJobName(node, key);
  kube::Result r = client_.Create(JobsPath(options_.remediation.job_namespace), BuildJob(in, options_.remediation));
  if (r.ok()) {
    jobs_created_.WithLabels({"audit"}).Inc();
    spdlog::info("node {}: file audit Job {}/{} created", node, options_.remediation.job_namespace, in.name);
  } else if (r.status.code() != StatusCode::kAlreadyExists) {
    spdlog::warn("node {}: creating file audit Job {}: {}", node, in.name, r.status.message());
  }
}

void Operator::OnPod(const json& pod) {
  auto result = AgentResultFromPod(pod);
  if (!result) return;  // not terminated yet
  const std::string type = LabelOf(pod, kJobTypeLabel);
  const std::string node = AnnotationOf(pod, kNodeAnnotation);
  std::string job = LabelOf(pod, "batch.kubernetes.io/job-name");
  if (job.empty()) job = LabelOf(pod, "job-name");
  if (node.empty()) return;
  const std::string uid = pod["metadata"].value("uid", "");
  const int64_t created = CreationUnix(pod);
  bool changed = false;
  {
    std::lock_guard<std::mutex> l(results_mu_);
    AuditRecord& rec = audits_[node];
    if (type == "audit") {
      if (rec.pod_uid != uid && created >= rec.created_unix) {
        rec.pod_uid = uid;
        rec.created_unix = created;
        if (result->ok()) {
          rec.result = **result;
          rec.error.clear();
        } else {
          rec.error = result->status().message();
          spdlog::warn("node {}: file audit {} gave no result: {}", node, job, rec.error);
        }
        rec.version = ++audit_version_;
        changed = true;
      }
    } else if (type == "remediate" && !job.empty()) {
      auto it = job_results_.find(job);
      if (it == job_results_.end()) {
        job_results_.emplace(job, *result);
        // The files the agent changed, as they are now: file rules see the fix at once.
        if (result->ok() && !(*result)->files.empty() && !rec.pod_uid.empty()) {
          for (const auto& [path, f] : (*result)->files) rec.result.files[path] = f;
          rec.version = ++audit_version_;
        }
        changed = true;
      }
    }
  }
  if (!changed) return;
  if (type == "remediate") {
    std::string policy = LabelOf(pod, kPolicyLabel);
    if (!policy.empty()) queue_.Add(policy);
  } else if (auto n = nodes_->Get(node)) {
    EnqueuePoliciesSelecting(NodeInfoFromJson(*n));
  }
}

void Operator::OnJob(const json& job, bool deleted) {
  auto v = JobViewFromJson(job);
  if (!v || v->type != "remediate") return;
  if (deleted) {
    std::lock_guard<std::mutex> l(results_mu_);
    job_results_.erase(v->name);
  }
  if (!v->policy.empty()) queue_.Add(v->policy);
}

std::vector<std::pair<policy::KubeletPolicy, std::vector<std::string>>> Operator::ConflictingPolicies(
    const policy::KubeletPolicy& policy) const {
  std::vector<std::pair<policy::KubeletPolicy, std::vector<std::string>>> out;
  for (auto& other : ValidPolicies()) {
    if (other.name == policy.name || other.enforcement == policy::Enforcement::kAudit) continue;
    auto conflicts = policy::FindRemediationConflicts(policy, {other});
    if (!conflicts.empty()) out.emplace_back(std::move(other), std::move(conflicts));
  }
  return out;
}

void Operator::Remediate(const policy::KubeletPolicy& policy, const json& obj, PolicyMemory& mem, StatusInput& in,
                         const std::map<std::string, NodeInfo>& infos) {
  const bool enforce = policy.enforcement == policy::Enforcement::kEnforce;
  const auto now = clock_.Now();
  kube::ObjectRef policy_ref{"kubeletpolicy.io/v1alpha1", "KubeletPolicy", policy.name, "",
                             obj["metadata"].value("uid", "")};
  auto node_ref = [&](const std::string& node) {
    auto it = infos.find(node);
    return kube::ObjectRef{"v1", "Node", node, "", it == infos.end() ? "" : it->second.uid};
  };
  const std::string jobs_path = JobsPath(options_.remediation.job_namespace);
  if (enforce && !(jobs_->HasSynced() && pods_->HasSynced())) {
    // Without the Jobs that already exist, counting in-progress nodes would be guesswork.
    in.remediating = true;
    in.remediating_message = "waiting for the Job and Pod caches to sync";
    return;
  }

  // This policy's remediation Jobs per node, oldest first.
  std::map<std::string, std::vector<JobView>> jobs;
  for (const auto& j : jobs_->List()) {
    auto v = JobViewFromJson(j);
    if (v && v->type == "remediate" && v->policy == policy.name) jobs[v->node].push_back(std::move(*v));
  }
  for (auto& [node, list] : jobs) {
    std::sort(list.begin(), list.end(), [](const JobView& a, const JobView& b) {
      return std::tie(a.created_unix, a.name) < std::tie(b.created_unix, b.name);
    });
  }
  // Jobs created by this process that the informer has not delivered yet.
  for (auto it = mem.created_jobs.begin(); it != mem.created_jobs.end();) {
    const auto& [job_name, entry] = *it;
    bool seen = false;
    auto jt = jobs.find(entry.first);
    if (jt != jobs.end()) {
      seen = std::any_of(jt->second.begin(), jt->second.end(), [&](const JobView& j) { return j.name == job_name; });
    }
    if (seen || now - entry.second > 2min) it = mem.created_jobs.erase(it);
    else ++it;
  }
  auto result_of = [&](const std::string& job) -> std::optional<StatusOr<agent::AgentResult>> {
    std::lock_guard<std::mutex> l(results_mu_);
    auto it = job_results_.find(job);
    if (it == job_results_.end()) return std::nullopt;
    return it->second;
  };
  auto blocked = [&](const JobView& j) {
    auto r = result_of(j.name);
    if (r && r->ok()) return (*r)->blocked.has_value();
    return j.failure_message.find("PodFailurePolicy") != std::string::npos;
  };

  // Consecutive failures of this generation's rollout, in the order the Jobs finished.
  std::vector<const JobView*> finished;
  for (const auto& [node, list] : jobs) {
    for (const auto& j : list) {
      if (j.generation == policy.generation && !j.Active()) finished.push_back(&j);
    }
  }
  std::sort(finished.begin(), finished.end(),
            [](const JobView* a, const JobView* b) { return std::tie(a->finished_unix, a->name) < std::tie(b->finished_unix, b->name); });
  int consecutive = 0;
  for (const JobView* j : finished) {
    if (j->succeeded && j->verification == "Succeeded") consecutive = 0;
    else if ((j->failed && !blocked(*j)) || (j->succeeded && j->verification == "Failed")) ++consecutive;
  }
  // A stalled rollout stays stalled until the spec changes (status carries it across restarts).
  const json prev_stalled = FindCondition(obj.contains("status") ? obj["status"] : json(), "Stalled");
  const bool was_stalled = prev_stalled.is_object() && prev_stalled.value("status", "") == "True" &&
                           prev_stalled.value("reason", "") == "RolloutStalled" &&
                           prev_stalled.value("observedGeneration", int64_t{-1}) == policy.generation;
  bool stalled = enforce && (was_stalled || consecutive >= policy.remediation.failure_threshold);

  auto conflicting = ConflictingPolicies(policy);
  struct Candidate {
    NodeResult* nr;
    std::string name;
    std::vector<std::string> args;
    std::string plan;
  };
  std::vector<Candidate> candidates;
  int in_progress = 0;
  int waiting_for_audit = 0;
  for (NodeResult& nr : in.nodes) {
    const std::vector<JobView>& list = jobs[nr.node];
    const JobView* latest = list.empty() ? nullptr : &list.back();
    int attempts = static_cast<int>(std::count_if(list.begin(), list.end(), [&](const JobView& j) {
      return j.generation == policy.generation;
    }));
    auto remediation_json = [&](const JobView& j, const std::string& phase) {
      return json{{"job", j.name}, {"phase", phase}, {"attempts", attempts}};
    };
    if (latest && latest->Active()) {
      nr.state = NodeState::kRemediating;
      nr.remediation = remediation_json(*latest, "Running");
      nr.message = "remediating: " + latest->plan;
      ++in_progress;
      continue;
    }
    bool expected = std::any_of(mem.created_jobs.begin(), mem.created_jobs.end(),
                                [&](const auto& e) { return e.second.first == nr.node; });
    if (expected) {
      nr.state = NodeState::kRemediating;
      ++in_progress;
      continue;
    }
    if (nr.state == NodeState::kPending || nr.state == NodeState::kUnknown) continue;
    auto ev = mem.evaluations.find(nr.node);
    if (ev == mem.evaluations.end()) continue;
    auto info = infos.find(nr.node);
    RemediationPlan plan = PlanRemediation(policy, ev->second.evaluation);

    // Verification of a Job that succeeded: a /configz check after it, with the node Ready.
    if (enforce && latest && latest->succeeded && latest->verification.empty() &&
        latest->generation == policy.generation) {
      auto [seen_it, first] = mem.finished_seen.emplace(latest->name, now);
      if (first) scheduler_->Trigger(nr.node);
      auto check = checks_.Get(nr.node);
      bool ready = info != infos.end() && info->second.ready;
      if (!check || check->checked_at <= seen_it->second || !ready) {
        nr.state = NodeState::kRemediating;
        nr.remediation = remediation_json(*latest, "Verifying");
        nr.message = "verifying: waiting for the node to be Ready and a /configz check after Job " + latest->name;
        ++in_progress;
        continue;
      }
      bool fixed = plan.empty();
      json patch = {{"metadata", {{"annotations", {{kVerificationAnnotation, fixed ? "Succeeded" : "Failed"}}}}}};
      kube::Result pr = client_.Patch(jobs_path + "/" + latest->name, patch, "application/merge-patch+json");
      if (!pr.ok() && pr.status.code() != StatusCode::kNotFound) {
        spdlog::warn("kubeletpolicy {}: recording the verification on Job {}: {}", policy.name, latest->name,
                     pr.status.message());
        nr.state = NodeState::kRemediating;
        ++in_progress;
        continue;
      }
      mem.finished_seen.erase(latest->name);
      if (fixed) {
        remediations_.WithLabels({"Succeeded"}).Inc();
        consecutive = 0;
        std::string msg = "node " + nr.node + " remediated for " + policy.name + " and verified through /configz: " +
                          latest->plan;
        RecordAboutNode(policy_ref, node_ref(nr.node), "Normal", "RemediationSucceeded", msg);
        nr.remediation = remediation_json(*latest, "Succeeded");
        continue;  // the node's own verdict stands (compliant, or failing rules nothing can fix)
      }
      remediations_.WithLabels({"Failed"}).Inc();
      ++consecutive;
      nr.state = NodeState::kRemediationFailed;
      nr.remediation = remediation_json(*latest, "Failed");
      nr.message = "Job " + latest->name + " succeeded but the node still does not comply: " + nr.message;
      if (consecutive >= policy.remediation.failure_threshold) stalled = true;
      continue;
    }
    if (nr.state != NodeState::kNonCompliant || plan.empty()) continue;

    std::vector<std::string> fights;
    for (const auto& [other, messages] : conflicting) {
      if (info != infos.end() && other.node_selector.Matches(info->second.labels)) {
        for (const auto& m : messages) fights.push_back(m);
      }
    }
    if (!fights.empty()) {
      nr.state = NodeState::kBlocked;
      nr.remediation = json{{"phase", "Blocked"}, {"reason", "Conflict"}};
      std::string msg = "conflicting policies: ";
      for (size_t i = 0; i < fights.size(); ++i) msg += (i ? "; " : "") + fights[i];
      nr.message = Truncate(msg, 1024);
      continue;
    }
    if (!enforce) {  // DryRun
      nr.state = NodeState::kRemediationPlanned;
      json changes = json::array();
      for (const auto& c : plan.changes) changes.push_back(c.Describe());
      nr.remediation = json{{"phase", "Planned"}, {"changes", changes}};
      nr.message = Truncate(plan.Describe(), 1024);
      continue;
    }
    if (HasFileRules(policy) && ev->second.facts_version == 0) {
      // One Job with the whole plan (one kubelet restart), not one before and one after the audit.
      nr.message = "waiting for the node's first file audit before remediating: " + nr.message;
      ++waiting_for_audit;
      continue;
    }
    std::vector<std::string> args = RemediateArgs(policy, plan, options_.remediation);
    std::string job_name = RemediationJobName(policy.name, nr.node, policy.generation, args);
    auto same = std::find_if(list.begin(), list.end(), [&](const JobView& j) { return j.name == job_name; });
    if (same != list.end()) {
      if (same->failed) {
        auto r = result_of(same->name);
        bool is_blocked = blocked(*same);
        std::string why = same->failure_message;
        if (r && r->ok()) {
          const agent::AgentResult& ar = **r;
          if (ar.blocked) why = ar.blocked->reason + ": " + ar.blocked->message;
          else if (!ar.errors.empty()) why = ar.errors.front();
        } else if (r) {
          why = r->status().message();
        }
        nr.state = is_blocked ? NodeState::kBlocked : NodeState::kRemediationFailed;
        nr.remediation = remediation_json(*same, is_blocked ? "Blocked" : "Failed");
        if (is_blocked && r && r->ok() && (*r)->blocked) nr.remediation["reason"] = (*r)->blocked->reason;
        nr.message = Truncate("Job " + same->name + ": " + why, 1024);
        continue;
      }
      if (same->succeeded && same->verification == "Failed") {
        nr.state = NodeState::kRemediationFailed;
        nr.remediation = remediation_json(*same, "Failed");
        nr.message = "Job " + same->name + " succeeded but the node still does not comply: " + nr.message;
        continue;
      }
      if (same->succeeded && same->generation == policy.generation) {
        // The same fix was verified before and the node drifted back: run it again.
        client_.Delete(jobs_path + "/" + same->name, "propagationPolicy=Background");
        continue;
      }
    }
    candidates.push_back({&nr, job_name, std::move(args), plan.Describe()});
  }

  const int selected = static_cast<int>(in.nodes.size());
  const int max_unavailable = policy.remediation.max_unavailable.Resolve(selected);
  if (stalled) {
    in.rollout_stalled = "remediation stopped after " + std::to_string(std::max(consecutive, policy.remediation.failure_threshold)) +
                         " consecutive failed node remediations (failureThreshold " +
                         std::to_string(policy.remediation.failure_threshold) +
                         "); no new Jobs are created until the spec changes";
    if (!was_stalled) events_.Record(policy_ref, "Warning", "RolloutStalled", *in.rollout_stalled);
    return;
  }
  int started = 0;
  for (auto& c : candidates) {
    if (in_progress >= max_unavailable) break;
    JobSpecInput js;
    js.name = c.name;
    js.type = "remediate";
    js.node = c.nr->node;
    js.args = c.args;
    js.policy = &policy;
    js.plan_description = c.plan;
    kube::Result r = client_.Create(jobs_path, BuildJob(js, options_.remediation));
    if (!r.ok() && r.status.code() != StatusCode::kAlreadyExists) {
      spdlog::warn("kubeletpolicy {}: creating remediation Job {} for node {}: {}", policy.name, c.name, c.nr->node,
                   r.status.message());
      continue;
    }
    mem.created_jobs[c.name] = {c.nr->node, now};
    ++in_progress;
    ++started;
    c.nr->state = NodeState::kRemediating;
    c.nr->remediation = json{{"job", c.name}, {"phase", "Pending"}, {"attempts", 1}};
    c.nr->message = "remediating: " + c.plan;
    if (r.ok()) {
      jobs_created_.WithLabels({"remediate"}).Inc();
      std::string msg = "remediation Job " + options_.remediation.job_namespace + "/" + c.name + " started on node " +
                        c.nr->node + " for " + policy.name + ": " + c.plan;
      RecordAboutNode(policy_ref, node_ref(c.nr->node), "Normal", "RemediationStarted", msg);
    }
  }
  const int waiting = static_cast<int>(candidates.size()) - started + waiting_for_audit;
  if (in_progress > 0 || waiting > 0) {
    in.remediating = true;
    in.remediating_message = "remediating " + std::to_string(in_progress) + " node(s) (maxUnavailable " +
                             std::to_string(max_unavailable) + "), " + std::to_string(waiting) + " waiting";
  }
}

}  // namespace kpc::controller
