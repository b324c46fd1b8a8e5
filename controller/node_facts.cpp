#include "controller/node_facts.h"

#include <spdlog/spdlog.h>

namespace kpc::controller {

bool NodeFactsStore::RecordAudit(const std::string& node, const std::string& pod_uid,
                                 int64_t created_unix, const StatusOr<agent::AgentResult>& result) {
  std::lock_guard<std::mutex> l(mu_);
  Record& rec = records_[node];
  if (rec.pod_uid == pod_uid || created_unix < rec.created_unix) return false;
  rec.pod_uid = pod_uid;
  rec.created_unix = created_unix;
  if (result.ok()) {
    rec.result = *result;
  } else {
    spdlog::warn("node {}: file audit pod {} gave no result: {}", node, pod_uid,
                 result.status().message());
  }
  rec.version = ++last_version_;
  return true;
}

bool NodeFactsStore::RecordChangedFiles(const std::string& node,
                                        const std::map<std::string, policy::FileFacts>& files) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = records_.find(node);
  if (files.empty() || it == records_.end() || it->second.pod_uid.empty()) return false;
  for (const auto& [path, f] : files) it->second.result.files[path] = f;
  it->second.version = ++last_version_;
  return true;
}

policy::NodeFacts NodeFactsStore::FactsFor(const std::string& node, uint64_t* version) const {
  policy::NodeFacts facts;
  std::lock_guard<std::mutex> l(mu_);
  auto it = records_.find(node);
  *version = it == records_.end() ? 0 : it->second.version;
  if (it != records_.end()) MergeAuditFacts(it->second.result, facts);
  return facts;
}

void NodeFactsStore::Erase(const std::string& node) {
  std::lock_guard<std::mutex> l(mu_);
  records_.erase(node);
}

size_t NodeFactsStore::Size() const {
  std::lock_guard<std::mutex> l(mu_);
  return records_.size();
}

void MergeAuditFacts(const agent::AgentResult& result, policy::NodeFacts& facts) {
  const agent::KubeletFiles& k = result.kubelet;
  if (!k.config_file.empty()) facts.file_targets["KubeletConfigFile"] = k.config_file;
  if (!k.kubeconfig.empty()) facts.file_targets["KubeletKubeconfig"] = k.kubeconfig;
  // The service file a rule audits: the systemd drop-in that carries the kubelet's flags when
  // there is one (CIS: 10-kubeadm.conf), else the unit.
  std::string service;
  for (const auto& f : k.flags_files) {
    if (f.find("/systemd/") != std::string::npos) {
      service = f;
      break;
    }
  }
  if (service.empty() && !k.service_files.empty()) service = k.service_files.front();
  if (!service.empty()) facts.file_targets["KubeletServiceFile"] = service;
  for (const auto& [path, f] : result.files) facts.files[path] = f;
}

}  // namespace kpc::controller
