#pragma once
// Finds the kubelet's files on a node:
//  1. a running process whose comm is "kubelet" under the proc root (the agent runs with
//     hostPID): its command line gives --config and --kubeconfig, and the flags the kubelet
//     really runs with;
//  2. the systemd unit kubelet.service and its drop-ins kubelet.service.d/*.conf, in
//     /etc/systemd/system, /lib/systemd/system, /usr/lib/systemd/system (a unit or drop-in of
//     the same name in an earlier directory masks the later ones; drop-ins apply sorted by name);
//  3. env files: those named by EnvironmentFile= in the units, then
//     /var/lib/kubelet/kubeadm-flags.env, /etc/default/kubelet, /etc/sysconfig/kubelet.
// Files are parsed with policy::ParseKubeletFlags; the config file and kubeconfig come from the
// process when found, else from the last --config/--kubeconfig the files set.
// Not thread-safe (uses the HostFs).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/host_fs.h"
#include "agent/result.h"
#include "policy/effective_config.h"

namespace kpc::agent {

struct Detection {
  KubeletFiles files;                              // node paths
  std::optional<int> pid;                          // the kubelet process, when found
  std::vector<policy::KubeletFlag> process_flags;  // its command line
  // Flags per flags file (node path), in kubelet order; only files that set a flag.
  std::map<std::string, std::vector<policy::KubeletFlag>> file_flags;
  // The kubelet's --config-dir (drop-in KubeletConfiguration files, *.conf in lexical order,
  // applied over --config) and its drop-ins (node paths); empty when not used.
  std::string config_dir;
  std::vector<std::string> config_dropins;
  std::vector<std::string> warnings;  // files that could not be read or parsed
};

struct DetectOptions {
  std::string proc_root = "/proc";
  // --flags-file: when not empty, these are the flags files (instead of the detected ones).
  std::vector<std::string> flags_files;
  // --config-file: overrides the detected config file.
  std::string config_file;
};

Detection DetectKubelet(HostFs& fs, const DetectOptions& opts);

// The flags of a process command line (NUL-separated argv, argv[0] skipped).
std::vector<policy::KubeletFlag> FlagsFromCmdline(const std::string& cmdline,
                                                  const std::string& origin);

}  // namespace kpc::agent
