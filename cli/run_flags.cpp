#include "cli/run_flags.h"

#include <CLI/CLI.hpp>
#include <sstream>

#include "controller/configz_source.h"
#include "controller/remediation.h"

namespace kpc::cli {
namespace {

constexpr std::size_t kHelpColumn = 42;

constexpr const char* kUsage = R"(Usage:
  kubelet-policy-controller run [flags]

Runs the operator: watches KubeletPolicy objects and Nodes, reads every selected node's
/configz from its kubelet (or through the API server), and writes status, Events and metrics.
)";

void AddConnectionFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Kubernetes connection");
  AddText(app, "--kubeconfig", f.kubeconfig, "FILE",
          "kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  AddText(app, "--context", f.context, "NAME", "kubeconfig context (default: current-context)");
  AddBool(app, "--insecure-skip-tls-verify", f.allow_insecure,
          "accept a kubeconfig that disables TLS verification");
  AddPositiveNumber(app, "--kube-api-qps", f.qps,
                    "client-side QPS limit to the API server (with --configz-source\n"
                    "apiserver-proxy, /configz fetches too)");
  AddPositiveInt(app, "--kube-api-burst", f.burst, "client-side burst");
}

void AddConfigzFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Configz checks");
  AddPositiveInt(app, "--workers", f.workers, "policies reconciled in parallel");
  AddPositiveInt(app, "--configz-concurrency", f.configz_concurrency,
                 "/configz fetches in flight at once");
  AddPositiveNumber(app, "--configz-qps", f.configz_qps,
                    "/configz fetches started per second; with apiserver-proxy at\n"
                    "most --kube-api-qps");
  AddDuration(app, "--configz-timeout", f.configz_timeout_ns, "per-fetch timeout");
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

void AddLeaderElectionFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Leader election (only the leader reconciles)");
  AddBool(app, "--leader-elect", f.leader_elect, "lead while holding a Lease; false: lead at once");
  AddText(app, "--leader-elect-namespace", f.lease_namespace, "NS", "Lease namespace")
      ->envname("POD_NAMESPACE");
  AddText(app, "--leader-elect-name", f.lease_name, "NAME", "Lease name");
  AddDuration(app, "--leader-elect-lease-duration", f.lease_duration_ns,
              "how long a Lease is held without renewal");
  AddDuration(app, "--leader-elect-renew-deadline", f.renew_deadline_ns,
              "the leader gives up when it cannot renew for this long");
  AddDuration(app, "--leader-elect-retry-period", f.retry_period_ns,
              "time between attempts to acquire or renew");
}

void AddServingFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Health and metrics");
  AddText(app, "--health-addr", f.health_addr, "ADDR", "/healthz and /readyz");
  AddText(app, "--metrics-addr", f.metrics_addr, "ADDR",
          "/metrics in Prometheus text format; may be --health-addr's");
}

void AddWebhookFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group(
      "Admission webhooks (HTTPS, every replica; /validate-kubeletpolicy and "
      "/mutate-kubeletpolicy)");
  AddText(app, "--webhook-addr", f.webhook_addr, "ADDR",
          "listen address; empty disables the webhook server");
  AddChoice(app, "--webhook-cert-mode", f.webhook_cert_mode, "MODE",
            {"self-managed", "cert-manager"},
            "self-managed: the leader keeps a CA and serving certificate in the\n"
            "Secret --webhook-secret-name, injects the CA bundle into the webhook\n"
            "configurations and renews before expiry; every replica serves the\n"
            "pair from the Secret.\n"
            "cert-manager: serve tls.crt/tls.key from --webhook-cert-dir only");
  AddText(app, "--webhook-cert-dir", f.webhook_cert_dir, "DIR",
          "cert-manager mode: directory with tls.crt, tls.key (and ca.crt),\n"
          "re-read every --webhook-cert-sync-period");
  AddBool(app, "--local-webhooks", f.local_webhooks,
          "development: serve on 127.0.0.1 (port of --webhook-addr) and point\n"
          "both webhook configurations at https://127.0.0.1:PORT with this\n"
          "process's own CA bundle (the configurations must already exist:\n"
          "kubectl apply -f deploy/base/webhooks.yaml)");
  AddText(app, "--webhook-namespace", f.webhook_namespace, "NS",
          "namespace of the Secret and Service")
      ->envname("POD_NAMESPACE");
  AddText(app, "--webhook-service-name", f.webhook_service, "NAME",
          "Service the certificate is for");
  AddText(app, "--webhook-secret-name", f.webhook_secret, "NAME",
          "Secret of the self-managed CA and serving pair");
  AddText(app, "--webhook-configuration-name", f.webhook_configuration, "NAME",
          "Validating- and MutatingWebhookConfiguration");
  AddDuration(app, "--webhook-ca-validity", f.webhook_ca_validity_ns,
              "self-managed CA lifetime; renewed with a third left");
  AddDuration(app, "--webhook-cert-validity", f.webhook_cert_validity_ns,
              "serving certificate lifetime; renewed with a third left");
  AddDuration(app, "--webhook-cert-sync-period", f.webhook_sync_period_ns,
              "how often replicas reload the pair and the leader checks renewal");
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

void AddLoggingFlags(CLI::App& app, RunFlags& f) {
  app.option_defaults()->group("Logging");
  AddChoice(app, "--log-format", f.log_format, "FORMAT", {"text", "json"},
            "text, or one JSON object per line");
  // spdlog's names; "warning" and "err" are its aliases, "critical" and "off" undocumented.
  AddChoice(app, "--log-level", f.log_level, "LEVEL", {"trace", "debug", "info", "warn", "error"},
            "trace, debug, info, warn or error", {"warning", "err", "critical", "off"});
}

}  // namespace

void AddRunFlags(CLI::App& app, RunFlags& f) {
  AddConnectionFlags(app, f);
  AddConfigzFlags(app, f);
  AddKubeletFlags(app, f);
  AddLeaderElectionFlags(app, f);
  AddServingFlags(app, f);
  AddWebhookFlags(app, f);
  AddAgentJobFlags(app, f);
  AddRemediationFlags(app, f);
  AddFileAuditFlags(app, f);
  AddLoggingFlags(app, f);
}

std::optional<std::string> LocalWebhookPort(const std::string& webhook_addr) {
  const auto colon = webhook_addr.rfind(':');
  std::string port = colon == std::string::npos ? webhook_addr : webhook_addr.substr(colon + 1);
  if (port.empty() || port == "0" || port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return port;
}

Status ValidateRunFlags(const RunFlags& f) {
  if (f.configz_source == "apiserver-proxy" && f.configz_qps > f.qps) {
    std::ostringstream msg;
    msg << "--configz-qps (" << f.configz_qps << ") must not exceed --kube-api-qps (" << f.qps
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
  if (f.local_webhooks && f.webhook_cert_mode != "self-managed") {
    return InvalidArgument(
        "--local-webhooks makes its own certificates: it needs --webhook-cert-mode=self-managed");
  }
  if (f.local_webhooks && f.webhook_addr.empty()) {
    return InvalidArgument(
        "--local-webhooks needs --webhook-addr (the port to serve on 127.0.0.1)");
  }
  if (f.local_webhooks && !LocalWebhookPort(f.webhook_addr)) {
    return InvalidArgument("--local-webhooks needs a fixed port in --webhook-addr, got \"" +
                           f.webhook_addr + "\"");
  }
  if (f.renew_deadline_ns >= f.lease_duration_ns) {
    return InvalidArgument(
        "--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration");
  }
  if (f.retry_period_ns >= f.renew_deadline_ns) {
    return InvalidArgument(
        "--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline");
  }
  return Status::Ok();
}

StatusOr<CommandLine<RunFlags>> ParseRunFlags(const std::vector<std::string>& args) {
  return ReadFlags<RunFlags>({kUsage, "", kHelpColumn}, args, AddRunFlags, ValidateRunFlags);
}

}  // namespace kpc::cli
