#include "controller/operator.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "policy/evaluate.h"

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
                        int64_t now_unix) {
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
  policy::NodeFacts facts;
  facts.name = node.name;
  facts.labels = node.labels;
  facts.kubelet_minor = node.kubelet_minor;
  policy::NodeEvaluation ev = policy::EvaluateNode(policy, facts, *config, now_unix);
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
                                        "KubeletPolicy status writes by result.", {"result"})) {
  metrics.AddCallbackGauge("kubeletpolicy_workqueue_depth", "Policy keys waiting in the work queue.",
                           [this] { return static_cast<double>(queue_.Len() + queue_.DelayedLen()); });
  metrics.AddCallbackGauge("kubeletpolicy_configz_fetches_in_flight", "Configz fetches in progress.",
                           [this] { return scheduler_ ? static_cast<double>(scheduler_->InFlight()) : 0.0; });

  kube::InformerOptions popts;
  popts.list_path = kPolicyPath;
  popts.transform = TransformPolicy;
  policies_ = std::make_unique<kube::Informer>(
      client_, popts,
      kube::InformerHandlers{[this](const json& o) { OnPolicyChange(nullptr, &o); },
                             [this](const json& a, const json& b) { OnPolicyChange(&a, &b); },
                             [this](const json& o) { OnPolicyChange(&o, nullptr); }});
  kube::InformerOptions nopts;
  nopts.list_path = "/api/v1/nodes";
  nopts.transform = TransformNode;
  nodes_ = std::make_unique<kube::Informer>(
      client_, nopts,
      kube::InformerHandlers{[this](const json& o) { OnNodeChange(nullptr, &o); },
                             [this](const json& a, const json& b) { OnNodeChange(&a, &b); },
                             [this](const json& o) { OnNodeChange(&o, nullptr); }});
  scheduler_ = std::make_unique<ConfigzScheduler>(clock_, options_.scheduler,
                                                  [this](const std::string& n) { FetchConfigz(n); });
}

Operator::~Operator() { Stop(); }

void Operator::Start() {
  policies_->Start();
  nodes_->Start();
}

std::vector<json> Operator::CachedPolicies() const { return policies_->List(); }

bool Operator::HasSynced() const { return policies_->HasSynced() && nodes_->HasSynced(); }

void Operator::Stop() {
  queue_.ShutDown();
  if (scheduler_) scheduler_->Stop();
  if (policies_) policies_->Stop();
  if (nodes_) nodes_->Stop();
}

std::vector<policy::KubeletPolicy> Operator::ValidPolicies() const {
  std::vector<policy::KubeletPolicy> out;
  for (const auto& obj : policies_->List()) {
    auto r = policy::ParsePolicy(obj);
    if (r.policy && !r.policy->suspend) out.push_back(std::move(*r.policy));
  }
  return out;
}

void Operator::ScheduleNode(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies) {
  std::optional<int64_t> interval;
  for (const auto& p : policies) {
    if (!p.node_selector.Matches(node.labels)) continue;
    interval = std::min(interval.value_or(p.check_interval_ns), p.check_interval_ns);
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
    auto r = policy::ParsePolicy(obj);
    // Invalid policies are reconciled by their own events; here only the ones that select.
    if (r.policy && r.policy->node_selector.Matches(node.labels)) queue_.Add(r.policy->name);
  }
}

void Operator::OnPolicyChange(const json* old_obj, const json* new_obj) {
  const json& any = new_obj ? *new_obj : *old_obj;
  std::string name = NameOf(any);
  if (name.empty()) return;
  queue_.Add(name);
  bool generation_changed = !old_obj || !new_obj || GenerationOf(*old_obj) != GenerationOf(*new_obj);
  if (!generation_changed) return;
  RescheduleAll();
  if (new_obj) {
    // A new policy, or a new generation of one: re-check the nodes it selects now.
    auto r = policy::ParsePolicy(*new_obj);
    if (r.policy && !r.policy->suspend) {
      for (const auto& n : nodes_->List()) {
        NodeInfo info = NodeInfoFromJson(n);
        if (r.policy->node_selector.Matches(info.labels)) scheduler_->Trigger(info.name);
      }
    }
  }
}

void Operator::OnNodeChange(const json* old_obj, const json* new_obj) {
  if (!new_obj) {
    NodeInfo gone = NodeInfoFromJson(*old_obj);
    scheduler_->Unschedule(gone.name);
    checks_.Erase(gone.name);
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
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers.emplace_back([this, &stop] { Worker(stop); });
  while (!stop() && !queue_.ShuttingDown()) std::this_thread::sleep_for(100ms);
  scheduler_->Stop();
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

  policy::PolicyParseResult parsed = policy::ParsePolicy(*obj);
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
  std::map<std::string, PolicyMemory::CachedEvaluation> evaluations;
  for (const auto& node_obj : nodes_->List()) {
    NodeInfo node = NodeInfoFromJson(node_obj);
    if (!policy.node_selector.Matches(node.labels)) continue;
    uids[node.name] = node.uid;
    auto check = checks_.Get(node.name);
    if (!check || check->checked_at < mem.generation_seen) {
      NodeResult pending;
      pending.node = node.name;
      pending.state = NodeState::kPending;
      in.nodes.push_back(std::move(pending));
      continue;
    }
    auto cached = mem.evaluations.find(node.name);
    if (cached != mem.evaluations.end() && cached->second.checked_at == check->checked_at &&
        cached->second.generation == generation && cached->second.labels == node.labels &&
        cached->second.kubelet_minor == node.kubelet_minor && !expired_since(cached->second.evaluated_unix)) {
      evaluations[node.name] = std::move(cached->second);
    } else {
      PolicyMemory::CachedEvaluation e{check->checked_at, generation, node.labels, node.kubelet_minor, in.now_unix,
                                       EvaluateCheck(policy, node, *check, in.now_unix)};
      evaluations[node.name] = std::move(e);
    }
    const NodeResult& nr = evaluations[node.name].result;
    for (const auto& r : nr.failed_rules) in.failing_by_rule[r]++;
    in.nodes.push_back(nr);
  }
  mem.evaluations = std::move(evaluations);  // nodes no longer selected drop out

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
    switch (r.state) {
      case NodeState::kNonCompliant:
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
      default:
        continue;
    }
    msg = Truncate(msg, 1024);
    events_.Record(policy_ref, type, reason, msg);
    events_.Record(node_ref, type, reason, msg);
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

}  // namespace kpc::controller
