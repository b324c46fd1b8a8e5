#include "cli/common_flags.h"

#include <CLI/CLI.hpp>

namespace kpc::cli {

void AddConnectionFlags(CLI::App& app, ConnectionFlags& f) {
  app.option_defaults()->group("Kubernetes connection");
  AddText(app, "--kubeconfig", f.kubeconfig, "FILE",
          "kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  AddText(app, "--context", f.context, "NAME", "kubeconfig context (default: current-context)");
  AddBool(app, "--insecure-skip-tls-verify", f.allow_insecure,
          "accept a kubeconfig that disables TLS verification");
  AddPositiveNumber(app, "--kube-api-qps", f.qps, "client-side QPS limit to the API server");
  AddPositiveInt(app, "--kube-api-burst", f.burst, "client-side burst");
}

void AddLeaderElectionFlags(CLI::App& app, LeaderElectionFlags& f, const std::string& group) {
  app.option_defaults()->group(group);
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

void AddServingFlags(CLI::App& app, ServingFlags& f) {
  app.option_defaults()->group("Health and metrics");
  AddText(app, "--health-addr", f.health_addr, "ADDR", "/healthz and /readyz");
  AddText(app, "--metrics-addr", f.metrics_addr, "ADDR",
          "/metrics in Prometheus text format; may be --health-addr's");
}

void AddLoggingFlags(CLI::App& app, LoggingFlags& f) {
  app.option_defaults()->group("Logging");
  AddChoice(app, "--log-format", f.log_format, "FORMAT", {"text", "json"},
            "text, or one JSON object per line");
  // spdlog's names; "warning" and "err" are its aliases, "critical" and "off" undocumented.
  AddChoice(app, "--log-level", f.log_level, "LEVEL", {"trace", "debug", "info", "warn", "error"},
            "trace, debug, info, warn or error", {"warning", "err", "critical", "off"});
}

Status ValidateLeaderElectionFlags(const LeaderElectionFlags& f) {
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

}  // namespace kpc::cli
