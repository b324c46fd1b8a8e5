#pragma once
// What file audits found on each node (the latest audit Job's result, plus the files a
// remediation changed since), as facts for evaluating file rules. Written by the file-audit and
// remediation controllers from terminated pods, read by the compliance controller.
// Thread-safe.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "agent/result.h"
#include "base/status.h"
#include "policy/evaluate.h"

namespace kpc::controller {

class NodeFactsStore {
 public:
  // The result of an audit pod. Only a newer pod than the one recorded counts (a restarted
  // controller lists old and new pods in any order). Returns whether the node's facts changed.
  bool RecordAudit(const std::string& node, const std::string& pod_uid, int64_t created_unix,
                   const StatusOr<agent::AgentResult>& result);
  // Files a remediation changed, as they are now, so file rules see the fix at once (only on a
  // node that has been audited). Returns whether the node's facts changed.
  bool RecordChangedFiles(const std::string& node,
                          const std::map<std::string, policy::FileFacts>& files);

  // The node's facts, and a version that changes whenever they do (0: never audited).
  policy::NodeFacts FactsFor(const std::string& node, uint64_t* version) const;
  void Erase(const std::string& node);
  size_t Size() const;  // nodes with facts

 private:
  struct Record {
    agent::AgentResult result;
    int64_t created_unix = 0;
    std::string pod_uid;
    uint64_t version = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;
  uint64_t last_version_ = 0;
};

// Audit results -> facts for evaluating file rules (file targets and per-path facts).
void MergeAuditFacts(const agent::AgentResult& result, policy::NodeFacts& facts);

}  // namespace kpc::controller
