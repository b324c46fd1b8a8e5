#include "cli/check_command.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "base/clock.h"
#include "controller/node_info.h"
#include "cli/report.h"
#include "kube/client.h"
#include "policy/effective_config.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::cli {
namespace fs = std::filesystem;

namespace {

// Inputs larger than this are refused rather than read into memory.
constexpr uintmax_t kMaxInputBytes = 64ull << 20;

struct Options {
  std::vector<std::string> policies;
  std::string configz;
  std::string config_file;
  std::vector<std::string> flags_files;
  std::string node;
  std::string output = "table";
  std::map<std::string, std::string> node_labels;
  bool labels_given = false;
  std::optional<int> kubelet_minor;
  std::string color = "auto";
  std::string kubeconfig;  // live mode
  std::string context;
  bool live = false;
};

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

std::optional<int> ParseMinor(const std::string& v) {
  // "v1.30.2", "1.30", "30"
  std::string s = v;
  if (!s.empty() && s[0] == 'v') s.erase(0, 1);
  auto dot = s.find('.');
  try {
    if (dot == std::string::npos) return std::stoi(s);
    auto rest = s.substr(dot + 1);
    return std::stoi(rest.substr(0, rest.find('.')));
  } catch (...) {
    return std::nullopt;
  }
}

StatusOr<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_inline = true;
      }
    }
    auto next = [&]() -> StatusOr<std::string> {
      if (has_inline) return value;
      if (i + 1 >= args.size()) return InvalidArgument(a + " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") return Status(StatusCode::kNotFound, "help");
    std::string* single = nullptr;
    if (a == "--policy" || a == "-p") {
      auto v = next();
      if (!v.ok()) return v.status();
      o.policies.push_back(*v);
      continue;
    }
    if (a == "--flags-file") {
      auto v = next();
      if (!v.ok()) return v.status();
      o.flags_files.push_back(*v);
      continue;
    }
    if (a == "--node-labels") {
      auto v = next();
      if (!v.ok()) return v.status();
      o.labels_given = true;
      std::stringstream ss(*v);
      std::string kv;
      while (std::getline(ss, kv, ',')) {
        if (kv.empty()) continue;
        auto eq = kv.find('=');
        if (eq == std::string::npos) o.node_labels[kv] = "";
        else o.node_labels[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      continue;
    }
    if (a == "--kubelet-version") {
      auto v = next();
      if (!v.ok()) return v.status();
      o.kubelet_minor = ParseMinor(*v);
      if (!o.kubelet_minor) return InvalidArgument("--kubelet-version: \"" + *v + "\" is not a version like v1.30.2");
      continue;
    }
    if (a == "--kubeconfig") {
      auto v = next();
      if (!v.ok()) return v.status();
      o.kubeconfig = *v;
      o.live = true;
      continue;
    }
    if (a == "--live") {
      o.live = true;
      continue;
    }
    if (a == "--configz") single = &o.configz;
    else if (a == "--context") single = &o.context;
    else if (a == "--config-file") single = &o.config_file;
    else if (a == "--node") single = &o.node;
    else if (a == "--output" || a == "-o") single = &o.output;
    else if (a == "--color") single = &o.color;
    else return InvalidArgument("unknown argument \"" + args[i] + "\"");
    auto v = next();
    if (!v.ok()) return v.status();
    *single = *v;
  }
  if (o.live) {
    if (!o.configz.empty() || !o.config_file.empty() || !o.flags_files.empty() || !o.node.empty() || o.labels_given) {
      return InvalidArgument("with --kubeconfig (live mode) nodes, labels and configz come from the cluster: "
                             "drop --configz, --config-file, --flags-file, --node and --node-labels");
    }
    if (o.output != "table" && o.output != "json") {
      return InvalidArgument("--output must be table or json, got \"" + o.output + "\"");
    }
    return o;
  }
  if (o.policies.empty()) return InvalidArgument("--policy FILE is required (one or more)");
  if (o.output != "table" && o.output != "json") {
    return InvalidArgument("--output must be table or json, got \"" + o.output + "\"");
  }
  if (o.color != "auto" && o.color != "always" && o.color != "never") {
    return InvalidArgument("--color must be auto, always or never");
  }
  bool file_mode = !o.config_file.empty() || !o.flags_files.empty();
  if (!o.configz.empty() && file_mode) {
    return InvalidArgument("use either --configz or --config-file/--flags-file, not both");
  }
  if (o.configz.empty() && !file_mode) {
    return InvalidArgument("give the node configuration: --configz PATH, or --config-file FILE and/or --flags-file FILE");
  }
  if (!o.configz.empty() && !o.node.empty()) {
    return InvalidArgument("--node is for --config-file/--flags-file; with --configz the node name is the file name");
  }
  return o;
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
StatusOr<std::vector<NodeInput>> LoadLive(const Options& o, std::vector<policy::SourcedPolicy>& policies,
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

StatusOr<NodeInput> LoadFiles(const Options& o) {
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

}  // namespace

std::string CheckUsage() {
  return R"(Usage:
  kubelet-policy-controller check --policy FILE... --configz PATH [options]
  kubelet-policy-controller check --policy FILE... [--config-file FILE] [--flags-file FILE...] [--node NAME] [options]
  kubelet-policy-controller check --kubeconfig FILE [--policy FILE...] [options]

Evaluates KubeletPolicy files against kubelet configurations, offline.

Inputs:
  --policy, -p FILE     KubeletPolicy YAML/JSON (one object, a multi-document stream, or a List); repeatable
  --configz PATH        a /configz response ({"kubeletconfig": {...}}) or a directory of them;
                        each file is one node, named after the file (without extension)
  --config-file FILE    the kubelet's --config file (KubeletConfiguration, JSON or YAML)
  --flags-file FILE     a file carrying kubelet flags: systemd unit or drop-in, env file
                        (KUBELET_ARGS=..., KUBELET_FLAGS=...), or plain flags; repeatable, later wins
  --node NAME           node name to report (default: the config or flags file name)
  --node-labels K=V,... labels of the node: policies whose nodeSelector does not select them are
                        skipped, and exceptions match on them (default: no labels, every
                        policy applies)
  --kubelet-version V   kubelet version (e.g. v1.30.2), for feature-gate defaults

Live mode:
  --kubeconfig FILE     read nodes (labels, kubelet version) and each node's /configz from the
                        cluster; policies from --policy files, or all KubeletPolicies of the
                        cluster when no --policy is given. "--live" uses $KUBECONFIG or in-cluster
  --context NAME        kubeconfig context

Output:
  --output, -o FORMAT   table (default) or json
  --color WHEN          auto (default), always or never

Value sources: an absent /configz field is its zero value (configz omits zero values); in
config-file mode the kubelet's own defaulting applies, then flags override the file.
Exit status: 0 no rule fails, 1 a rule fails or could not be evaluated, 2 invalid input.
)";
}

int RunCheck(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             int64_t now_unix, bool is_terminal) {
  auto opts = ParseArgs(args);
  if (!opts.ok()) {
    if (opts.status().code() == StatusCode::kNotFound) {
      out << CheckUsage();
      return 0;
    }
    err << "error: " << opts.status().message() << "\n\nRun 'kubelet-policy-controller check --help' for usage.\n";
    return 2;
  }
  const Options& o = *opts;

  std::vector<policy::SourcedPolicy> policies;
  std::string problems;
  for (const auto& f : o.policies) {
    auto content = ReadFile(f);
    if (!content.ok()) {
      problems += content.status().message() + "\n";
      continue;
    }
    auto parsed = policy::ParsePolicies(*content, f);
    if (!parsed.ok()) {
      problems += parsed.status().message() + "\n";
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
      problems += "policy name \"" + p.policy.name + "\" appears more than once\n";
    }
  }
  if (!problems.empty()) {
    err << "error: invalid policy input:\n" << problems;
    return 2;
  }

  std::vector<NodeInput> nodes;
  if (o.live) {
    auto loaded = LoadLive(o, policies, err);
    if (!loaded.ok()) {
      err << "error: " << loaded.status().message() << "\n";
      return 2;
    }
    nodes = std::move(*loaded);
  } else if (!o.configz.empty()) {
    auto loaded = LoadConfigz(o.configz);
    if (!loaded.ok()) {
      err << "error: invalid configz input:\n" << loaded.status().message() << "\n";
      return 2;
    }
    nodes = std::move(*loaded);
  } else {
    auto loaded = LoadFiles(o);
    if (!loaded.ok()) {
      err << "error: " << loaded.status().message() << "\n";
      return 2;
    }
    for (const auto& w : loaded->config.warnings) err << "warning: " << w << "\n";
    nodes.push_back(std::move(*loaded));
  }

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

  if (o.output == "json") {
    out << report.ToJson().dump(2) << "\n";
  } else {
    bool color = o.color == "always" || (o.color == "auto" && is_terminal);
    PrintTable(report, out, color);
  }
  return report.AnyFailure() ? 1 : 0;
}

}  // namespace kpc::cli
