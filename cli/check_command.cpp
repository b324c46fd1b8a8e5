#include "cli/check_command.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "cli/check_flags.h"
#include "cli/report.h"
#include "controller/node_info.h"
#include "kube/client.h"
#include "policy/effective_config.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::cli {
namespace fs = std::filesystem;

namespace {

// Inputs larger than this are refused rather than read into memory.
constexpr uintmax_t kMaxInputBytes = 64ull << 20;

StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return InvalidArgument(path + ": no such file");
  if (fs::is_directory(st)) return InvalidArgument(path + ": is a directory, expected a file");
  auto size = fs::file_size(path, ec);
  if (!ec && size > kMaxInputBytes) {
    return InvalidArgument(path + ": file is too large (" + std::to_string(size) + " bytes; limit " +
                           std::to_string(kMaxInputBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path + ": cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct NodeInput {
  std::string name;
  policy::EffectiveConfig config;
  std::map<std::string, std::string> labels;  // live mode
  std::optional<int> kubelet_minor;           // live mode
  std::string error;                          // live mode: /configz could not be read
};

// Live mode: nodes and their /configz from the cluster; policies from the cluster when none
// were given as files.
StatusOr<std::vector<NodeInput>> LoadLive(const CheckFlags& o, std::vector<policy::SourcedPolicy>& policies,
                                          std::ostream& err) {
  auto cfg = kube::ResolveConfig(o.kubeconfig, o.context, false);
  if (!cfg.ok()) return cfg.status();
  RealClock clock;  // must outlive the client
  auto client = kube::NewClient(clock, *cfg);
  if (o.policies.empty()) {
    kube::Result r = client->Get("/apis/kubeletpolicy.io/v1alpha1/kubeletpolicies");
    if (!r.ok()) {
      std::string hint = r.status.code() == StatusCode::kNotFound
                             ? " (is the KubeletPolicy CRD installed? kubectl apply -k deploy/; or give --policy FILE)"
                             : "";
      return Status(r.status.code(), "listing KubeletPolicies: " + r.status.message() + hint);
    }
    for (const auto& item : r.body.value("items", nlohmann::json::array())) {
      auto parsed = policy::ParsePolicy(item);
      if (!parsed.policy) {
        std::string name = item.contains("metadata") ? item["metadata"].value("name", "?") : "?";
        err << "warning: KubeletPolicy " << name << " is invalid and was skipped: "
            << (parsed.errors.empty() ? "" : parsed.errors[0].field + ": " + parsed.errors[0].message) << "\n";
        continue;
      }
      policies.push_back({std::move(*parsed.policy), parsed.warnings, 0});
    }
    if (policies.empty()) return InvalidArgument("the cluster has no valid KubeletPolicy; give --policy FILE");
  }
  kube::Result r = client->Get("/api/v1/nodes");
  if (!r.ok()) return Status(r.status.code(), "listing nodes: " + r.status.message());
  std::vector<NodeInput> nodes;
  for (const auto& item : r.body.value("items", nlohmann::json::array())) {
    controller::NodeInfo info = controller::NodeInfoFromJson(item);
    NodeInput n;
    n.name = info.name;
    n.labels = info.labels;
    n.kubelet_minor = info.kubelet_minor;
    nodes.push_back(std::move(n));
  }
  // Fetch /configz with a few requests in flight.
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < nodes.size(); i = next++) {
        controller::ConfigzResult c = controller::FetchNodeConfigz(*client, nodes[i].name, std::chrono::seconds(10));
        auto cfg = c.ok && c.config ? StatusOr<policy::EffectiveConfig>(*c.config) : StatusOr<policy::EffectiveConfig>(InvalidArgument(c.message));
        if (cfg.ok()) nodes[i].config = std::move(*cfg);
        else nodes[i].error = cfg.status().message();
      }
    });
  }
  for (auto& t : pool) t.join();
  return nodes;
}

StatusOr<std::vector<NodeInput>> LoadConfigz(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) return InvalidArgument(path + ": directory holds no configz files");
  } else {
    files.push_back(path);
  }
  std::vector<NodeInput> nodes;
  std::string problems;
  for (const auto& f : files) {
    auto content = ReadFile(f);
    if (!content.ok()) {
      problems += content.status().message() + "\n";
      continue;
    }
    auto cfg = policy::EffectiveConfigFromConfigz(*content);
    if (!cfg.ok()) {
      problems += f + ": " + cfg.status().message() + "\n";
      continue;
    }
    NodeInput n;
    n.name = fs::path(f).stem().string();
    n.config = std::move(*cfg);
    nodes.push_back(std::move(n));
  }
  if (!problems.empty()) {
    problems.pop_back();
    return InvalidArgument(problems);
  }
  return nodes;
}

StatusOr<NodeInput> LoadFiles(const CheckFlags& o) {
  std::optional<nlohmann::json> file;
  if (!o.config_file.empty()) {
    auto content = ReadFile(o.config_file);
    if (!content.ok()) return content.status();
    auto parsed = policy::ParseKubeletConfigFile(*content, o.config_file);
    if (!parsed.ok()) return parsed.status();  // the message names the file (and line)
    file = std::move(*parsed);
  }
  std::vector<policy::KubeletFlag> flags;
  for (const auto& f : o.flags_files) {
    auto content = ReadFile(f);
    if (!content.ok()) return content.status();
    auto parsed = policy::ParseKubeletFlags(*content, f);
    if (!parsed.ok()) return parsed.status();
    flags.insert(flags.end(), parsed->begin(), parsed->end());
  }
  auto cfg = policy::ComputeEffectiveConfig(file, flags);
  if (!cfg.ok()) return cfg.status();
  std::string name = o.node;
  if (name.empty()) name = fs::path(o.config_file.empty() ? o.flags_files.front() : o.config_file).stem().string();
  NodeInput n;
  n.name = name;
  n.config = std::move(*cfg);
  return n;
}

// The policies of --policy, parsed; their warnings go to `err`.
StatusOr<std::vector<policy::SourcedPolicy>> LoadPolicies(const CheckFlags& o, std::ostream& err) {
  std::vector<policy::SourcedPolicy> policies;
  std::string problems;
  for (const auto& f : o.policies) {
    auto content = ReadFile(f);
    if (!content.ok()) {
      problems += "\n" + content.status().message();
      continue;
    }
    auto parsed = policy::ParsePolicies(*content, f);
    if (!parsed.ok()) {
      problems += "\n" + parsed.status().message();
      continue;
    }
    for (auto& p : *parsed) {
      for (const auto& w : p.warnings) {
        err << "warning: " << f << ":" << w.line << ": " << w.field << ": " << w.message << "\n";
      }
      policies.push_back(std::move(p));
    }
  }
  std::map<std::string, std::string> seen_names;
  for (const auto& p : policies) {
    if (!seen_names.emplace(p.policy.name, "").second) {
      problems += "\npolicy name \"" + p.policy.name + "\" appears more than once";
    }
  }
  if (!problems.empty()) return InvalidArgument("invalid policy input:" + problems);
  return policies;
}

// The nodes to evaluate, from the cluster, /configz files or a node's files. In live mode
// without --policy, the cluster's policies are added to `policies`.
StatusOr<std::vector<NodeInput>> LoadNodes(const CheckFlags& o, std::vector<policy::SourcedPolicy>& policies,
                                           std::ostream& err) {
  if (o.live) return LoadLive(o, policies, err);
  if (!o.configz.empty()) {
    auto loaded = LoadConfigz(o.configz);
    if (!loaded.ok()) return InvalidArgument("invalid configz input:\n" + loaded.status().message());
    return loaded;
  }
  auto loaded = LoadFiles(o);
  if (!loaded.ok()) return loaded.status();
  for (const auto& w : loaded->config.warnings) err << "warning: " << w << "\n";
  std::vector<NodeInput> nodes;
  nodes.push_back(std::move(*loaded));
  return nodes;
}

// Every rule of every policy on every node it selects. Pure.
CheckReport BuildReport(const CheckFlags& o, const std::vector<policy::SourcedPolicy>& policies,
                        const std::vector<NodeInput>& nodes, int64_t now_unix) {
  CheckReport report;
  report.nodes = static_cast<int>(nodes.size());
  for (const auto& sp : policies) {
    const auto& pol = sp.policy;
    int selected = 0;
    for (const auto& n : nodes) {
      const auto& labels = o.live ? n.labels : o.node_labels;
      // Offline the user picked the node and the policy; selectors apply once labels are known.
      if ((o.live || o.labels_given) && !pol.node_selector.Matches(labels)) continue;
      ++selected;
      if (!n.error.empty()) {
        for (const auto& rule : pol.rules) {
          policy::RuleEvaluation ev;
          ev.rule_id = rule.id;
          ev.result = policy::RuleResult::kError;
          ev.message = n.error;
          report.rows.push_back({n.name, pol.name, rule.id, rule.severity, ev});
        }
        continue;
      }
      policy::NodeFacts facts;
      facts.name = n.name;
      facts.labels = labels;
      facts.kubelet_minor = o.live ? n.kubelet_minor : o.kubelet_minor;
      auto eval = policy::EvaluateNode(pol, facts, n.config, now_unix);
      for (size_t i = 0; i < eval.rules.size(); ++i) {
        report.rows.push_back({n.name, pol.name, pol.rules[i].id, pol.rules[i].severity, eval.rules[i]});
      }
    }
    if (selected == 0) {
      report.notes.push_back("policy " + pol.name + " selects no node: its nodeSelector matches none of the " +
                             (o.live ? std::string("cluster's nodes") : std::string("labels given with --node-labels")));
    }
    if (pol.suspend) report.notes.push_back("policy " + pol.name + " is suspended; checked anyway");
  }
  return report;
}

}  // namespace

int RunCheck(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, int64_t now_unix,
             bool is_terminal) {
  auto line = ParseCheckFlags(args);
  if (!line.ok()) return ReportUsageError(err, line.status(), "kubelet-policy-controller check");
  if (line->help) {
    out << *line->help;
    return 0;
  }
  const CheckFlags& o = line->flags;
  auto policies = LoadPolicies(o, err);
  if (!policies.ok()) {
    err << "error: " << policies.status().message() << "\n";
    return 2;
  }
  auto nodes = LoadNodes(o, *policies, err);
  if (!nodes.ok()) {
    err << "error: " << nodes.status().message() << "\n";
    return 2;
  }
  const CheckReport report = BuildReport(o, *policies, *nodes, now_unix);
  if (o.output == "json") {
    out << report.ToJson().dump(2) << "\n";
  } else {
    PrintTable(report, out, o.color == "always" || (o.color == "auto" && is_terminal));
  }
  return report.AnyFailure() ? 1 : 0;
}

}  // namespace kpc::cli
