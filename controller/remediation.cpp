#include "controller/remediation.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "policy/units.h"

namespace kpc::controller {

using nlohmann::json;

namespace {

std::string Sha256Hex(const std::string& data, size_t chars) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len && out.size() < chars; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    out += buf;
  }
  return out.substr(0, chars);
}

// Lower-case DNS-1123 label characters only; runs of others become one '-'; no leading or
// trailing '-'; at most `max` characters.
std::string Dns1123Part(const std::string& s, size_t max) {
  std::string out;
  for (char c : s) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9');
    if (ok) {
      out += l;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= max) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

std::string Display(const json& v) { return v.is_null() ? "unset" : policy::DisplayValue(v); }

// The value argument of --set: JSON unless the value is a string that does not itself parse as
// JSON (then the agent takes it as the string it is).
std::string SetValueArg(const json& v) {
  if (!v.is_string()) return v.dump();
  const std::string& s = v.get_ref<const std::string&>();
  if (json::accept(s)) return v.dump();  // "true", "5", "\"x\"": keep it a string
  return s;
}

std::string ObservedString(const json& observed, const char* key) {
  if (observed.is_object() && observed.contains(key) && observed[key].is_string()) return observed[key];
  return "";
}

int64_t TimeOf(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return 0;
  return policy::ParseRfc3339(obj[key].get<std::string>()).value_or(0);
}

std::string MetadataMapValue(const json& obj, const char* map, const char* key) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const json& md = obj["metadata"];
  if (!md.contains(map) || !md[map].is_object()) return "";
  const json& m = md[map];
  return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : "";
}

// metadata and the listed status fields of an object, for informer caches.
json KeepForCache(const json& obj, const char* api_version, const char* kind,
                  std::initializer_list<const char*> status_fields) {
  json out = {{"apiVersion", api_version}, {"kind", kind}};
  if (!obj.is_object()) return out;
  if (obj.contains("metadata") && obj["metadata"].is_object()) {
    const json& md = obj["metadata"];
    json m;
    for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations"}) {
      if (md.contains(k)) m[k] = md[k];
    }
    out["metadata"] = m;
  }
  if (obj.contains("status") && obj["status"].is_object()) {
    json s;
    for (const char* k : status_fields) {
      if (obj["status"].contains(k)) s[k] = obj["status"][k];
    }
    out["status"] = s;
  }
  return out;
}

}  // namespace

int64_t CreationUnix(const json& obj) {
  return obj.is_object() && obj.contains("metadata") ? TimeOf(obj["metadata"], "creationTimestamp") : 0;
}

std::string LabelOf(const json& obj, const char* key) { return MetadataMapValue(obj, "labels", key); }
std::string AnnotationOf(const json& obj, const char* key) { return MetadataMapValue(obj, "annotations", key); }

std::string PlannedChange::Describe() const {
  if (!file) return "set " + field + " " + Display(from) + " -> " + Display(to);
  std::string out;
  if (!mode.empty()) out += "chmod " + mode + " " + path;
  if (!owner.empty()) out += std::string(out.empty() ? "" : "; ") + "chown " + owner + " " + path;
  return out;
}

std::string RemediationPlan::Describe() const {
  std::string out;
  for (const auto& c : changes) out += (out.empty() ? "" : "; ") + c.Describe();
  if (!not_remediable.empty()) {
    out += std::string(out.empty() ? "" : "; ") + "not remediable: ";
    for (size_t i = 0; i < not_remediable.size(); ++i) out += (i ? ", " : "") + not_remediable[i];
  }
  return out;
}

RemediationPlan PlanRemediation(const policy::KubeletPolicy& policy, const policy::NodeEvaluation& evaluation) {
  RemediationPlan plan;
  for (const auto& ev : evaluation.rules) {
    if (ev.result != policy::RuleResult::kFail) continue;
    const policy::Rule* rule = policy.FindRule(ev.rule_id);
    if (!rule) continue;
    if (!rule->remediation.enabled) {
      plan.not_remediable.push_back(rule->id + " (remediation disabled)");
      continue;
    }
    if (rule->config) {
      if (!rule->remediation.value) {
        plan.not_remediable.push_back(rule->id + " (no remediation.value)");
        continue;
      }
      PlannedChange c;
      c.rule_id = rule->id;
      c.field = rule->config->path.ToString();
      c.from = ev.observed;
      c.to = *rule->remediation.value;
      plan.changes.push_back(std::move(c));
      continue;
    }
    const policy::FileCheck& fc = *rule->file;
    std::string path = ObservedString(ev.observed, "path");
    if (path.empty()) {  // a missing file that must exist: the agent does not create files
      plan.not_remediable.push_back(rule->id + " (file does not exist)");
      continue;
    }
    PlannedChange c;
    c.rule_id = rule->id;
    c.file = true;
    c.path = path;
    if (fc.max_mode) {
      std::string current = ObservedString(ev.observed, "mode");
      uint32_t mode = *fc.max_mode;
      if (!current.empty()) mode = static_cast<uint32_t>(std::stoul(current, nullptr, 8)) & *fc.max_mode;
      if (current.empty() || current != agent::FormatMode(mode)) c.mode = agent::FormatMode(mode);
    }
    std::string owner = ObservedString(ev.observed, "owner"), group = ObservedString(ev.observed, "group");
    std::string want_owner = fc.owner.empty() ? owner : fc.owner;
    std::string want_group = fc.group.empty() ? group : fc.group;
    if (want_owner != owner || want_group != group) c.owner = want_owner + ":" + want_group;
    if (c.mode.empty() && c.owner.empty()) continue;
    // Two file rules on the same path (e.g. one for the mode, one for the owner) merge.
    auto same = std::find_if(plan.changes.begin(), plan.changes.end(),
                             [&](const PlannedChange& o) { return o.file && o.path == path; });
    if (same != plan.changes.end()) {
      if (!c.mode.empty()) same->mode = c.mode;
      if (!c.owner.empty()) same->owner = c.owner;
      same->rule_id += "," + c.rule_id;
    } else {
      plan.changes.push_back(std::move(c));
    }
  }
  return plan;
}

std::string EscapeExpansion(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '$') out += '$';  // "$$" expands to "$": every '$' reaches the agent as written
    out += c;
  }
  return out;
}

std::vector<std::string> RemediateArgs(const policy::KubeletPolicy& policy, const RemediationPlan& plan,
                                       const RemediationOptions& options) {
  std::vector<std::string> args = {"agent", "remediate", "--host-root", "/host"};
  if (!policy.remediation.kubelet_config_file.empty()) {
    args.push_back("--config-file");
    args.push_back(EscapeExpansion(policy.remediation.kubelet_config_file));
  }
  bool config_change = false;
  for (const auto& c : plan.changes) {
    if (c.file) continue;
    config_change = true;
    args.push_back("--set");
    args.push_back(EscapeExpansion(c.field + "=" + SetValueArg(c.to)));
  }
  for (const auto& c : plan.changes) {
    if (!c.file) continue;
    if (!c.mode.empty()) {
      args.push_back("--file-mode");
      args.push_back(EscapeExpansion(c.path + "=" + c.mode));
    }
    if (!c.owner.empty()) {
      args.push_back("--file-owner");
      args.push_back(EscapeExpansion(c.path + "=" + c.owner));
    }
  }
  if (!config_change || !policy.remediation.restart_kubelet) {
    args.push_back("--no-restart");
  } else if (!options.restart_command.empty()) {
    args.push_back("--restart-command");
    for (const auto& a : options.restart_command) args.push_back(EscapeExpansion(a));
  }
  return args;
}

std::vector<std::string> AuditArgs(const std::vector<std::string>& paths) {
  std::vector<std::string> args = {"agent", "audit-files", "--host-root", "/host"};
  for (const auto& p : paths) {
    args.push_back("--file");
    args.push_back(EscapeExpansion(p));
  }
  return args;
}

std::string RemediationJobName(const std::string& policy, const std::string& node, int64_t generation,
                               const std::vector<std::string>& args) {
  std::string key = policy + "\n" + node + "\n" + std::to_string(generation);
  for (const auto& a : args) key += "\n" + a;
  std::string p = Dns1123Part(policy, 22), n = Dns1123Part(node, 25);
  std::string name = "kp-" + p + (p.empty() ? "" : "-") + n + (n.empty() ? "" : "-") + Sha256Hex(key, 10);
  return name;
}

std::string AuditJobName(const std::string& node, const std::string& key) {
  std::string n = Dns1123Part(node, 40);
  return "kpa-" + n + (n.empty() ? "" : "-") + Sha256Hex(node + "\n" + key, 10);
}

std::string NodeLabelValue(const std::string& node) {
  if (node.size() <= 63) return node;
  return node.substr(0, 52) + "-" + Sha256Hex(node, 10);
}

json BuildJob(const JobSpecInput& in, const RemediationOptions& options) {
  const bool remediate = in.type == "remediate";
  json labels = {{kManagedByLabel, kManagedBy},
                 {"app.kubernetes.io/name", "kubelet-policy-agent"},
                 {kJobTypeLabel, in.type},
                 {kNodeLabel, NodeLabelValue(in.node)}};
  json annotations = {{kNodeAnnotation, in.node}};
  json metadata = {{"name", in.name}, {"namespace", options.job_namespace}};
  if (remediate && in.policy) {
    labels[kPolicyLabel] = in.policy->name;
    annotations[kGenerationAnnotation] = std::to_string(in.policy->generation);
    annotations[kPlanAnnotation] = in.plan_description.substr(0, 4000);
    metadata["ownerReferences"] = json::array({{{"apiVersion", "kubeletpolicy.io/v1alpha1"},
                                                {"kind", "KubeletPolicy"},
                                                {"name", in.policy->name},
                                                {"uid", in.policy->uid},
                                                {"controller", true}}});
  }
  metadata["labels"] = labels;
  metadata["annotations"] = annotations;

  json volumes = json::array(), mounts = json::array();
  for (size_t i = 0; i < options.host_paths.size(); ++i) {
    const std::string& p = options.host_paths[i];
    std::string vname = "host-" + std::to_string(i);
    volumes.push_back({{"name", vname}, {"hostPath", {{"path", p}}}});
    mounts.push_back({{"name", vname}, {"mountPath", "/host" + p}, {"readOnly", !remediate}});
  }
  json container = {{"name", "agent"},
                    {"image", options.image},
                    {"imagePullPolicy", options.image_pull_policy},
                    {"command", json::array({"kubelet-policy-controller"})},
                    {"args", in.args},
                    {"terminationMessagePolicy", "FallbackToLogsOnError"},
                    {"volumeMounts", mounts},
                    {"resources",
                     {{"requests", {{"cpu", "10m"}, {"memory", "32Mi"}}}, {"limits", {{"memory", "128Mi"}}}}}};
  if (remediate) {
    container["securityContext"] = {{"privileged", true}};
  } else {
    container["securityContext"] = {{"runAsUser", 0}, {"readOnlyRootFilesystem", true},
                                    {"allowPrivilegeEscalation", false}};
  }
  json pod_spec = {{"nodeName", in.node},
                   {"restartPolicy", "Never"},
                   {"hostPID", true},
                   {"automountServiceAccountToken", false},
                   {"enableServiceLinks", false},
                   {"tolerations", json::array({{{"operator", "Exists"}}})},
                   {"containers", json::array({container})},
                   {"volumes", volumes}};
  int64_t deadline = options.audit_timeout_seconds;
  if (remediate && in.policy) deadline = std::max<int64_t>(in.policy->remediation.timeout_ns / 1'000'000'000, 10);
  json spec = {{"backoffLimit", remediate ? 1 : 0},
               {"activeDeadlineSeconds", deadline},
               {"ttlSecondsAfterFinished", remediate ? options.job_ttl_seconds : options.audit_ttl_seconds},
               // A blocked remediation (exit 3) or a bad command line (exit 2) does not get
               // better by running again.
               {"podFailurePolicy",
                {{"rules", json::array({{{"action", "FailJob"},
                                         {"onExitCodes",
                                          {{"containerName", "agent"},
                                           {"operator", "In"},
                                           {"values", json::array({agent::kExitUsage, agent::kExitBlocked})}}}}})}}},
               {"template", {{"metadata", {{"labels", labels}, {"annotations", annotations}}}, {"spec", pod_spec}}}};
  return {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", metadata}, {"spec", spec}};
}

std::optional<JobView> JobViewFromJson(const json& job) {
  if (!job.is_object() || !job.contains("metadata") || !job["metadata"].is_object()) return std::nullopt;
  const json& md = job["metadata"];
  JobView v;
  v.name = md.value("name", "");
  v.uid = md.value("uid", "");
  v.type = LabelOf(job, kJobTypeLabel);
  v.policy = LabelOf(job, kPolicyLabel);
  v.node = AnnotationOf(job, kNodeAnnotation);
  if (v.name.empty() || v.node.empty()) return std::nullopt;
  std::string gen = AnnotationOf(job, kGenerationAnnotation);
  if (!gen.empty() && std::all_of(gen.begin(), gen.end(), ::isdigit) && gen.size() < 18) v.generation = std::stoll(gen);
  v.plan = AnnotationOf(job, kPlanAnnotation);
  v.verification = AnnotationOf(job, kVerificationAnnotation);
  v.created_unix = CreationUnix(job);
  const json status = job.contains("status") && job["status"].is_object() ? job["status"] : json::object();
  if (status.contains("conditions") && status["conditions"].is_array()) {
    for (const auto& c : status["conditions"]) {
      if (!c.is_object() || c.value("status", "") != "True") continue;
      std::string type = c.value("type", "");
      if (type == "Complete") {
        v.succeeded = true;
        v.finished_unix = TimeOf(c, "lastTransitionTime");
      } else if (type == "Failed") {
        v.failed = true;
        v.finished_unix = TimeOf(c, "lastTransitionTime");
        v.failure_message = c.value("reason", "") + (c.contains("message") ? ": " + c.value("message", "") : "");
      }
    }
  }
  if ((v.succeeded || v.failed) && v.finished_unix == 0) v.finished_unix = TimeOf(status, "completionTime");
  return v;
}

std::optional<PodAgentResult> AgentResultFromPod(const json& pod) {
  if (!pod.is_object() || !pod.contains("status") || !pod["status"].is_object()) return std::nullopt;
  const json& st = pod["status"];
  if (!st.contains("containerStatuses") || !st["containerStatuses"].is_array()) return std::nullopt;
  for (const auto& cs : st["containerStatuses"]) {
    if (!cs.is_object() || !cs.contains("state") || !cs["state"].is_object()) continue;
    const json& state = cs["state"];
    if (!state.contains("terminated") || !state["terminated"].is_object()) continue;
    const json& t = state["terminated"];
    std::string message = t.contains("message") && t["message"].is_string() ? t["message"].get<std::string>() : "";
    int code = t.contains("exitCode") && t["exitCode"].is_number_integer() ? t["exitCode"].get<int>() : -1;
    const std::string exited = "the agent exited with code " + std::to_string(code);
    if (message.empty())
      return PodAgentResult{InvalidArgument(exited + " without a result"), std::nullopt};
    // The kubelet cuts termination messages at 4096 bytes; a node's kubelet can still write
    // anything into its pods' status, so the limits are checked here, before parsing.
    if (auto refused = policy::CheckJsonShape(message, agent::kTerminationMessageLimits,
                                              "the termination message")) {
      return PodAgentResult{InvalidArgument(exited + ": " + refused->message), refused->limit};
    }
    auto r = agent::ParseAgentResult(message, agent::kTerminationMessageLimits);
    if (!r.ok()) {
      // FallbackToLogsOnError puts the log tail in the message when the agent wrote none.
      std::string tail = message.size() > 300 ? "..." + message.substr(message.size() - 300) : message;
      return PodAgentResult{InvalidArgument(exited + ": " + tail), std::nullopt};
    }
    return PodAgentResult{std::move(r), std::nullopt};
  }
  return std::nullopt;
}

CounterFamily& JobsCreatedCounter(Registry& metrics) {
  return metrics.AddCounter("kubeletpolicy_jobs_created_total", "Remediation and file-audit Jobs created, by type.",
                            {"type"});
}

json TransformJob(const json& job) {
  return KeepForCache(job, "batch/v1", "Job", {"conditions", "active", "succeeded", "failed", "startTime", "completionTime"});
}

json TransformPod(const json& pod) { return KeepForCache(pod, "v1", "Pod", {"phase", "containerStatuses"}); }

}  // namespace kpc::controller
