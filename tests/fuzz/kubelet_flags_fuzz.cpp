// Fuzz target: where the kubelet's flags are read from: flags files (systemd units and
// drop-ins, env files, plain flag files: policy::ParseKubeletFlags), a process command line
// (agent::FlagsFromCmdline) and the detection of the kubelet's files on a node
// (agent::DetectKubelet, reading a unit drop-in or env file made of the input), and the
// effective configuration computed from the flags.
// Properties: no crash, sanitizer report or escaping exception; every flag has a name and an
// origin in the file; a command line reads the same flags whether its words are quoted with
// '...' (as FlagsFromCmdline does) or "..." (for words without CR or LF, which a command line
// may hold but a flags file cannot); every path detection returns is a valid node path, and
// the flags files it names exist under the host root.
// Input: file content, or NUL-separated argv [NUL choices: what to parse].

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/detect.h"
#include "agent/host_fs.h"
#include "policy/effective_config.h"
#include "policy/model.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/temp_tree.h"

namespace {

namespace agent = kpc::agent;
namespace policy = kpc::policy;

const char* const kFileNames[] = {
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/lib/systemd/system/kubelet.service",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/default/kubelet",
    "/var/snap/microk8s/current/args/kubelet",
};

std::string Flags(const std::vector<policy::KubeletFlag>& flags) {
  std::string out;
  for (const auto& f : flags) out += " [" + f.name + (f.value ? "=" + *f.value : "") + "]";
  return out;
}

bool SameFlags(const std::vector<policy::KubeletFlag>& a,
               const std::vector<policy::KubeletFlag>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  }
  return true;
}

void ParseFile(std::string_view text, const std::string& name) {
  auto flags = policy::ParseKubeletFlags(text, name);
  if (!flags.ok()) {
    FUZZ_CHECK(flags.status().code() == kpc::StatusCode::kInvalidArgument,
               flags.status().message());
    return;
  }
  for (const auto& f : *flags) {
    FUZZ_CHECK(!f.name.empty(), Flags(*flags));
    FUZZ_CHECK(f.origin.rfind(name + ":", 0) == 0, f.origin);
  }
  for (const std::optional<nlohmann::json>& file :
       {std::optional<nlohmann::json>(), std::optional<nlohmann::json>(nlohmann::json::object())}) {
    auto config = policy::ComputeEffectiveConfig(file, *flags);
    if (config.ok()) FUZZ_CHECK(config->config.is_object(), Flags(*flags));
  }
}

std::string DoubleQuoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
    out += c;
  }
  return out + "\"";
}

void ParseCmdline(std::string_view text) {
  const std::string cmdline(text);
  auto flags = agent::FlagsFromCmdline(cmdline, "cmdline");
  // The same words, double-quoted, one line.
  const std::vector<std::string> argv = agent::SplitCmdline(cmdline);
  std::string line;
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].find_first_of("\r\n") != std::string::npos) return;
    line += (i > 1 ? " " : "") + DoubleQuoted(argv[i]);
  }
  auto again = policy::ParseKubeletFlags(line, "cmdline");
  FUZZ_CHECK(again.ok() && SameFlags(flags, *again),
             "single-quoted:" + Flags(flags) + "\ndouble-quoted:" +
                 (again.ok() ? Flags(*again) : again.status().message()) + "\nline: " + line);
}

void Detect(std::string_view text, uint8_t choice) {
  const std::string& scratch = kpc::fuzz::ScratchDir();
  static const std::string root = scratch + "/host", proc = scratch + "/proc";
  static const bool made = [] {
    ::mkdir(proc.c_str(), 0755);
    ::mkdir(root.c_str(), 0755);
    kpc::fuzz::WriteTreeFile(root, "lib/systemd/system/kubelet.service",
                             "[Service]\nEnvironmentFile=-/etc/default/kubelet\n"
                             "ExecStart=/usr/bin/kubelet $KUBELET_ARGS\n");
    kpc::fuzz::WriteTreeFile(root, "etc/kubernetes/kubelet.conf.d/00-defaults.conf", "{}\n");
    return true;
  }();
  (void)made;
  const char* rel = choice % 2 == 0 ? "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
                                    : "etc/default/kubelet";
  FUZZ_CHECK(kpc::fuzz::WriteTreeFile(root, rel, text), "cannot write the host tree");
  agent::HostFs fs(root);
  agent::DetectOptions opts;
  opts.proc_root = proc;
  // No process in the scratch proc root: detection falls back to the files, never refuses.
  auto detected = agent::DetectKubelet(fs, opts);
  FUZZ_CHECK(detected.ok(), detected.status().message());
  const agent::Detection& d = *detected;
  auto valid = [](const std::string& p) { return agent::ValidateNodePath(p).ok(); };
  // Detected paths are used only under the allowed roots of policy file paths.
  auto allowed = [&](const std::string& p) {
    return valid(p) && policy::UnderAllowedFilePrefix(p);
  };
  FUZZ_CHECK(d.files.config_file.empty() || allowed(d.files.config_file), d.files.config_file);
  FUZZ_CHECK(d.files.kubeconfig.empty() || allowed(d.files.kubeconfig), d.files.kubeconfig);
  for (const std::string& f : d.files.flags_files) FUZZ_CHECK(valid(f) && fs.Exists(f), f);
  for (const std::string& f : d.files.service_files) FUZZ_CHECK(valid(f) && fs.Exists(f), f);
  for (const std::string& f : d.config_dropins) FUZZ_CHECK(valid(f), f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const uint8_t what = in.Byte();
  const std::string_view text = in.text();
  switch (what % 8) {
    case 5:
      ParseCmdline(text);
      break;
    case 6:
      Detect(text, in.Byte());
      break;
    default:
      ParseFile(text, kFileNames[what % 5]);
      break;
  }
  return 0;
}
