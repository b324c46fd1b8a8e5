#include "cli/run_command.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>
#include <sstream>

#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "cli/kubelet_access.h"
#include "cli/process.h"
#include "cli/run_flags.h"
#include "controller/operator.h"
#include "kube/client.h"
#include "kube/events.h"

namespace kpc::cli {
namespace {

using controller::Operator;
using controller::OperatorOptions;

// The API server only accepts Events about cluster-scoped objects (Nodes, KubeletPolicies)
// in the "default" namespace.
constexpr const char* kEventsNamespace = "default";

OperatorOptions OperatorOptionsFrom(const RunFlags& f) {
  OperatorOptions opts;
  opts.workers = f.workers;
  opts.configz_timeout = Millis(f.configz_timeout_ns);
  opts.configz_max_bytes = static_cast<size_t>(f.configz_max_bytes);
  opts.scheduler.concurrency = f.configz_concurrency;
  opts.scheduler.qps = f.configz_qps;
  opts.remediation.job_namespace = f.remediation_namespace;
  if (!f.agent_image.empty()) opts.remediation.image = f.agent_image;
  opts.remediation.image_pull_policy = f.agent_image_pull_policy;
  std::istringstream words(f.restart_command);
  for (std::string w; words >> w;) opts.remediation.restart_command.push_back(w);
  for (const auto& p : f.extra_host_paths) opts.remediation.host_paths.push_back(p);
  opts.remediation.job_ttl_seconds = f.job_ttl_ns / 1'000'000'000;
  opts.file_audit_interval =
      std::chrono::seconds(std::max<int64_t>(f.file_audit_interval_ns / 1'000'000'000, 1));
  opts.remediation.audit_ttl_seconds = opts.file_audit_interval.count();
  opts.file_audit_qps = f.file_audit_qps;
  return opts;
}

// Runs the operator with flags that were read and checked, until a signal.
int Serve(const RunFlags& f) {
  RealClock clock;  // outlives everything below
  auto config = ApiClientConfig(f.connection, "kubelet-policy-controller");
  if (!config.ok()) {
    spdlog::error("cannot configure the Kubernetes client: {}", config.status().message());
    return 2;
  }
  // The Lease and the kubelet credentials (TokenRequests change nothing in the cluster) go
  // through a client of their own; everything the operator writes passes the leadership gate.
  auto ungated = kube::NewClient(clock, *config);
  std::atomic<bool> is_leader{!f.election.leader_elect};
  Leadership leadership(
      f.election.leader_elect ? std::optional(LeaderElectionFrom(f.election)) : std::nullopt,
      *ungated, clock, "reconciling", is_leader);
  auto client = kube::NewClient(clock, *config, &leadership);
  kube::Client& api = *client;
  OperatorOptions options = OperatorOptionsFrom(f);
  auto configz = KubeletAccessFrom(f, *config, *ungated, clock);
  if (!configz.ok()) {
    spdlog::error("{}", configz.status().message());
    return 2;
  }
  options.configz = std::move(*configz);
  InstallStopSignals();

  auto events = kube::NewEventRecorder(api, clock, "kubelet-policy-controller", kEventsNamespace);
  Registry metrics;
  Operator op(api, *events, metrics, clock, std::move(options));
  ApiRequestMetrics api_requests(metrics, {&api, ungated.get()});
  metrics.AddCallbackGauge("kubeletpolicy_leader", "1 when this replica is the leader.",
                           [&is_leader] { return is_leader ? 1.0 : 0.0; });
  auto ready = [&op]() -> std::optional<std::string> {
    if (!op.HasSynced()) return "informer caches not synced yet";
    return std::nullopt;
  };
  auto endpoints = Endpoints::Serve(f.serving, ready, metrics, api_requests, clock);
  if (!endpoints.ok()) {
    spdlog::error("{}", endpoints.status().message());
    return 1;
  }

  op.Start();
  leadership.Start([&op](const std::function<bool()>& stop) { op.RunLeader(stop); });

  spdlog::info("signal {} received: shutting down", WaitForStopSignal());
  leadership.Stop();
  op.Stop();
  (*endpoints)->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int RunOperator(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto line = ParseRunFlags(args);
  if (!line.ok()) return ReportUsageError(err, line.status(), "kubelet-policy-controller run");
  if (line->help) {
    out << *line->help;
    return 0;
  }
  const RunFlags& f = line->flags;
  if (Status s = SetUpLogging(f.logging.log_format, f.logging.log_level); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 2;
  }
  return Serve(f);
}

}  // namespace kpc::cli
