#pragma once
// The flags of `kubelet-policy-controller run`: their values, how they are read (CLI11, the
// rules of cli/command_line.h), and the checks across flags. The connection, leader election,
// health/metrics and logging groups are cli/common_flags.h's, shared with `webhook`. Reading
// the environment is the only side effect: POD_NAMESPACE is the default of
// --leader-elect-namespace, AGENT_IMAGE of --agent-image. Not thread-safe (getenv).

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/command_line.h"
#include "cli/common_flags.h"

namespace kpc::cli {

// Defaults are the documented ones (README "The operator: `run`", `run --help`).
struct RunFlags {
  ConnectionFlags connection;
  // Configz checks
  int workers = 2;
  int configz_concurrency = 10;
  double configz_qps = 40;
  int64_t configz_timeout_ns = 10'000'000'000;
  int64_t configz_max_bytes = 4 << 20;  // of each /configz answer, read while it arrives
  // Kubelet connection
  std::string configz_source = "kubelet";  // or "apiserver-proxy"
  std::string kubelet_address_types = "InternalIP,ExternalIP,Hostname";
  std::string kubelet_ca_file;  // empty: the API server's CA
  bool kubelet_insecure_tls = false;
  std::string kubelet_client_service_account = "kubelet-policy-controller-kubelet-client";
  LeaderElectionFlags election{.lease_name = "kubelet-policy-controller"};
  ServingFlags serving;
  // Agent Jobs (remediation and file audits)
  std::string remediation_namespace = "kubelet-policy-remediation";
  std::string agent_image;  // empty: the controller's default image
  std::string agent_image_pull_policy = "IfNotPresent";
  std::vector<std::string> extra_host_paths;
  // Remediation
  std::string restart_command;  // argv separated by spaces; empty: the agent's default
  int64_t job_ttl_ns = 24LL * 3600 * 1'000'000'000;
  // File audits
  int64_t file_audit_interval_ns = 3600LL * 1'000'000'000;
  double file_audit_qps = 5;
  LoggingFlags logging;
};

// Adds every `run` flag to `app`, bound to the fields of `flags` (whose current values are
// the defaults shown in --help), in its help group. Each flag checks its own value. The
// admission-server flags (cli/webhook_flags.h) are hidden options here whose every use is an
// error saying they moved to `kubelet-policy-controller webhook`.
void AddRunFlags(CLI::App& app, RunFlags& flags);

// The checks that involve more than one flag. Pure.
Status ValidateRunFlags(const RunFlags& flags);

// `args` are the words after "run". Returns the flags (checked), the help text, or an
// InvalidArgument status naming the flag.
StatusOr<CommandLine<RunFlags>> ParseRunFlags(const std::vector<std::string>& args);

}  // namespace kpc::cli
