#pragma once
// The file-audit controller: on every node that a policy with file rules selects, an audit Job
// (`agent audit-files`, read-only host mounts) once per --file-audit-interval, at most
// --file-audit-qps created per second; each terminated audit pod's result becomes the node's
// file facts (NodeFactsStore), and the policies selecting the node are reconciled. A create
// that fails is tried again after AuditRetryDelay (per node, reset by a success), not a whole
// interval later. What it keeps per node goes when the node does (Forget).
// Thread-safe. Start/Stop run its scheduler (leader only); OnPod runs on every replica.

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
#include "controller/node_facts.h"
#include "controller/node_info.h"
#include "controller/remediation.h"
#include "kube/client.h"
#include "policy/model.h"

namespace kpc::controller {

// Whether any of `policies` that selects the node has a file rule. Pure.
bool NeedsFileAudit(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies);

// The audit Job for `node` at `now_unix`: nullopt when no policy selecting it has file rules.
// One Job per node per interval slot and per set of audited paths, so a restarted controller or
// a second leader finds the Job of the current slot instead of creating another. Pure.
std::optional<JobSpecInput> PlanAudit(const NodeInfo& node,
                                      const std::vector<policy::KubeletPolicy>& policies,
                                      int64_t now_unix, std::chrono::seconds interval);

// How long after the `failures`-th consecutive failed create (>= 1) of a node's audit Job the
// next attempt comes: 5 s doubling to 5 min, never later than one `interval`. Pure.
std::chrono::seconds AuditRetryDelay(int failures, std::chrono::seconds interval);

struct FileAuditOptions {
  std::chrono::seconds interval{3600};
  double qps = 5;  // audit Jobs created per second
  RemediationOptions jobs;
};

class FileAuditController {
 public:
  struct Hooks {
    std::function<std::optional<NodeInfo>(const std::string& node)> node;  // from the node cache
    std::function<std::vector<policy::KubeletPolicy>()> policies;          // valid, unsuspended
    std::function<void(const std::string& node)> facts_changed;            // reconcile its policies
  };
  // Every reference must outlive the controller.
  FileAuditController(kube::Client& client, Registry& metrics, const Clock& clock,
                      NodeFactsStore& facts, FileAuditOptions options, Hooks hooks);
  ~FileAuditController();

  // Audits the node on schedule when `policies` ask for it, else stops auditing it.
  void Reschedule(const NodeInfo& node, const std::vector<policy::KubeletPolicy>& policies);
  void Trigger(const std::string& node);  // audit now (a policy changed), or after a backoff
  void Forget(const std::string& node);   // the node is gone: its schedule, facts, backoff go
  void OnPod(const nlohmann::json& pod);  // audit pods; others are ignored

  void Start();
  void Stop();

  // What is kept per node (tests: nothing stays behind a deleted node).
  size_t ScheduledNodes() const { return scheduler_->Scheduled().size(); }
  size_t BackingOffNodes() const;

 private:
  void EnsureAudit(const std::string& node);
  // Counts a failed create and defers the node's next attempt; a success resets the count.
  void RecordCreate(const std::string& node, bool created);

  kube::Client& client_;
  const Clock& clock_;
  NodeFactsStore& facts_;
  const FileAuditOptions options_;
  const Hooks hooks_;
  CounterFamily& jobs_created_;
  CounterFamily& input_rejected_;
  std::unique_ptr<ConfigzScheduler> scheduler_;
  mutable std::mutex mu_;
  std::map<std::string, int> failures_;  // node -> consecutive failed creates
};

}  // namespace kpc::controller
