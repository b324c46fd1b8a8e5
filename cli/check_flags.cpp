#include "cli/check_flags.h"

#include <CLI/CLI.hpp>
#include <sstream>

namespace kpc::cli {
namespace {

constexpr std::size_t kHelpColumn = 24;

constexpr const char* kUsage = R"(Usage:
  kubelet-policy-controller check --policy FILE... --configz PATH [options]
  kubelet-policy-controller check --policy FILE... [--config-file FILE] [--flags-file FILE...] [--node NAME] [options]
  kubelet-policy-controller check --kubeconfig FILE [--policy FILE...] [options]

Evaluates KubeletPolicy files against kubelet configurations: offline from files, or live
from a cluster.
)";

constexpr const char* kFooter =
    "Value sources: an absent /configz field is its zero value (configz omits zero values); in\n"
    "config-file mode the kubelet's own defaulting applies, then flags override the file.\n"
    "Exit status: 0 no rule fails, 1 a rule fails or could not be evaluated, 2 invalid input.";

// "v1.30.2", "1.30", "30" -> 30
std::optional<int> ParseMinor(const std::string& v) {
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

// "k=v,k2=v2,k3" into `labels` (k3 with an empty value).
void MergeLabels(const std::string& text, std::map<std::string, std::string>& labels) {
  std::stringstream ss(text);
  std::string kv;
  while (std::getline(ss, kv, ',')) {
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      labels[kv] = "";
    else
      labels[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
}

void AddInputFlags(CLI::App& app, CheckFlags& f) {
  app.option_defaults()->group("Inputs");
  AddRepeated(app, "--policy,-p", f.policies, "FILE",
              "KubeletPolicy YAML/JSON (one object, a multi-document stream, or a List)");
  AddText(app, "--configz", f.configz, "PATH",
          "a /configz response ({\"kubeletconfig\": {...}}) or a directory of them;\n"
          "each file is one node, named after the file (without extension)");
  AddText(app, "--config-file", f.config_file, "FILE",
          "the kubelet's --config file (KubeletConfiguration, JSON or YAML)");
  AddRepeated(app, "--flags-file", f.flags_files, "FILE",
              "a file carrying kubelet flags: systemd unit or drop-in, env file\n"
              "(KUBELET_ARGS=..., KUBELET_FLAGS=...), or plain flags; later files win");
  AddText(app, "--node", f.node, "NAME",
          "node name to report (default: the config or flags file name)");
  app.add_option("--node-labels", CLI::callback_t{},
                 "labels of the node: policies whose nodeSelector does not select them\n"
                 "are skipped, and exceptions match on them; without it every policy\n"
                 "applies")
      ->option_text("K=V,...")
      ->type_name("K=V,...")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false)
      ->each([&f](const std::string& v) {
        f.labels_given = true;
        MergeLabels(v, f.node_labels);
      });
  app.add_option("--kubelet-version", CLI::callback_t{},
                 "kubelet version (e.g. v1.30.2), for feature-gate defaults")
      ->option_text("V")
      ->type_name("V")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return ParseMinor(v) ? "" : "\"" + v + "\" is not a version like v1.30.2";
          },
          ""))
      ->each([&f](const std::string& v) { f.kubelet_minor = ParseMinor(v); });
}

void AddLiveFlags(CLI::App& app, CheckFlags& f) {
  app.option_defaults()->group("Live mode");
  // Callbacks run in the order options are added: --kubeconfig after --live, so that it
  // turns live mode on whatever --live says.
  AddBool(app, "--live", f.live,
          "read nodes (labels, kubelet version) and each node's /configz from\n"
          "the cluster ($KUBECONFIG or in-cluster); policies from --policy files,\n"
          "or all KubeletPolicies of the cluster when no --policy is given");
  AddText(app, "--kubeconfig", f.kubeconfig, "FILE", "--live with this kubeconfig")
      ->each([&f](const std::string&) { f.live = true; });
  AddText(app, "--context", f.context, "NAME", "kubeconfig context");
}

void AddOutputFlags(CLI::App& app, CheckFlags& f) {
  app.option_defaults()->group("Output");
  AddChoice(app, "--output,-o", f.output, "FORMAT", {"table", "json"}, "table or json");
  AddChoice(app, "--color", f.color, "WHEN", {"auto", "always", "never"}, "auto, always or never");
}

}  // namespace

void AddCheckFlags(CLI::App& app, CheckFlags& f) {
  AddInputFlags(app, f);
  AddLiveFlags(app, f);
  AddOutputFlags(app, f);
}

Status ValidateCheckFlags(const CheckFlags& f) {
  if (f.live) {
    if (!f.configz.empty() || !f.config_file.empty() || !f.flags_files.empty() || !f.node.empty() ||
        f.labels_given) {
      return InvalidArgument(
          "with --kubeconfig (live mode) nodes, labels and configz come from the cluster: "
          "drop --configz, --config-file, --flags-file, --node and --node-labels");
    }
    return Status::Ok();
  }
  if (f.policies.empty()) return InvalidArgument("--policy FILE is required (one or more)");
  const bool file_mode = !f.config_file.empty() || !f.flags_files.empty();
  if (!f.configz.empty() && file_mode) {
    return InvalidArgument("use either --configz or --config-file/--flags-file, not both");
  }
  if (f.configz.empty() && !file_mode) {
    return InvalidArgument(
        "give the node configuration: --configz PATH, or --config-file FILE and/or --flags-file "
        "FILE");
  }
  if (!f.configz.empty() && !f.node.empty()) {
    return InvalidArgument(
        "--node is for --config-file/--flags-file; with --configz the node name is the file name");
  }
  return Status::Ok();
}

StatusOr<CommandLine<CheckFlags>> ParseCheckFlags(const std::vector<std::string>& args) {
  return ReadFlags<CheckFlags>({kUsage, kFooter, kHelpColumn}, args, AddCheckFlags,
                               ValidateCheckFlags);
}

}  // namespace kpc::cli
