#include "cli/run_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "cli/kubelet_access.h"
#include "cli/run_flags.h"
#include "controller/operator.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/leader_election.h"
#include "net/http.h"
#include "webhooks/cert_rotator.h"
#include "webhooks/certs.h"
#include "webhooks/server.h"

namespace kpc::cli {
namespace {

using controller::Operator;
using controller::OperatorOptions;

// The API server only accepts Events about cluster-scoped objects (Nodes, KubeletPolicies)
// in the "default" namespace.
constexpr const char* kEventsNamespace = "default";

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal = sig; }

std::chrono::milliseconds Millis(int64_t ns) { return std::chrono::milliseconds(ns / 1'000'000); }

std::string Identity() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::mt19937_64 rng{std::random_device{}()};
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rng()));
  return std::string(host) + "_" + suffix;
}

net::HttpResponse Text(int status, std::string body,
                       std::string type = "text/plain; charset=utf-8") {
  net::HttpResponse r;
  r.status = status;
  r.headers["content-type"] = std::move(type);
  r.body = std::move(body);
  return r;
}

OperatorOptions OperatorOptionsFrom(const RunFlags& f) {
  OperatorOptions opts;
  opts.workers = f.workers;
  opts.configz_timeout = Millis(f.configz_timeout_ns);
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

kube::LeaderElectionConfig LeaderElectionFrom(const RunFlags& f) {
  kube::LeaderElectionConfig le;
  le.lease_namespace = f.lease_namespace;
  le.lease_name = f.lease_name;
  le.identity = Identity();
  le.lease_duration = Millis(f.lease_duration_ns);
  le.renew_deadline = Millis(f.renew_deadline_ns);
  le.retry_period = Millis(f.retry_period_ns);
  return le;
}

webhooks::CertRotatorOptions CertRotatorOptionsFrom(const RunFlags& f) {
  webhooks::CertRotatorOptions ro;
  ro.ns = f.webhook_namespace;
  ro.secret_name = f.webhook_secret;
  ro.configuration_name = f.webhook_configuration;
  ro.settings.ca_validity_seconds = f.webhook_ca_validity_ns / 1'000'000'000;
  ro.settings.cert_validity_seconds = f.webhook_cert_validity_ns / 1'000'000'000;
  ro.settings.hosts = webhooks::ServiceHostNames(f.webhook_service, f.webhook_namespace);
  if (f.local_webhooks) {
    ro.url_base = "https://127.0.0.1:" + LocalWebhookPort(f.webhook_addr).value_or("");
    ro.settings.hosts = {"127.0.0.1", "localhost"};
  }
  return ro;
}

StatusOr<kube::ClientConfig> ApiClientConfig(const RunFlags& f) {
  auto config = kube::ResolveConfig(f.kubeconfig, f.context, f.allow_insecure);
  if (!config.ok()) return config.status();
  config->qps = f.qps;
  config->burst = f.burst;
  spdlog::info("kubelet-policy-controller starting; API server {}", config->server);
  return config;
}

// The client's request counts, mirrored into kubeletpolicy_api_requests_total at scrape time.
class ApiRequestMetrics {
 public:
  ApiRequestMetrics(Registry& metrics, const kube::Client& client)
      : client_(client),
        counter_(metrics.AddCounter("kubeletpolicy_api_requests_total",
                                    "Requests to the Kubernetes API server by verb and HTTP code.",
                                    {"verb", "code"})) {}

  void Sync() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, n] : client_.RequestCounts()) {
      uint64_t& seen = seen_[k];
      if (n > seen) counter_.WithLabels({k.first, k.second}).Inc(static_cast<double>(n - seen));
      seen = n;
    }
  }

 private:
  const kube::Client& client_;
  CounterFamily& counter_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> seen_;
};

// The admission webhook server and where its serving pair comes from; all null without
// --webhook-addr.
struct Webhooks {
  std::unique_ptr<webhooks::CachedConflictChecker> conflicts;
  std::unique_ptr<webhooks::WebhookServer> server;
  std::unique_ptr<webhooks::CertRotator> rotator;  // self-managed mode: the leader's
  std::unique_ptr<webhooks::CertReloader> reloader;

  void Stop() {
    if (reloader) reloader->Stop();
    if (server) server->Stop();
  }
};

Webhooks StartWebhooks(const RunFlags& f, kube::Client& client, Operator& op, Registry& metrics,
                       const Clock& clock) {
  Webhooks w;
  if (f.webhook_addr.empty()) return w;
  webhooks::WebhookServerOptions wo;
  wo.address = f.local_webhooks ? "127.0.0.1:" + LocalWebhookPort(f.webhook_addr).value_or("")
                                : f.webhook_addr;
  w.conflicts = std::make_unique<webhooks::CachedConflictChecker>(
      [&op] { return op.CachedPolicies(); }, op.ParseCache());
  w.server = std::make_unique<webhooks::WebhookServer>(metrics, w.conflicts.get(), clock, wo);
  webhooks::PairSource source;
  if (f.webhook_cert_mode == "cert-manager") {
    source = webhooks::DirPairSource(f.webhook_cert_dir);
    spdlog::info("webhook certificates: cert-manager mode, serving from {}", f.webhook_cert_dir);
  } else {
    const webhooks::CertRotatorOptions ro = CertRotatorOptionsFrom(f);
    w.rotator = std::make_unique<webhooks::CertRotator>(client, clock, ro);
    source = [r = w.rotator.get()] { return r->ReadServingPair(); };
    spdlog::info("webhook certificates: self-managed in Secret {}/{}{}", ro.ns, ro.secret_name,
                 f.local_webhooks ? "; local webhooks at " + ro.url_base : "");
  }
  w.reloader =
      std::make_unique<webhooks::CertReloader>(source, *w.server, Millis(f.webhook_sync_period_ns));
  w.reloader->Start();
  return w;
}

// The leader's certificate loop (self-managed mode), next to the reconcilers.
void RotateCertificates(webhooks::CertRotator& rotator, std::chrono::milliseconds period,
                        const std::function<bool()>& stop) {
  while (!stop()) {
    if (Status s = rotator.SyncOnce(); !s.ok()) {
      spdlog::warn("webhook certificates: {} (retrying in {}s)", s.message(),
                   period.count() / 1000.0);
    }
    for (auto waited = std::chrono::milliseconds(0); waited < period && !stop();
         waited += std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

// /healthz and /readyz, and /metrics on the same server or its own.
struct Endpoints {
  std::unique_ptr<net::HttpServer> health;
  std::unique_ptr<net::HttpServer> metrics;  // null when --metrics-addr is --health-addr

  void Stop() {
    health->Stop();
    if (metrics) metrics->Stop();
  }
};

StatusOr<Endpoints> ServeHealthAndMetrics(const RunFlags& f, const Operator& op,
                                          const webhooks::WebhookServer* webhook,
                                          const Registry& metrics, ApiRequestMetrics& api_requests,
                                          const Clock& clock) {
  Endpoints e;
  e.health = net::NewHttpServer(clock, f.health_addr);
  e.health->Handle("/healthz", [](const net::ServerRequest&) { return Text(200, "ok\n"); });
  e.health->Handle("/readyz", [&op, webhook](const net::ServerRequest&) {
    if (!op.HasSynced()) return Text(503, "informer caches not synced yet\n");
    if (webhook && !webhook->Serving())
      return Text(503, "webhook server has no serving certificate yet\n");
    return Text(200, "ok\n");
  });
  auto metrics_handler = [&metrics, &api_requests](const net::ServerRequest&) {
    api_requests.Sync();
    return Text(200, metrics.Render(), std::string(kMetricsContentType));
  };
  if (f.metrics_addr == f.health_addr) {
    e.health->Handle("/metrics", metrics_handler);
  } else {
    e.metrics = net::NewHttpServer(clock, f.metrics_addr);
    e.metrics->Handle("/metrics", metrics_handler);
    if (Status s = e.metrics->Start(); !s.ok()) {
      return Status(s.code(), "cannot serve metrics on " + f.metrics_addr + ": " + s.message());
    }
  }
  if (Status s = e.health->Start(); !s.ok()) {
    return Status(s.code(), "cannot serve health checks on " + f.health_addr + ": " + s.message());
  }
  spdlog::info("serving /healthz and /readyz on port {}, /metrics on port {}", e.health->port(),
               e.metrics ? e.metrics->port() : e.health->port());
  return e;
}

// The leader's work: the reconcilers and, with self-managed certificates, their rotation. It
// runs at once without leader election, else each time this replica wins the Lease.
class Leadership {
 public:
  Leadership(std::optional<kube::LeaderElectionConfig> election, kube::Client& client,
             const Clock& clock, Operator& op, webhooks::CertRotator* rotator,
             std::chrono::milliseconds rotation_period, std::atomic<bool>& is_leader)
      : election_(std::move(election)),
        client_(client),
        clock_(clock),
        op_(op),
        rotator_(rotator),
        rotation_period_(rotation_period),
        is_leader_(is_leader) {}

  void Start() {
    if (!election_) {
      thread_ = std::thread([this] { Lead(); });
      return;
    }
    spdlog::info("leader election: Lease {}/{} as {}", election_->lease_namespace,
                 election_->lease_name, election_->identity);
    elector_ = std::make_unique<kube::LeaderElector>(
        client_, clock_, *election_, [this] { Lead(); },
        [this] {
          is_leader_ = false;
          spdlog::warn("lost leadership: stopped reconciling");
        });
    elector_->Start();
  }

  // Ends the leader's work; releases the Lease so that a successor takes over at once.
  void Stop() {
    shutting_down_ = true;
    if (elector_) elector_->Stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Lead() {
    is_leader_ = true;
    auto stop = [this] { return shutting_down_.load() || (elector_ && !elector_->IsLeader()); };
    std::thread certs;
    if (rotator_)
      certs = std::thread([&] { RotateCertificates(*rotator_, rotation_period_, stop); });
    op_.RunLeader(stop);
    if (certs.joinable()) certs.join();
  }

  const std::optional<kube::LeaderElectionConfig> election_;
  kube::Client& client_;
  const Clock& clock_;
  Operator& op_;
  webhooks::CertRotator* const rotator_;
  const std::chrono::milliseconds rotation_period_;
  std::atomic<bool>& is_leader_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<kube::LeaderElector> elector_;
  std::thread thread_;
};

// Runs the operator with flags that were read and checked, until a signal.
int Serve(const RunFlags& f) {
  RealClock clock;  // outlives everything below
  auto config = ApiClientConfig(f);
  if (!config.ok()) {
    spdlog::error("cannot configure the Kubernetes client: {}", config.status().message());
    return 2;
  }
  auto client = kube::NewClient(clock, *config);
  kube::Client& api = *client;
  OperatorOptions options = OperatorOptionsFrom(f);
  auto configz = KubeletAccessFrom(f, *config, api, clock);
  if (!configz.ok()) {
    spdlog::error("{}", configz.status().message());
    return 2;
  }
  options.configz = std::move(*configz);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  auto events = kube::NewEventRecorder(api, clock, "kubelet-policy-controller", kEventsNamespace);
  Registry metrics;
  Operator op(api, *events, metrics, clock, std::move(options));
  ApiRequestMetrics api_requests(metrics, api);
  std::atomic<bool> is_leader{!f.leader_elect};
  metrics.AddCallbackGauge("kubeletpolicy_leader", "1 when this replica is the leader.",
                           [&is_leader] { return is_leader ? 1.0 : 0.0; });
  Webhooks webhooks = StartWebhooks(f, api, op, metrics, clock);
  auto endpoints =
      ServeHealthAndMetrics(f, op, webhooks.server.get(), metrics, api_requests, clock);
  if (!endpoints.ok()) {
    spdlog::error("{}", endpoints.status().message());
    return 1;
  }

  op.Start();
  Leadership leadership(f.leader_elect ? std::optional(LeaderElectionFrom(f)) : std::nullopt, api,
                        clock, op, webhooks.rotator.get(), Millis(f.webhook_sync_period_ns),
                        is_leader);
  leadership.Start();

  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {} received: shutting down", g_signal.load());
  leadership.Stop();
  op.Stop();
  webhooks.Stop();
  endpoints->Stop();
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
  if (Status s = SetUpLogging(f.log_format, f.log_level); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 2;
  }
  return Serve(f);
}

}  // namespace kpc::cli
