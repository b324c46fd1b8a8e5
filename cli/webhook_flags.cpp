#include "cli/webhook_flags.h"

#include <CLI/CLI.hpp>

namespace kpc::cli {
namespace {

constexpr std::size_t kHelpColumn = 42;

constexpr const char* kUsage = R"(Usage:
  kubelet-policy-controller webhook [flags]

Serves the KubeletPolicy admission webhooks over HTTPS (/validate-kubeletpolicy and
/mutate-kubeletpolicy) and manages their serving certificate. Reads KubeletPolicies (for the
conflict warnings) and, with self-managed certificates, writes only its Secret and the two
webhook configurations.
)";

}  // namespace

void AddWebhookServerFlags(CLI::App& app, WebhookServerFlags& f) {
  app.option_defaults()->group(
      "Admission webhooks (HTTPS, every replica; /validate-kubeletpolicy and "
      "/mutate-kubeletpolicy)");
  AddText(app, "--webhook-addr", f.webhook_addr, "ADDR", "listen address");
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

void AddWebhookFlags(CLI::App& app, WebhookFlags& f) {
  AddConnectionFlags(app, f.connection);
  AddLeaderElectionFlags(app, f.election,
                         "Leader election (only the leader writes the self-managed certificates)");
  AddServingFlags(app, f.serving);
  AddWebhookServerFlags(app, f.server);
  AddLoggingFlags(app, f.logging);
}

std::optional<std::string> LocalWebhookPort(const std::string& webhook_addr) {
  const auto colon = webhook_addr.rfind(':');
  std::string port = colon == std::string::npos ? webhook_addr : webhook_addr.substr(colon + 1);
  if (port.empty() || port == "0" || port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return port;
}

Status ValidateWebhookFlags(const WebhookFlags& f) {
  const WebhookServerFlags& s = f.server;
  if (s.webhook_addr.empty()) {
    return InvalidArgument(
        "--webhook-addr must not be empty: serving the admission webhooks is all `webhook` does");
  }
  if (s.local_webhooks && s.webhook_cert_mode != "self-managed") {
    return InvalidArgument(
        "--local-webhooks makes its own certificates: it needs --webhook-cert-mode=self-managed");
  }
  if (s.local_webhooks && !LocalWebhookPort(s.webhook_addr)) {
    return InvalidArgument("--local-webhooks needs a fixed port in --webhook-addr, got \"" +
                           s.webhook_addr + "\"");
  }
  return ValidateLeaderElectionFlags(f.election);
}

StatusOr<CommandLine<WebhookFlags>> ParseWebhookFlags(const std::vector<std::string>& args) {
  return ReadFlags<WebhookFlags>({kUsage, "", kHelpColumn}, args, AddWebhookFlags,
                                 ValidateWebhookFlags);
}

}  // namespace kpc::cli
