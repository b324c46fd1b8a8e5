#include "controller/compliance.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "policy/verdict.h"

namespace kpc::controller {

using nlohmann::json;

// ---- pure pieces ----

std::optional<std::chrono::nanoseconds> CheckInterval(
    const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies) {
  std::optional<int64_t> interval;
  for (const auto& p : policies) {
    if (p.node_selector.Matches(node.labels))
      interval = std::min(interval.value_or(p.check_interval_ns), p.check_interval_ns);
  }
  if (!interval) return std::nullopt;
  return std::chrono::nanoseconds(*interval);
}

NodeResult EvaluateCheck(const policy::KubeletPolicy& policy, const NodeInfo& node,
                         const ConfigzResult& check, policy::NodeFacts facts, int64_t now_unix,
                         policy::NodeEvaluation* evaluation) {
  NodeResult nr;
  nr.node = node.name;
  nr.last_checked_unix = check.checked_unix;
  if (!check.ok || !check.config) {
    nr.state = NodeState::kUnknown;
    nr.message = check.message;
    return nr;
  }
  facts.name = node.name;
  facts.labels = node.labels;
  facts.kubelet_minor = node.kubelet_minor;
  policy::NodeEvaluation ev = policy::EvaluateNode(policy, facts, *check.config, now_unix);
  policy::NodeVerdict v = policy::VerdictOf(ev.rules);
  switch (v.verdict) {
    case policy::Verdict::kCompliant:
      nr.state = NodeState::kCompliant;
      break;
    case policy::Verdict::kNonCompliant:
      nr.state = NodeState::kNonCompliant;
      break;
    case policy::Verdict::kUnknown:
      nr.state = NodeState::kUnknown;
      break;
  }
  nr.failed_rules = std::move(v.failed_rules);
  nr.message = std::move(v.message);
  if (evaluation) *evaluation = std::move(ev);
  return nr;
}

std::map<std::string, NodeState> StatesFromStatus(const json& status) {
  std::map<std::string, NodeState> out;
  if (!status.is_object() || !status.contains("nodes") || !status["nodes"].is_array()) return out;
  for (const auto& n : status["nodes"]) {
    if (!n.is_object()) continue;
    const std::string s = n.value("state", "");
    NodeState state = NodeState::kCompliant;
    for (NodeState candidate :
         {NodeState::kNonCompliant, NodeState::kUnknown, NodeState::kRemediating,
          NodeState::kRemediationPlanned, NodeState::kRemediationFailed, NodeState::kBlocked}) {
      if (s == NodeStateName(candidate)) state = candidate;
    }
    out[n.value("name", "")] = state;
  }
  return out;
}

namespace {

bool NonCompliantState(NodeState s) {
  return s != NodeState::kCompliant && s != NodeState::kUnknown && s != NodeState::kPending;
}

// The Event for a node entering `state` from `before`; nullopt when there is none.
std::optional<NodeEvent> TransitionEvent(const std::string& policy, const NodeResult& r,
                                         NodeState before) {
  NodeEvent e{r.node, "Warning", "", ""};
  switch (r.state) {
    case NodeState::kNonCompliant:
      // Back from a remediation state (planned, waiting, failed, blocked) is no news.
      if (NonCompliantState(before)) return std::nullopt;
      e.reason = "NodeNonCompliant";
      e.message = "node " + r.node + " does not comply with " + policy + ": " + r.message;
      return e;
    case NodeState::kUnknown:
      e.reason = "ConfigzUnavailable";
      e.message = "node " + r.node + " could not be checked for " + policy + ": " + r.message;
      return e;
    case NodeState::kCompliant:
      e.type = "Normal";
      e.reason = "NodeCompliant";
      e.message = "node " + r.node + " complies with " + policy;
      return e;
    case NodeState::kRemediationPlanned:
      e.type = "Normal";
      e.reason = "RemediationPlanned";
      e.message =
          "DryRun: remediation of node " + r.node + " for " + policy + " would: " + r.message;
      return e;
    case NodeState::kRemediationFailed:
      e.reason = "RemediationFailed";
      e.message = "remediation of node " + r.node + " for " + policy + " failed: " + r.message;
      return e;
    case NodeState::kBlocked:
      e.reason = "RemediationBlocked";
      e.message = "remediation of node " + r.node + " for " + policy + " is blocked: " + r.message;
      return e;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::vector<NodeEvent> TransitionEvents(const std::string& policy,
                                        const std::map<std::string, NodeState>& before,
                                        const std::vector<NodeResult>& results,
                                        std::map<std::string, NodeState>* next) {
  std::vector<NodeEvent> events;
  next->clear();
  for (const auto& r : results) {
    auto it = before.find(r.node);
    if (r.state == NodeState::kPending) {
      if (it != before.end()) (*next)[r.node] = it->second;
      continue;
    }
    (*next)[r.node] = r.state;
    const NodeState prev = it == before.end() ? NodeState::kCompliant : it->second;
    if (prev == r.state) continue;
    if (auto e = TransitionEvent(policy, r, prev)) events.push_back(std::move(*e));
  }
  return events;
}

std::optional<int64_t> NextExceptionExpiry(const policy::KubeletPolicy& policy, int64_t now_unix) {
  std::optional<int64_t> next;
  for (const auto& e : policy.exceptions) {
    if (e.expires_unix && *e.expires_unix > now_unix)
      next = std::min(next.value_or(*e.expires_unix), *e.expires_unix);
  }
  return next;
}

// ---- the controller ----

ComplianceController::ComplianceController(kube::Client& client, ConfigzSource& configz,
                                           kube::EventRecorder& events, Registry& metrics,
                                           const Clock& clock, const kube::Store& policies,
                                           const kube::Store& nodes, const PolicyIndex& index,
                                           NodeFactsStore& facts,
                                           RemediationController& remediation,
                                           ComplianceOptions options, Hooks hooks)
    : client_(client),
      configz_(configz),
      source_(ConfigzSourceName(configz.kind())),
      events_(events),
      clock_(clock),
      policies_(policies),
      nodes_(nodes),
      index_(index),
      facts_(facts),
      remediation_(remediation),
      options_(options),
      hooks_(std::move(hooks)),
      nodes_gauge_(metrics.AddGauge("kubeletpolicy_nodes",
                                    "Nodes selected by a KubeletPolicy, by compliance state.",
                                    {"policy", "state"})),
      rule_gauge_(metrics.AddGauge("kubeletpolicy_rule_failing_nodes",
                                   "Nodes failing a rule of a KubeletPolicy.", {"policy", "rule"})),
      fetch_latency_(metrics.AddHistogram(
          "kubeletpolicy_configz_fetch_duration_seconds",
          "Latency of /configz fetches, by source (kubelet: direct; "
          "apiserver-proxy: through the API server's node proxy).",
          {"source"}, {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      fetch_errors_(metrics.AddCounter("kubeletpolicy_configz_fetch_errors_total",
                                       "Failed /configz fetches by reason and source.",
                                       {"reason", "source"})),
      status_writes_(metrics.AddCounter("kubeletpolicy_status_writes_total",
                                        "KubeletPolicy status writes by result.", {"result"})),
      input_rejected_(metrics.AddCounter(policy::kInputRejectedMetric, policy::kInputRejectedHelp,
                                         {"source", "limit"})) {
  scheduler_ = std::make_unique<ConfigzScheduler>(clock_, options_.scheduler,
                                                  [this](const std::string& n) { Fetch(n); });
  metrics.AddCallbackGauge("kubeletpolicy_configz_fetches_in_flight",
                           "Configz fetches in progress.",
                           [this] { return static_cast<double>(scheduler_->InFlight()); });
}

ComplianceController::~ComplianceController() { Stop(); }

void ComplianceController::Start() { scheduler_->Start(); }
void ComplianceController::Stop() { scheduler_->Stop(); }

void ComplianceController::Reschedule(const NodeInfo& node,
                                      const std::vector<policy::KubeletPolicy>& policies) {
  if (auto interval = CheckInterval(node, policies)) {
    scheduler_->Schedule(node.name, *interval);
  } else {
    scheduler_->Unschedule(node.name);
  }
}

void ComplianceController::Trigger(const std::string& node) { scheduler_->Trigger(node); }

void ComplianceController::Forget(const std::string& node) {
  scheduler_->Unschedule(node);
  checks_.Erase(node);
}

void ComplianceController::Fetch(const std::string& node) {
  const auto start = clock_.Now();
  ConfigzResult r = configz_.Fetch(node, options_.configz_timeout);
  r.checked_at = clock_.Now();
  r.checked_unix = clock_.UnixSeconds();
  r.latency = r.checked_at - start;
  fetch_latency_.WithLabels({source_}).Observe(std::chrono::duration<double>(r.latency).count());
  if (!r.ok) {
    fetch_errors_.WithLabels({r.reason, source_}).Inc();
    if (!r.limit.empty()) input_rejected_.WithLabels({"configz", r.limit}).Inc();
  }
  if (r.reason == kThrottledReason) {
    // Throttling says nothing about the node: its last check (or none yet) stands, so its state,
    // verdict and Events do not change; the next check waits for the Retry-After.
    spdlog::info("node {}: {}", node, r.message);
    scheduler_->Defer(node, r.retry_after);
    return;
  }
  if (!r.ok) {
    spdlog::warn("node {}: {}", node, r.message);
  } else {
    spdlog::debug("node {}: configz fetched in {} ms", node,
                  std::chrono::duration_cast<std::chrono::milliseconds>(r.latency).count());
  }
  Record(node, std::move(r));
}

size_t ComplianceController::RememberedNodes(const std::string& policy) {
  std::lock_guard<std::mutex> lock(mem_mu_);
  auto it = memory_.find(policy);
  if (it == memory_.end()) return 0;
  return std::max(it->second.states.size(), it->second.evaluations.size());
}

void ComplianceController::Record(const std::string& node, ConfigzResult result) {
  checks_.Put(node, std::move(result));
  if (hooks_.checked) hooks_.checked(node);
}

ReconcileResult ComplianceController::Reconcile(const std::string& name) {
  auto obj = policies_.Get(name);
  if (!obj) {
    std::lock_guard<std::mutex> lock(mem_mu_);
    auto it = memory_.find(name);
    if (it != memory_.end()) {
      RemoveMetrics(name, it->second);
      memory_.erase(it);
    }
    remediation_.Forget(name);
    return {};
  }
  Memory& mem = [&]() -> Memory& {
    std::lock_guard<std::mutex> lock(mem_mu_);
    return memory_[name];  // references into a std::map stay valid; one worker per key
  }();
  const int64_t generation = GenerationOf(*obj);
  if (mem.generation != generation) {
    mem.generation = generation;
    mem.generation_seen = clock_.Now();
  }
  if (!mem.states_loaded) {
    // Continue from what the status already says, so a restart or a new leader does not repeat
    // transition Events.
    mem.states = StatesFromStatus(obj->contains("status") ? (*obj)["status"] : json());
    mem.states_loaded = true;
  }
  auto parsed = index_.Parsed(*obj);
  StatusInput in;
  in.generation = generation;
  in.now_unix = clock_.UnixSeconds();
  if (!parsed->policy) {
    std::string msg = "invalid spec: ";
    for (size_t i = 0; i < parsed->errors.size(); ++i) {
      msg += (i ? "; " : "") + parsed->errors[i].field + ": " + parsed->errors[i].message;
    }
    in.invalid_spec = policy::TruncateMessage(msg, 1024);
    return {WriteStatus(name, *obj, in, 300), std::nullopt};
  }
  const policy::KubeletPolicy& policy = *parsed->policy;
  for (const auto& r : policy.rules) in.rule_ids.push_back(r.id);
  const int64_t refresh = std::max<int64_t>(policy.check_interval_ns / 1'000'000'000, 10);
  if (policy.suspend) {
    in.suspended = true;
    return {WriteStatus(name, *obj, in, refresh), std::nullopt};
  }
  return ReconcileValid(policy, *obj, mem, in, refresh);
}

ComplianceController::Selected ComplianceController::EvaluateSelected(
    const policy::KubeletPolicy& policy, Memory& mem, int64_t now_unix) {
  // An exception that expired since a cached evaluation changes that node's verdict.
  auto expired_since = [&](int64_t since) {
    return std::any_of(
        policy.exceptions.begin(), policy.exceptions.end(), [&](const policy::PolicyException& e) {
          return e.expires_unix && *e.expires_unix > since && *e.expires_unix <= now_unix;
        });
  };
  Selected sel;
  std::map<std::string, Memory::CachedEvaluation> evaluations;
  for (const auto& node_obj : nodes_.List()) {
    NodeInfo node = NodeInfoFromJson(node_obj);
    if (!policy.node_selector.Matches(node.labels)) continue;
    RolloutNode rn;
    rn.info = node;
    auto check = checks_.Get(node.name);
    if (!check || check->checked_at < mem.generation_seen) {
      rn.result.node = node.name;
      rn.result.state = NodeState::kPending;
      sel.rollout.push_back(std::move(rn));
      continue;
    }
    rn.last_check = check->checked_at;
    uint64_t facts_version = 0;
    policy::NodeFacts facts = facts_.FactsFor(node.name, &facts_version);
    rn.audited = facts_version != 0;
    auto cached = mem.evaluations.find(node.name);
    if (cached != mem.evaluations.end() && cached->second.checked_at == check->checked_at &&
        cached->second.generation == policy.generation && cached->second.labels == node.labels &&
        cached->second.kubelet_minor == node.kubelet_minor &&
        cached->second.facts_version == facts_version &&
        !expired_since(cached->second.evaluated_unix)) {
      evaluations[node.name] = std::move(cached->second);
    } else {
      Memory::CachedEvaluation e;
      e.checked_at = check->checked_at;
      e.generation = policy.generation;
      e.labels = node.labels;
      e.kubelet_minor = node.kubelet_minor;
      e.evaluated_unix = now_unix;
      e.facts_version = facts_version;
      e.result = EvaluateCheck(policy, node, *check, std::move(facts), now_unix, &e.evaluation);
      evaluations[node.name] = std::move(e);
    }
    rn.result = evaluations[node.name].result;
    sel.rollout.push_back(std::move(rn));
  }
  mem.evaluations = std::move(evaluations);  // nodes no longer selected drop out
  for (auto& rn : sel.rollout) {
    auto it = mem.evaluations.find(rn.result.node);
    if (it != mem.evaluations.end()) rn.evaluation = &it->second.evaluation;
    sel.results.push_back(rn.result);
  }
  return sel;
}

ReconcileResult ComplianceController::ReconcileValid(const policy::KubeletPolicy& policy,
                                                     const json& obj, Memory& mem, StatusInput& in,
                                                     int64_t refresh) {
  Selected sel = EvaluateSelected(policy, mem, in.now_unix);
  for (const auto& nr : sel.results) {
    for (const auto& r : nr.failed_rules) in.failing_by_rule[r]++;
  }
  std::map<std::string, std::string> uids;
  for (const auto& rn : sel.rollout) uids[rn.info.name] = rn.info.uid;
  in.nodes = std::move(sel.results);
  Status retry;
  if (policy.enforcement != policy::Enforcement::kAudit) {
    auto out = remediation_.Reconcile(policy, obj, std::move(sel.rollout), index_.Active());
    if (!out.ok()) return {out.status(), std::nullopt};
    in.nodes = std::move(out->nodes);
    in.rollout_stalled = out->stalled;
    in.remediating = !out->remediating_message.empty();
    in.remediating_message = out->remediating_message;
    retry = out->status;
  }
  if (Status s = WriteStatus(policy.name, obj, in, refresh); !s.ok()) return {s, std::nullopt};
  ReconcileResult result{retry, std::nullopt};
  // An exception that expires later changes verdicts then, with no node check to trigger it.
  if (auto expiry = NextExceptionExpiry(policy, in.now_unix)) {
    result.requeue_after = std::chrono::seconds(*expiry - in.now_unix + 1);
  }
  std::map<std::string, NodeState> next;
  const kube::ObjectRef policy_ref = PolicyRef(policy, obj);
  for (const auto& e : TransitionEvents(policy.name, mem.states, in.nodes, &next)) {
    auto uid = uids.find(e.node);
    RecordAboutNode(events_, policy_ref,
                    {"v1", "Node", e.node, "", uid == uids.end() ? "" : uid->second}, e.type,
                    e.reason, e.message);
  }
  mem.states = std::move(next);
  UpdateMetrics(policy.name, in, mem);
  return result;
}

Status ComplianceController::WriteStatus(const std::string& name, json obj, const StatusInput& in,
                                         int64_t refresh_seconds) {
  const std::string path = std::string(kPolicyPath) + "/" + name + "/status";
  for (int attempt = 0; attempt < 4; ++attempt) {
    json previous = obj.contains("status") ? obj["status"] : json();
    json status = ComputeStatus(in, previous);
    if (!StatusNeedsWrite(previous, status, in.now_unix, refresh_seconds)) return Status::Ok();
    obj["status"] = status;
    kube::Result r = client_.Update(path, obj);
    if (r.ok()) {
      status_writes_.WithLabels({"ok"}).Inc();
      spdlog::info("kubeletpolicy {}: status written (generation {}, {} nodes selected)", name,
                   in.generation, in.nodes.size());
      return Status::Ok();
    }
    if (r.status.code() == StatusCode::kConflict) {
      // Someone else wrote the object: read it fresh and recompute over its status.
      status_writes_.WithLabels({"conflict"}).Inc();
      kube::Result fresh = client_.Get(std::string(kPolicyPath) + "/" + name);
      if (!fresh.ok()) return fresh.status;
      if (GenerationOf(fresh.body) != in.generation)
        return Status::Ok();  // a newer spec will be reconciled
      obj = fresh.body;
      continue;
    }
    if (r.status.code() == StatusCode::kNotFound) return Status::Ok();  // deleted meanwhile
    status_writes_.WithLabels({"error"}).Inc();
    return r.status;
  }
  return Status(StatusCode::kConflict, "status of " + name + " kept conflicting");
}

void ComplianceController::UpdateMetrics(const std::string& name, const StatusInput& in,
                                         Memory& mem) {
  int compliant = 0, noncompliant = 0, unknown = 0;
  for (const auto& n : in.nodes) {
    if (n.state == NodeState::kCompliant)
      ++compliant;
    else if (n.state == NodeState::kUnknown || n.state == NodeState::kPending)
      ++unknown;
    else
      ++noncompliant;
  }
  nodes_gauge_.WithLabels({name, "compliant"}).Set(compliant);
  nodes_gauge_.WithLabels({name, "noncompliant"}).Set(noncompliant);
  nodes_gauge_.WithLabels({name, "unknown"}).Set(unknown);
  for (const auto& id : mem.rule_ids) {
    if (std::find(in.rule_ids.begin(), in.rule_ids.end(), id) == in.rule_ids.end())
      rule_gauge_.Remove({name, id});
  }
  for (const auto& id : in.rule_ids) {
    auto it = in.failing_by_rule.find(id);
    rule_gauge_.WithLabels({name, id}).Set(it == in.failing_by_rule.end() ? 0 : it->second);
  }
  mem.rule_ids = in.rule_ids;
}

void ComplianceController::RemoveMetrics(const std::string& name, const Memory& mem) {
  for (const char* s : {"compliant", "noncompliant", "unknown"}) nodes_gauge_.Remove({name, s});
  for (const auto& id : mem.rule_ids) rule_gauge_.Remove({name, id});
}

}  // namespace kpc::controller
