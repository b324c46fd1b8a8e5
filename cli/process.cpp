#include "cli/process.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <random>

namespace kpc::cli {
namespace {

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal = sig; }

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

}  // namespace

net::ServerOptions ProbeServerOptions(Registry& metrics, const std::string& server) {
  net::ServerOptions o;
  o.allowed_methods = {"GET", "HEAD"};
  o.allow_body = false;
  o.max_body_bytes = 0;
  o.max_body_bytes_in_flight = 0;
  o.max_connections = 64;
  o.head.max_request_line_bytes = 2 * 1024;
  o.head.max_header_line_bytes = 4 * 1024;
  o.head.max_header_count = 32;
  o.head.max_head_bytes = 8 * 1024;
  // Probes time out after a few seconds; a scrape that reconnects after idling costs nothing.
  o.request_timeout = std::chrono::seconds(10);
  o.idle_timeout = std::chrono::seconds(30);
  o.on_refusal = net::RefusalCounter(metrics, server);
  return o;
}

std::chrono::milliseconds Millis(int64_t ns) { return std::chrono::milliseconds(ns / 1'000'000); }

void InstallStopSignals() {
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
}

int WaitForStopSignal() {
  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return g_signal.load();
}

StatusOr<kube::ClientConfig> ApiClientConfig(const ConnectionFlags& f, const std::string& component) {
  auto config = kube::ResolveConfig(f.kubeconfig, f.context, f.allow_insecure);
  if (!config.ok()) return config.status();
  config->qps = f.qps;
  config->burst = f.burst;
  spdlog::info("{} starting; API server {}", component, config->server);
  return config;
}

kube::LeaderElectionConfig LeaderElectionFrom(const LeaderElectionFlags& f) {
  kube::LeaderElectionConfig le;
  le.lease_namespace = f.lease_namespace;
  le.lease_name = f.lease_name;
  le.identity = Identity();
  le.lease_duration = Millis(f.lease_duration_ns);
  le.renew_deadline = Millis(f.renew_deadline_ns);
  le.retry_period = Millis(f.retry_period_ns);
  return le;
}

ApiRequestMetrics::ApiRequestMetrics(Registry& metrics, const kube::Client& client)
    : ApiRequestMetrics(metrics, std::vector<const kube::Client*>{&client}) {}

ApiRequestMetrics::ApiRequestMetrics(Registry& metrics, std::vector<const kube::Client*> clients)
    : clients_(std::move(clients)),
      counter_(metrics.AddCounter("kubeletpolicy_api_requests_total",
                                  "Requests to the Kubernetes API server by verb and HTTP code.",
                                  {"verb", "code"})) {}

void ApiRequestMetrics::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::pair<std::string, std::string>, uint64_t> total;
  for (const kube::Client* c : clients_) {
    for (const auto& [k, n] : c->RequestCounts()) total[k] += n;
  }
  for (const auto& [k, n] : total) {
    uint64_t& seen = seen_[k];
    if (n > seen) counter_.WithLabels({k.first, k.second}).Inc(static_cast<double>(n - seen));
    seen = n;
  }
}

StatusOr<std::unique_ptr<Endpoints>> Endpoints::Serve(const ServingFlags& f, Readiness ready,
                                                      Registry& metrics,
                                                      ApiRequestMetrics& api_requests,
                                                      const Clock& clock) {
  std::unique_ptr<Endpoints> e(new Endpoints());
  e->health_ =
      net::NewHttpServer(clock, f.health_addr, std::nullopt, ProbeServerOptions(metrics, "health"));
  e->health_->Handle("/healthz", [](const net::ServerRequest&) { return Text(200, "ok\n"); });
  e->health_->Handle("/readyz", [ready = std::move(ready)](const net::ServerRequest&) {
    if (auto why = ready()) return Text(503, *why + "\n");
    return Text(200, "ok\n");
  });
  auto metrics_handler = [&metrics, &api_requests](const net::ServerRequest&) {
    api_requests.Sync();
    return Text(200, metrics.Render(), std::string(kMetricsContentType));
  };
  if (f.metrics_addr == f.health_addr) {
    e->health_->Handle("/metrics", metrics_handler);
  } else {
    e->metrics_ = net::NewHttpServer(clock, f.metrics_addr, std::nullopt,
                                     ProbeServerOptions(metrics, "metrics"));
    e->metrics_->Handle("/metrics", metrics_handler);
    if (Status s = e->metrics_->Start(); !s.ok()) {
      return Status(s.code(), "cannot serve metrics on " + f.metrics_addr + ": " + s.message());
    }
  }
  if (Status s = e->health_->Start(); !s.ok()) {
    return Status(s.code(), "cannot serve health checks on " + f.health_addr + ": " + s.message());
  }
  spdlog::info("serving /healthz and /readyz on port {}, /metrics on port {}", e->health_->port(),
               e->metrics_ ? e->metrics_->port() : e->health_->port());
  return e;
}

Endpoints::~Endpoints() { Stop(); }

void Endpoints::Stop() {
  if (health_) health_->Stop();
  if (metrics_) metrics_->Stop();
  health_.reset();
  metrics_.reset();
}

Leadership::Leadership(std::optional<kube::LeaderElectionConfig> election,
                       kube::Client& lease_client, const Clock& clock, std::string what_stops,
                       std::atomic<bool>& is_leader)
    : what_stops_(std::move(what_stops)),
      is_leader_(is_leader),
      elector_(election ? std::make_unique<kube::LeaderElector>(
                              lease_client, clock, *election, [this] { Lead(); },
                              [this] {
                                is_leader_ = false;
                                spdlog::warn("lost leadership: stopped {}", what_stops_);
                              })
                        : nullptr) {
  if (election) {
    spdlog::info("leader election: Lease {}/{} as {}", election->lease_namespace,
                 election->lease_name, election->identity);
  }
}

Leadership::~Leadership() { Stop(); }

void Leadership::Start(Work lead) {
  lead_ = std::move(lead);
  if (elector_) {
    elector_->Start();
  } else {
    thread_ = std::thread([this] { Lead(); });
  }
}

void Leadership::Stop() {
  shutting_down_ = true;
  if (elector_) elector_->Stop();
  if (thread_.joinable()) thread_.join();
}

Status Leadership::MayMutate() const { return elector_ ? elector_->MayMutate() : Status::Ok(); }

void Leadership::Lead() {
  is_leader_ = true;
  lead_([this] { return shutting_down_.load() || (elector_ && !elector_->IsLeader()); });
}

}  // namespace kpc::cli
