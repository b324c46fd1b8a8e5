#pragma once
// Finds the kubelet's files on a node:
//  1. the running kubelet under the proc root (the agent runs with hostPID). Any pod with hostPID
//     can run a process named "kubelet", so the name only makes a candidate; ChooseKubelet keeps
//     the one process that is in the host's mount namespace (PID 1's), runs the host's kubelet
//     executable (the file /proc/PID/exe leads to is the file at that path under the host root
//     or under PID 1's root), and is not in a pod's cgroup; one in a kubelet cgroup
//     (kubelet.service) is preferred over others. Several such processes are an error naming
//     each; none is a warning naming every rejected process and why, and detection goes on from
//     the files alone. The verified kubelet's command line gives --config, --kubeconfig,
//     --config-dir and the flags the kubelet really runs with;
//  2. the systemd unit kubelet.service and its drop-ins kubelet.service.d/*.conf, in
//     /etc/systemd/system, /lib/systemd/system, /usr/lib/systemd/system (a unit or drop-in of
//     the same name in an earlier directory masks the later ones; drop-ins apply sorted by name);
//  3. env files: those named by EnvironmentFile= in the units, then
//     /var/lib/kubelet/kubeadm-flags.env, /etc/default/kubelet, /etc/sysconfig/kubelet.
// Files are parsed with policy::ParseKubeletFlags; the config file and kubeconfig come from the
// process when found, else from the last --config/--kubeconfig the files set.
// Detected paths (the config file, kubeconfig, --config-dir, EnvironmentFile= files) must lie
// under the directories policy file rules may name (policy::AllowedFilePrefixes); one outside
// them is dropped with a warning, so nothing there is read or written. Paths given on the
// agent's command line (--config-file, --flags-file) are used as given.
// Everything read from /proc is bounded before it is parsed (the kMax*Bytes limits below).
// ChooseKubelet, SplitCmdline and FlagsFromCmdline are pure and thread-safe; DetectKubelet is not
// thread-safe (uses the HostFs).

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/host_fs.h"
#include "agent/result.h"
#include "base/status.h"
#include "policy/effective_config.h"

namespace kpc::agent {

// Limits on what is read from the proc root; a file over its limit makes the process
// unverifiable.
inline constexpr size_t kMaxCommBytes = 64;          // /proc/PID/comm
inline constexpr size_t kMaxCmdlineBytes = 1 << 20;  // /proc/PID/cmdline
inline constexpr size_t kMaxCgroupBytes = 64 << 10;  // /proc/PID/cgroup
inline constexpr size_t kMaxProcStatBytes = 4096;    // /proc/PID/stat
inline constexpr size_t kMaxExeLinkBytes = 4095;     // /proc/PID/exe (PATH_MAX - 1)
inline constexpr size_t kMaxNsLinkBytes = 64;        // /proc/PID/ns/mnt ("mnt:[4026531840]")
inline constexpr size_t kMaxKubeletCandidates = 64;  // processes named kubelet examined

// What the proc root says about one process named kubelet.
struct ProcessFacts {
  int pid = 0;
  int ppid = 0;  // 0: unknown
  std::string comm;
  std::string exe;  // the target of /proc/PID/exe: a path in the process's mount namespace
  std::optional<FileIdentity> exe_file;       // the file /proc/PID/exe leads to
  std::optional<FileIdentity> host_exe;       // the file at `exe` under the host root
  std::optional<FileIdentity> init_root_exe;  // the file at `exe` under PID 1's root
  std::string mnt_ns;                         // the target of /proc/PID/ns/mnt
  std::string cgroup;                         // /proc/PID/cgroup
  std::string cmdline;                        // /proc/PID/cmdline
  // The facts above that could not be read or were over their limit, each saying why.
  std::vector<std::string> unreadable;
};

// What the proc root says about the host itself.
struct HostProcFacts {
  std::string mnt_ns;   // the target of /proc/1/ns/mnt; empty when unknown
  std::string problem;  // why mnt_ns is unknown
};

struct Rejection {
  int pid = 0;
  std::string reason;
};

struct KubeletChoice {
  std::optional<int> pid;           // the verified kubelet; nullopt when no process passes
  std::vector<Rejection> rejected;  // the other candidates, with why
};

// Which candidate is the node's kubelet (rules in the header comment). Errors: several
// candidates pass (kConflict, naming each PID and what it passed).
// Pure; thread-safe.
StatusOr<KubeletChoice> ChooseKubelet(const std::vector<ProcessFacts>& candidates,
                                      const HostProcFacts& host);

struct Detection {
  KubeletFiles files;                              // node paths
  std::optional<int> pid;                          // the verified kubelet process, when found
  std::vector<policy::KubeletFlag> process_flags;  // its command line
  // Flags per flags file (node path), in kubelet order; only files that set a flag.
  std::map<std::string, std::vector<policy::KubeletFlag>> file_flags;
  // The kubelet's --config-dir (drop-in KubeletConfiguration files, *.conf in lexical order,
  // applied over --config) and its drop-ins (node paths); empty when not used.
  std::string config_dir;
  std::vector<std::string> config_dropins;
  // Files that could not be read or parsed, paths dropped, no verified kubelet process.
  std::vector<std::string> warnings;
};

struct DetectOptions {
  std::string proc_root = "/proc";
  // --flags-file: when not empty, these are the flags files (instead of the detected ones).
  std::vector<std::string> flags_files;
  // --config-file: overrides the detected config file.
  std::string config_file;
};

// Errors: several processes pass as the kubelet (ChooseKubelet), or more than
// kMaxKubeletCandidates processes are named kubelet (ResourceExhausted).
StatusOr<Detection> DetectKubelet(HostFs& fs, const DetectOptions& opts);

// The words of a /proc/PID/cmdline (NUL-separated argv, argv[0] included).
std::vector<std::string> SplitCmdline(const std::string& cmdline);

// The flags of a process command line (NUL-separated argv, argv[0] skipped).
std::vector<policy::KubeletFlag> FlagsFromCmdline(const std::string& cmdline,
                                                  const std::string& origin);

}  // namespace kpc::agent
