#include "cli/run_flags.h"

#include <CLI/CLI.hpp>
#include <sstream>

#include "cli/webhook_flags.h"
#include "controller/configz_source.h"
#include "controller/remediation.h"

namespace kpc::cli {
namespace {

constexpr std::size_t kHelpColumn = 42;
constexpr const char* kWebhookCommand = "kubelet-policy-controller webhook";

constexpr const char* kUsage = R"(Usage:
  kubelet-policy-controller run [flags]

Runs the operator: watches KubeletPolicy objects and Nodes, reads every selected node's
/configz from its kubelet (or through the API server), and writes status, Events and metrics. The admission webhooks are served by
`kubelet-policy-controller webhook`, a process of their own.
)";

void AddConfigzFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Configz checks");
  AddPositiveInt(app, "--workers", f.workers, "policies reconciled in parallel");
  AddPositiveInt(app, "--configz-concurrency", f.configz_concurrency,
                 "/configz fetches in flight at once");
  AddPositiveNumber(app, "--configz-qps", f.configz_qps,
                    "/configz fetches started per second; with apiserver-proxy at\n"
                    "most --kube-api-qps");
  AddDuration(app, "--configz-timeout", f.configz_timeout_ns, "per-fetch timeout");
  AddByteSize(app, "--configz-max-bytes", f.configz_max_bytes, 64 << 10, 64 << 20,
              "largest /configz answer read; a larger one stops the read and\n"
              "makes the node Unknown (TooLarge)");
}

void AddKubeletFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Kubelet connection (where /configz is read)");
  AddChoice(app, "--configz-source", f.configz_source, "SOURCE", {"kubelet", "apiserver-proxy"},
            "kubelet: GET https://NODE:PORT/configz on each kubelet, authorized\n"
            "as `get nodes/configz`.\n"
            "apiserver-proxy: through the API server's node proxy, which needs\n"
            "`get nodes/proxy` (exec-equivalent: opt in only for kubelets older\n"
            "than 1.33 or without Webhook authorization)");
  AddText(app, "--kubelet-preferred-address-types", f.kubelet_address_types, "TYPES",
          "the node address to call, first type that the Node has; DNS names\n"
          "resolved by the system resolver")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            auto types = controller::ParseAddressTypes(v);
            return types.ok() ? "" : types.status().message();
          },
          ""));
  AddText(app, "--kubelet-certificate-authority", f.kubelet_ca_file, "FILE",
          "CA bundle that signs kubelet serving certificates (default: the API\n"
          "server's CA, which signs them with serverTLSBootstrap)");
  AddBool(app, "--kubelet-insecure-tls", f.kubelet_insecure_tls,
          "do not verify kubelet serving certificates (self-signed ones); the\n"
          "bearer token then goes to whatever answers at a node's address");
  AddText(app, "--kubelet-client-service-account", f.kubelet_client_service_account, "SA",
          "[NAMESPACE/]NAME of the ServiceAccount whose short-lived tokens\n"
          "(TokenRequest) are sent to kubelets; it needs only `get nodes/configz`,\n"
          "so no node sees the controller's own token (NAMESPACE: $POD_NAMESPACE,\n"
          "else kubelet-policy-system). Empty: the controller's own credentials");
}

void AddAgentJobFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Agent Jobs (remediation and file audits)");
  AddText(app, "--remediation-namespace", f.remediation_namespace, "NS",
          "namespace of the Jobs (Pod Security level privileged)");
  AddText(app, "--agent-image", f.agent_image, "IMAGE",
          "image the Jobs run; pin it by digest: name@sha256:...")
      ->envname("AGENT_IMAGE")
      ->default_str(controller::RemediationOptions{}.image);
  AddText(app, "--agent-image-pull-policy", f.agent_image_pull_policy, "POLICY",
          "imagePullPolicy of the Jobs");
  AddRepeated(app, "--agent-host-path", f.extra_host_paths, "PATH",
              "also mount this host directory into the Jobs (read-only for file\n"
              "audits); /etc, /var/lib/kubelet and the systemd unit directories\n"
              "always are")
      ->check(CLI::Validator(
          [](std::string& p) -> std::string {
            if (!p.empty() && p[0] == '/' && p.find("..") == std::string::npos) return "";
            return "must be an absolute path without \"..\", got \"" + p + "\"";
          },
          ""));
}

void AddRemediationFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Remediation");
  AddText(app, "--kubelet-restart-command", f.restart_command, "\"ARGS\"",
          "argv (space-separated, no shell) the agent runs to restart the\n"
          "kubelet (default: nsenter into PID 1, systemctl restart kubelet)");
  AddDuration(app, "--remediation-job-ttl", f.job_ttl_ns,
              "finished remediation Jobs are deleted after this; a failed node\n"
              "remediation is retried once its Job is gone");
}

void AddFileAuditFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("File audits");
  AddDuration(app, "--file-audit-interval", f.file_audit_interval_ns,
              "how often file rules are audited on each node; audit Jobs are\nkept as long");
  AddPositiveNumber(app, "--file-audit-qps", f.file_audit_qps,
                    "audit Jobs created per second at most");
}

// `run` no longer serves admission traffic, but an old command line (a Deployment, a script)
// still passes the webhook flags: each stays known here, hidden from --help, and any use of it
// is an error that says where it went. The list is the `webhook` command's own group, so it
// cannot miss one.
void AddMovedWebhookFlags(CLI::App& app) {
  CLI::App donor;
  donor.set_help_flag();
  WebhookServerFlags unused;
  AddWebhookServerFlags(donor, unused);
  for (const CLI::Option* moved : donor.get_options()) {
    const std::string name = "--" + moved->get_lnames().front();
    // Thrown from the callback, not a validator: CLI11 leaves the name out of a hidden
    // option's validation errors.
    auto refuse = [name] {
      throw CLI::ValidationError(name, std::string("moved to `") + kWebhookCommand +
                                           "`: the admission webhooks run in their own "
                                           "process; remove it from `run`");
    };
    CLI::Option* opt =
        moved->get_items_expected_max() > 0
            ? app.add_option_function<std::string>(name, [refuse](const std::string&) { refuse(); })
            : app.add_flag_function(name, [refuse](std::int64_t) { refuse(); });
    opt->group("");
  }
}

}  // namespace

void AddRunFlags(CLI::App& app, RunFlags& f) {
  AddConnectionFlags(app, f.connection);
  AddConfigzFlags(app, f);
  AddKubeletFlags(app, f);
  AddLeaderElectionFlags(app, f.election, "Leader election (only the leader reconciles)");
  AddServingFlags(app, f.serving);
  AddAgentJobFlags(app, f);
  AddRemediationFlags(app, f);
  AddFileAuditFlags(app, f);
  AddLoggingFlags(app, f.logging);
  AddMovedWebhookFlags(app);
}

Status ValidateRunFlags(const RunFlags& f) {
  if (f.configz_source == "apiserver-proxy" && f.configz_qps > f.connection.qps) {
    std::ostringstream msg;
    msg << "--configz-qps (" << f.configz_qps << ") must not exceed --kube-api-qps ("
        << f.connection.qps
        << "): with --configz-source apiserver-proxy every /configz fetch is an API server "
           "request";
    return InvalidArgument(msg.str());
  }
  if (f.kubelet_insecure_tls && !f.kubelet_ca_file.empty()) {
    return InvalidArgument(
        "--kubelet-insecure-tls and --kubelet-certificate-authority contradict each other: "
        "give the CA to verify kubelets with, or (self-signed kubelet certificates) skip "
        "verification");
  }
  return ValidateLeaderElectionFlags(f.election);
}

StatusOr<CommandLine<RunFlags>> ParseRunFlags(const std::vector<std::string>& args) {
  return ReadFlags<RunFlags>({kUsage, "", kHelpColumn}, args, AddRunFlags, ValidateRunFlags);
}

}  // namespace kpc::cli
