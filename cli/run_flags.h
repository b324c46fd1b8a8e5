#pragma once
// The flags of `kubelet-policy-controller run`: their values, how they are read (CLI11, the
// rules of cli/command_line.h), and the checks across flags. Reading the environment is the
// only side effect: POD_NAMESPACE is the default of --leader-elect-namespace and
// --webhook-namespace, AGENT_IMAGE of --agent-image. Not thread-safe (getenv).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/command_line.h"

namespace kpc::cli {

// Defaults are the documented ones (README "The operator: `run`", `run --help`).
struct RunFlags {
  // Kubernetes connection
  std::string kubeconfig;
  std::string context;
  bool allow_insecure = false;
  double qps = 50;
  int burst = 100;
  // Configz checks
  int workers = 2;
  int configz_concurrency = 10;
  double configz_qps = 40;
  int64_t configz_timeout_ns = 10'000'000'000;
  // Kubelet connection
  std::string configz_source = "kubelet";  // or "apiserver-proxy"
  std::string kubelet_address_types = "InternalIP,ExternalIP,Hostname";
  std::string kubelet_ca_file;  // empty: the API server's CA
  bool kubelet_insecure_tls = false;
  std::string kubelet_client_service_account = "kubelet-policy-controller-kubelet-client";
  // Leader election
  bool leader_elect = true;
  std::string lease_namespace = "kube-system";
  std::string lease_name = "kubelet-policy-controller";
  int64_t lease_duration_ns = 15'000'000'000;
  int64_t renew_deadline_ns = 10'000'000'000;
  int64_t retry_period_ns = 2'000'000'000;
  // Health and metrics
  std::string health_addr = ":8081";
  std::string metrics_addr = ":8080";
  // Admission webhooks
  std::string webhook_addr = ":9443";              // empty: no webhook server
  std::string webhook_cert_mode = "self-managed";  // or "cert-manager"
  std::string webhook_cert_dir = "/var/run/kubelet-policy-controller/webhook-certs";
  bool local_webhooks = false;
  std::string webhook_namespace = "kubelet-policy-system";
  std::string webhook_service = "kubelet-policy-controller-webhook";
  std::string webhook_secret = "kubelet-policy-controller-webhook-tls";
  std::string webhook_configuration = "kubelet-policy-controller";
  int64_t webhook_ca_validity_ns = 87600LL * 3600 * 1'000'000'000;
  int64_t webhook_cert_validity_ns = 8760LL * 3600 * 1'000'000'000;
  int64_t webhook_sync_period_ns = 10'000'000'000;
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
  // Logging
  std::string log_format = "text";
  std::string log_level = "info";
};

// Adds every `run` flag to `app`, bound to the fields of `flags` (whose current values are
// the defaults shown in --help), in its help group. Each flag checks its own value.
void AddRunFlags(CLI::App& app, RunFlags& flags);

// The checks that involve more than one flag. Pure.
Status ValidateRunFlags(const RunFlags& flags);

// The port of --webhook-addr that --local-webhooks serves on 127.0.0.1: the digits after the
// last ':' (or the whole text without one); nullopt when that is not a fixed port. Pure.
std::optional<std::string> LocalWebhookPort(const std::string& webhook_addr);

// `args` are the words after "run". Returns the flags (checked), the help text, or an
// InvalidArgument status naming the flag.
StatusOr<CommandLine<RunFlags>> ParseRunFlags(const std::vector<std::string>& args);

}  // namespace kpc::cli
