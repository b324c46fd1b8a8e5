#include "controller/rollout.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "policy/conflicts.h"
#include "policy/verdict.h"

namespace kpc::controller {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using JobsByNode = std::map<std::string, std::vector<JobView>>;

// This policy's remediation Jobs per node, oldest first.
JobsByNode GroupJobs(const std::vector<JobView>& jobs) {
  JobsByNode out;
  for (const auto& j : jobs) out[j.node].push_back(j);
  for (auto& [node, list] : out) {
    std::sort(list.begin(), list.end(), [](const JobView& a, const JobView& b) {
      return std::tie(a.created_unix, a.name) < std::tie(b.created_unix, b.name);
    });
  }
  return out;
}

struct Context {
  const RolloutInput& in;
  const policy::KubeletPolicy& policy;
  const bool enforce;
  JobsByNode jobs;
  std::vector<std::pair<policy::KubeletPolicy, std::vector<std::string>>> conflicting;

  const StatusOr<agent::AgentResult>* ResultOf(const std::string& job) const {
    auto it = in.job_results.find(job);
    return it == in.job_results.end() ? nullptr : &it->second;
  }
  // A Job that failed because the agent was blocked (its result says so, or the pod failure
  // policy ended it on the agent's "blocked" exit code) is no failure of the rollout.
  bool Blocked(const JobView& j) const {
    const auto* r = ResultOf(j.name);
    if (r && r->ok()) return (*r)->blocked.has_value();
    return j.failure_message.find("PodFailurePolicy") != std::string::npos;
  }
};

// Consecutive failures of this generation's rollout, in the order the Jobs finished. Jobs of
// nodes the policy no longer selects (deleted, relabelled mid-rollout) do not count.
int ConsecutiveFailures(const Context& c) {
  std::set<std::string> selected;
  for (const auto& n : c.in.nodes) selected.insert(n.result.node);
  std::vector<const JobView*> finished;
  for (const auto& [node, list] : c.jobs) {
    if (!selected.count(node)) continue;
    for (const auto& j : list) {
      if (j.generation == c.policy.generation && !j.Active()) finished.push_back(&j);
    }
  }
  std::sort(finished.begin(), finished.end(), [](const JobView* a, const JobView* b) {
    return std::tie(a->finished_unix, a->name) < std::tie(b->finished_unix, b->name);
  });
  int consecutive = 0;
  for (const JobView* j : finished) {
    if (j->succeeded && j->verification == "Succeeded")
      consecutive = 0;
    else if ((j->failed && !c.Blocked(*j)) || (j->succeeded && j->verification == "Failed"))
      ++consecutive;
  }
  return consecutive;
}

// A stalled rollout stays stalled until the spec changes (the status carries it across restarts).
bool WasStalled(const json& previous_status, int64_t generation) {
  const json c = FindCondition(previous_status, "Stalled");
  return c.is_object() && c.value("status", "") == "True" &&
         c.value("reason", "") == "RolloutStalled" &&
         c.value("observedGeneration", int64_t{-1}) == generation;
}

json RemediationJson(const JobView& j, const std::string& phase, int attempts) {
  return json{{"job", j.name}, {"phase", phase}, {"attempts", attempts}};
}

struct Candidate {
  size_t index;
  std::string name;
  std::vector<std::string> args;
  std::string plan;
};

// Shared state of one planning pass.
struct Pass {
  RolloutPlan plan;
  std::vector<Candidate> candidates;
  int consecutive = 0;
  bool stalled = false;
  int waiting_for_audit = 0;
};

// The Job of the same plan as `name` already ran: its outcome decides the node. Returns true
// when the node is decided (no new Job).
bool DecideFromSameJob(const Context& c, const JobView& same, int attempts, NodeResult& nr,
                       Pass& pass) {
  if (same.failed) {
    const auto* r = c.ResultOf(same.name);
    const bool blocked = c.Blocked(same);
    std::string why = same.failure_message;
    if (r && r->ok()) {
      const agent::AgentResult& ar = **r;
      if (ar.blocked)
        why = ar.blocked->reason + ": " + ar.blocked->message;
      else if (!ar.errors.empty())
        why = ar.errors.front();
    } else if (r) {
      why = r->status().message();
    }
    nr.state = blocked ? NodeState::kBlocked : NodeState::kRemediationFailed;
    nr.remediation = RemediationJson(same, blocked ? "Blocked" : "Failed", attempts);
    if (blocked && r && r->ok() && (*r)->blocked) nr.remediation["reason"] = (*r)->blocked->reason;
    nr.message = policy::TruncateMessage("Job " + same.name + ": " + why, 1024);
    return true;
  }
  if (same.succeeded && same.verification == "Failed") {
    nr.state = NodeState::kRemediationFailed;
    nr.remediation = RemediationJson(same, "Failed", attempts);
    nr.message =
        "Job " + same.name + " succeeded but the node still does not comply: " + nr.message;
    return true;
  }
  if (same.succeeded && same.generation == c.policy.generation) {
    // The same fix was verified before and the node drifted back: run it again.
    pass.plan.actions.push_back(DeleteJob{same.name});
    return true;
  }
  return false;
}

// Verification of the latest Job when it succeeded: a /configz check after it, with the node
// Ready. Returns true when the node is decided by it.
bool Verify(const Context& c, const RolloutNode& node, const JobView& latest,
            const RemediationPlan& fix, int attempts, NodeResult& nr, Pass& pass) {
  auto [seen_it, first] = pass.plan.memory.finished_seen.emplace(latest.name, c.in.now);
  if (first) pass.plan.actions.push_back(TriggerCheck{nr.node});
  if (!node.last_check || *node.last_check <= seen_it->second || !node.info.ready) {
    nr.state = NodeState::kRemediating;
    nr.remediation = RemediationJson(latest, "Verifying", attempts);
    nr.message =
        "verifying: waiting for the node to be Ready and a /configz check after Job " + latest.name;
    ++pass.plan.in_progress;
    return true;
  }
  const bool fixed = fix.empty();
  PatchVerification patch{latest.name, nr.node, node.info.uid, fixed, ""};
  pass.plan.memory.finished_seen.erase(latest.name);
  if (fixed) {
    pass.consecutive = 0;
    patch.event_message = "node " + nr.node + " remediated for " + c.policy.name +
                          " and verified through /configz: " + latest.plan;
    nr.remediation = RemediationJson(latest, "Succeeded", attempts);
    // The node's own verdict stands (compliant, or failing rules nothing can fix).
  } else {
    ++pass.consecutive;
    nr.state = NodeState::kRemediationFailed;
    nr.remediation = RemediationJson(latest, "Failed", attempts);
    nr.message =
        "Job " + latest.name + " succeeded but the node still does not comply: " + nr.message;
    if (pass.consecutive >= c.policy.remediation.failure_threshold) pass.stalled = true;
  }
  // Verification patches go first: should one fail, nothing after it has been done.
  auto first_other = std::find_if(
      pass.plan.actions.begin(), pass.plan.actions.end(),
      [](const RolloutAction& a) { return !std::holds_alternative<PatchVerification>(a); });
  pass.plan.actions.insert(first_other, std::move(patch));
  return true;
}

// Whether a conflicting policy selects the node: then it is Blocked.
bool BlockOnConflict(const Context& c, const RolloutNode& node, NodeResult& nr) {
  std::vector<std::string> fights;
  for (const auto& [other, messages] : c.conflicting) {
    if (other.node_selector.Matches(node.info.labels))
      fights.insert(fights.end(), messages.begin(), messages.end());
  }
  if (fights.empty()) return false;
  nr.state = NodeState::kBlocked;
  nr.remediation = json{{"phase", "Blocked"}, {"reason", "Conflict"}};
  std::string msg = "conflicting policies: ";
  for (size_t i = 0; i < fights.size(); ++i) msg += (i ? "; " : "") + fights[i];
  nr.message = policy::TruncateMessage(msg, 1024);
  return true;
}

void PlanNode(const Context& c, size_t index, Pass& pass) {
  const RolloutNode& node = c.in.nodes[index];
  NodeResult& nr = pass.plan.nodes[index];
  auto jt = c.jobs.find(nr.node);
  static const std::vector<JobView> kNone;
  const std::vector<JobView>& list = jt == c.jobs.end() ? kNone : jt->second;
  const JobView* latest = list.empty() ? nullptr : &list.back();
  const int attempts =
      static_cast<int>(std::count_if(list.begin(), list.end(), [&](const JobView& j) {
        return j.generation == c.policy.generation;
      }));
  if (latest && latest->Active()) {
    nr.state = NodeState::kRemediating;
    nr.remediation = RemediationJson(*latest, "Running", attempts);
    nr.message = "remediating: " + latest->plan;
    ++pass.plan.in_progress;
    return;
  }
  const auto& created = pass.plan.memory.created_jobs;
  if (std::any_of(created.begin(), created.end(),
                  [&](const auto& e) { return e.second.first == nr.node; })) {
    nr.state = NodeState::kRemediating;
    ++pass.plan.in_progress;
    return;
  }
  if (nr.state == NodeState::kPending || nr.state == NodeState::kUnknown || !node.evaluation)
    return;
  RemediationPlan fix = PlanRemediation(c.policy, *node.evaluation);
  if (c.enforce && latest && latest->succeeded && latest->verification.empty() &&
      latest->generation == c.policy.generation) {
    Verify(c, node, *latest, fix, attempts, nr, pass);
    return;
  }
  if (nr.state != NodeState::kNonCompliant || fix.empty()) return;
  if (BlockOnConflict(c, node, nr)) return;
  if (!c.enforce) {  // DryRun
    nr.state = NodeState::kRemediationPlanned;
    json changes = json::array();
    for (const auto& ch : fix.changes) changes.push_back(ch.Describe());
    nr.remediation = json{{"phase", "Planned"}, {"changes", changes}};
    nr.message = policy::TruncateMessage(fix.Describe(), 1024);
    return;
  }
  if (c.policy.HasFileRules() && !node.audited) {
    // One Job with the whole plan (one kubelet restart), not one before and one after the audit.
    nr.message = "waiting for the node's first file audit before remediating: " + nr.message;
    ++pass.waiting_for_audit;
    return;
  }
  std::vector<std::string> args = RemediateArgs(c.policy, fix, c.in.options);
  std::string job_name = RemediationJobName(c.policy.name, nr.node, c.policy.generation, args);
  auto same =
      std::find_if(list.begin(), list.end(), [&](const JobView& j) { return j.name == job_name; });
  if (same != list.end() && DecideFromSameJob(c, *same, attempts, nr, pass)) return;
  pass.candidates.push_back({index, std::move(job_name), std::move(args), fix.Describe()});
}

void StartJobs(const Context& c, Pass& pass) {
  for (auto& cand : pass.candidates) {
    if (pass.plan.in_progress >= pass.plan.max_unavailable) break;
    NodeResult& nr = pass.plan.nodes[cand.index];
    JobSpecInput js;
    js.name = cand.name;
    js.type = "remediate";
    js.node = nr.node;
    js.args = cand.args;
    js.policy = &c.policy;
    js.plan_description = cand.plan;
    CreateJob create{
        cand.index, nr.node, c.in.nodes[cand.index].info.uid, BuildJob(js, c.in.options), cand.name,
        nr,         ""};
    create.event_message = "remediation Job " + c.in.options.job_namespace + "/" + cand.name +
                           " started on node " + nr.node + " for " + c.policy.name + ": " +
                           cand.plan;
    nr.state = NodeState::kRemediating;
    nr.remediation = json{{"job", cand.name}, {"phase", "Pending"}, {"attempts", 1}};
    nr.message = "remediating: " + cand.plan;
    pass.plan.actions.push_back(std::move(create));
    ++pass.plan.in_progress;
  }
}

// Forgets what no longer matters: Jobs this process created that the Job cache has shown by
// now, or never will, or whose node went (deleted, no longer selected); first sightings of
// Jobs that are gone.
void PruneMemory(const Context& c, RolloutMemory& memory) {
  std::set<std::string> selected, jobs;
  for (const auto& n : c.in.nodes) selected.insert(n.result.node);
  for (const auto& j : c.in.jobs) jobs.insert(j.name);
  for (auto it = memory.created_jobs.begin(); it != memory.created_jobs.end();) {
    const auto& [job_name, entry] = *it;
    const bool forget =
        jobs.count(job_name) || !selected.count(entry.first) || c.in.now - entry.second > 2min;
    it = forget ? memory.created_jobs.erase(it) : std::next(it);
  }
  for (auto it = memory.finished_seen.begin(); it != memory.finished_seen.end();) {
    it = jobs.count(it->first) ? std::next(it) : memory.finished_seen.erase(it);
  }
}

}  // namespace

RolloutPlan PlanRollout(const RolloutInput& in) {
  const policy::KubeletPolicy& policy = *in.policy;
  Context c{
      in, policy, policy.enforcement == policy::Enforcement::kEnforce, GroupJobs(in.jobs), {}};
  Pass pass;
  pass.plan.memory = in.memory;
  for (const auto& n : in.nodes) pass.plan.nodes.push_back(n.result);
  if (c.enforce && !in.jobs_synced) {
    // Without the Jobs that already exist, counting in-progress nodes would be guesswork.
    pass.plan.waiting_message = "waiting for the Job and Pod caches to sync";
    return std::move(pass.plan);
  }
  PruneMemory(c, pass.plan.memory);
  pass.consecutive = ConsecutiveFailures(c);
  const bool was_stalled = WasStalled(in.previous_status, policy.generation);
  pass.stalled =
      c.enforce && (was_stalled || pass.consecutive >= policy.remediation.failure_threshold);
  for (const auto& other : in.others) {
    if (other.name == policy.name || other.enforcement == policy::Enforcement::kAudit) continue;
    auto conflicts = policy::FindRemediationConflicts(policy, {other});
    if (!conflicts.empty()) c.conflicting.emplace_back(other, std::move(conflicts));
  }

  for (size_t i = 0; i < in.nodes.size(); ++i) PlanNode(c, i, pass);

  pass.plan.max_unavailable =
      policy.remediation.max_unavailable.Resolve(static_cast<int>(in.nodes.size()));
  if (pass.stalled) {
    const int threshold = policy.remediation.failure_threshold;
    pass.plan.stalled =
        "remediation stopped after " + std::to_string(std::max(pass.consecutive, threshold)) +
        " consecutive failed node remediations (failureThreshold " + std::to_string(threshold) +
        "); no new Jobs are created until the spec changes";
    if (!was_stalled)
      pass.plan.actions.push_back(PolicyEvent{"Warning", "RolloutStalled", *pass.plan.stalled});
    pass.plan.in_progress = 0;
    return std::move(pass.plan);
  }
  const int before = pass.plan.in_progress;
  StartJobs(c, pass);
  const int started = pass.plan.in_progress - before;
  pass.plan.waiting = static_cast<int>(pass.candidates.size()) - started + pass.waiting_for_audit;
  return std::move(pass.plan);
}

std::string RemediatingMessage(const RolloutPlan& plan) {
  if (!plan.waiting_message.empty()) return plan.waiting_message;
  if (plan.stalled || (plan.in_progress <= 0 && plan.waiting <= 0)) return "";
  return "remediating " + std::to_string(plan.in_progress) + " node(s) (maxUnavailable " +
         std::to_string(plan.max_unavailable) + "), " + std::to_string(plan.waiting) + " waiting";
}

}  // namespace kpc::controller
