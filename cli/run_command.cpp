#include "cli/run_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "controller/operator.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/leader_election.h"
#include "net/http.h"
#include "policy/units.h"
#include "webhooks/cert_rotator.h"
#include "webhooks/server.h"

namespace kpc::cli {
namespace {

using controller::Operator;
using controller::OperatorOptions;

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal = sig; }

struct RunFlags {
  std::string kubeconfig;
  std::string context;
  bool allow_insecure = false;
  double qps = 50;
  int burst = 100;
  int workers = 2;
  int configz_concurrency = 10;
  double configz_qps = 40;
  int64_t configz_timeout_ns = 10'000'000'000;
  bool leader_elect = true;
  std::string lease_namespace;
  std::string lease_name = "kubelet-policy-controller";
  int64_t lease_duration_ns = 15'000'000'000;
  int64_t renew_deadline_ns = 10'000'000'000;
  int64_t retry_period_ns = 2'000'000'000;
  std::string health_addr = ":8081";
  std::string metrics_addr = ":8080";
  std::string events_namespace;
  std::string log_format = "text";
  std::string log_level = "info";
  // remediation and file audits
  std::string remediation_namespace = "kubelet-policy-remediation";
  std::string agent_image;
  std::string agent_image_pull_policy = "IfNotPresent";
  std::string restart_command;
  std::vector<std::string> extra_host_paths;
  int64_t file_audit_interval_ns = 3600LL * 1'000'000'000;
  double file_audit_qps = 5;
  int64_t job_ttl_ns = 24LL * 3600 * 1'000'000'000;
  // ---- admission webhooks ----
  std::string webhook_addr = ":9443";
  std::string webhook_cert_dir = "/var/run/kubelet-policy-controller/webhook-certs";
  std::string webhook_cert_mode = "self-managed";
  bool local_webhooks = false;
  std::string webhook_namespace;
  std::string webhook_service = "kubelet-policy-controller-webhook";
  std::string webhook_secret = "kubelet-policy-controller-webhook-tls";
  std::string webhook_configuration = "kubelet-policy-controller";
  int64_t webhook_ca_validity_ns = 87600LL * 3600 * 1'000'000'000;
  int64_t webhook_cert_validity_ns = 8760LL * 3600 * 1'000'000'000;
  int64_t webhook_sync_period_ns = 10'000'000'000;
  // ---- end admission webhooks ----
};

StatusOr<RunFlags> ParseRunFlags(const std::vector<std::string>& args) {
  RunFlags f;
  auto env_ns = std::getenv("POD_NAMESPACE");
  f.lease_namespace = env_ns ? env_ns : "kube-system";
  // The API server only accepts Events about cluster-scoped objects (Nodes, KubeletPolicies)
  // in the "default" namespace.
  f.events_namespace = "default";
  f.webhook_namespace = env_ns ? env_ns : "kubelet-policy-system";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], v;
    bool inline_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    auto value = [&]() -> StatusOr<std::string> {
      if (inline_value) return v;
      if (i + 1 >= args.size()) return InvalidArgument(a + " needs a value");
      return args[++i];
    };
    auto boolean = [&](bool& out) -> Status {
      if (!inline_value) {
        out = true;
        return Status::Ok();
      }
      if (v == "true") out = true;
      else if (v == "false") out = false;
      else return InvalidArgument(a + " must be true or false");
      return Status::Ok();
    };
    auto number = [&](double& out) -> Status {
      auto s = value();
      if (!s.ok()) return s.status();
      try {
        size_t pos = 0;
        out = std::stod(*s, &pos);
        if (pos != s->size() || out <= 0) throw std::invalid_argument("x");
      } catch (...) {
        return InvalidArgument(a + " must be a positive number, got \"" + *s + "\"");
      }
      return Status::Ok();
    };
    auto integer = [&](int& out) -> Status {
      double d = 0;
      Status s = number(d);
      if (!s.ok()) return s;
      if (d != static_cast<int>(d)) return InvalidArgument(a + " must be a whole number");
      out = static_cast<int>(d);
      return Status::Ok();
    };
    auto duration = [&](int64_t& out) -> Status {
      auto s = value();
      if (!s.ok()) return s.status();
      auto d = policy::ParseGoDuration(*s);
      if (!d || *d <= 0) return InvalidArgument(a + " must be a positive duration like 10s, got \"" + *s + "\"");
      out = *d;
      return Status::Ok();
    };
    auto text = [&](std::string& out) -> Status {
      auto s = value();
      if (!s.ok()) return s.status();
      out = *s;
      return Status::Ok();
    };
    Status st;
    if (a == "--kubeconfig") st = text(f.kubeconfig);
    else if (a == "--context") st = text(f.context);
    else if (a == "--insecure-skip-tls-verify") st = boolean(f.allow_insecure);
    else if (a == "--kube-api-qps") st = number(f.qps);
    else if (a == "--kube-api-burst") st = integer(f.burst);
    else if (a == "--workers") st = integer(f.workers);
    else if (a == "--configz-concurrency") st = integer(f.configz_concurrency);
    else if (a == "--configz-qps") st = number(f.configz_qps);
    else if (a == "--configz-timeout") st = duration(f.configz_timeout_ns);
    else if (a == "--leader-elect") st = boolean(f.leader_elect);
    else if (a == "--leader-elect-namespace") st = text(f.lease_namespace);
    else if (a == "--leader-elect-name") st = text(f.lease_name);
    else if (a == "--leader-elect-lease-duration") st = duration(f.lease_duration_ns);
    else if (a == "--leader-elect-renew-deadline") st = duration(f.renew_deadline_ns);
    else if (a == "--leader-elect-retry-period") st = duration(f.retry_period_ns);
    else if (a == "--health-addr") st = text(f.health_addr);
    else if (a == "--metrics-addr") st = text(f.metrics_addr);
    else if (a == "--log-format") st = text(f.log_format);
    else if (a == "--log-level") st = text(f.log_level);
    else if (a == "--remediation-namespace") st = text(f.remediation_namespace);
    else if (a == "--agent-image") st = text(f.agent_image);
    else if (a == "--agent-image-pull-policy") st = text(f.agent_image_pull_policy);
    else if (a == "--kubelet-restart-command") st = text(f.restart_command);
    else if (a == "--agent-host-path") {
      std::string p;
      st = text(p);
      if (st.ok() && (p.empty() || p[0] != '/' || p.find("..") != std::string::npos)) {
        st = InvalidArgument("--agent-host-path must be an absolute path without \"..\", got \"" + p + "\"");
      }
      f.extra_host_paths.push_back(p);
    }
    else if (a == "--file-audit-interval") st = duration(f.file_audit_interval_ns);
    else if (a == "--file-audit-qps") st = number(f.file_audit_qps);
    else if (a == "--remediation-job-ttl") st = duration(f.job_ttl_ns);
    // ---- admission webhooks ----
    else if (a == "--webhook-addr") st = text(f.webhook_addr);
    else if (a == "--webhook-cert-dir") st = text(f.webhook_cert_dir);
    else if (a == "--webhook-cert-mode") st = text(f.webhook_cert_mode);
    else if (a == "--local-webhooks") st = boolean(f.local_webhooks);
    else if (a == "--webhook-namespace") st = text(f.webhook_namespace);
    else if (a == "--webhook-service-name") st = text(f.webhook_service);
    else if (a == "--webhook-secret-name") st = text(f.webhook_secret);
    else if (a == "--webhook-configuration-name") st = text(f.webhook_configuration);
    else if (a == "--webhook-ca-validity") st = duration(f.webhook_ca_validity_ns);
    else if (a == "--webhook-cert-validity") st = duration(f.webhook_cert_validity_ns);
    else if (a == "--webhook-cert-sync-period") st = duration(f.webhook_sync_period_ns);
    // ---- end admission webhooks ----
    else if (a == "-h" || a == "--help") return Status(StatusCode::kNotFound, "help");
    else return InvalidArgument("unknown flag \"" + args[i] + "\"");
    if (!st.ok()) return st;
  }
  if (f.configz_qps > f.qps) {
    std::ostringstream msg;
    msg << "--configz-qps (" << f.configz_qps << ") must not exceed --kube-api-qps (" << f.qps
        << "): every /configz fetch is an API server request";
    return InvalidArgument(msg.str());
  }
  if (f.webhook_cert_mode != "self-managed" && f.webhook_cert_mode != "cert-manager") {
    return InvalidArgument("--webhook-cert-mode must be self-managed or cert-manager, got \"" + f.webhook_cert_mode +
                           "\"");
  }
  if (f.local_webhooks && f.webhook_cert_mode != "self-managed") {
    return InvalidArgument("--local-webhooks makes its own certificates: it needs --webhook-cert-mode=self-managed");
  }
  if (f.local_webhooks && f.webhook_addr.empty()) {
    return InvalidArgument("--local-webhooks needs --webhook-addr (the port to serve on 127.0.0.1)");
  }
  if (f.renew_deadline_ns >= f.lease_duration_ns) {
    return InvalidArgument("--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration");
  }
  if (f.retry_period_ns >= f.renew_deadline_ns) {
    return InvalidArgument("--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline");
  }
  return f;
}

std::string Identity() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::mt19937_64 rng{std::random_device{}()};
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rng()));
  return std::string(host) + "_" + suffix;
}

net::HttpResponse Text(int status, std::string body, std::string type = "text/plain; charset=utf-8") {
  net::HttpResponse r;
  r.status = status;
  r.headers["content-type"] = std::move(type);
  r.body = std::move(body);
  return r;
}

}  // namespace

std::string RunUsage() {
  return R"(Usage:
  kubelet-policy-controller run [flags]

Runs the operator: watches KubeletPolicy objects and Nodes, checks every selected node's
/configz through the API server, and writes status, Events and metrics.

Connection:
  --kubeconfig FILE                 kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --context NAME                    kubeconfig context (default: current-context)
  --insecure-skip-tls-verify        accept a kubeconfig that disables TLS verification
  --kube-api-qps N                  client-side QPS limit to the API server, /configz fetches included (default 50)
  --kube-api-burst N                client-side burst (default 100)
Checks:
  --workers N                       policies reconciled in parallel (default 2)
  --configz-concurrency N           /configz fetches in flight at once (default 10)
  --configz-qps N                   /configz fetches started per second (default 40; keep it below --kube-api-qps)
  --configz-timeout DURATION        per-fetch timeout (default 10s)
Leader election (only the leader reconciles):
  --leader-elect[=false]            default true
  --leader-elect-namespace NS       Lease namespace (default $POD_NAMESPACE or kube-system)
  --leader-elect-name NAME          Lease name (default kubelet-policy-controller)
  --leader-elect-lease-duration D   default 15s
  --leader-elect-renew-deadline D   default 10s
  --leader-elect-retry-period D     default 2s
Serving:
  --health-addr ADDR                /healthz and /readyz (default :8081)
  --metrics-addr ADDR               /metrics in Prometheus text format (default :8080)
Admission webhooks (HTTPS, every replica; /validate-kubeletpolicy and /mutate-kubeletpolicy):
  --webhook-addr ADDR               listen address (default :9443; empty disables the webhook server)
  --webhook-cert-mode MODE          self-managed (default): the leader keeps a CA and serving certificate
                                    in the Secret --webhook-secret-name, injects the CA bundle into the
                                    webhook configurations and renews before expiry; every replica
                                    serves the pair from the Secret.
                                    cert-manager: serve tls.crt/tls.key from --webhook-cert-dir only
  --webhook-cert-dir DIR            cert-manager mode: directory with tls.crt, tls.key (and ca.crt),
                                    re-read every --webhook-cert-sync-period
                                    (default /var/run/kubelet-policy-controller/webhook-certs)
  --local-webhooks                  development: serve on 127.0.0.1 (port of --webhook-addr) and point
                                    both webhook configurations at https://127.0.0.1:PORT with this
                                    process's own CA bundle (the configurations must already exist:
                                    kubectl apply -f deploy/base/webhooks.yaml)
  --webhook-namespace NS            namespace of the Secret and Service (default $POD_NAMESPACE or
                                    kubelet-policy-system)
  --webhook-service-name NAME       Service the certificate is for (default kubelet-policy-controller-webhook)
  --webhook-secret-name NAME        default kubelet-policy-controller-webhook-tls
  --webhook-configuration-name NAME Validating- and MutatingWebhookConfiguration (default kubelet-policy-controller)
  --webhook-ca-validity DURATION    self-managed CA lifetime (default 87600h); renewed with a third left
  --webhook-cert-validity DURATION  serving certificate lifetime (default 8760h); renewed with a third left
  --webhook-cert-sync-period D      how often replicas reload the pair and the leader checks renewal (default 10s)
Logging:
  --remediation-namespace NS        namespace of remediation and file-audit Jobs (default
                                    kubelet-policy-remediation; Pod Security level privileged)
  --agent-image IMAGE               image the Jobs run (default $AGENT_IMAGE; pin it by digest:
                                    name@sha256:...)
  --agent-image-pull-policy POLICY  default IfNotPresent
  --kubelet-restart-command "ARGS"  argv (space-separated, no shell) the agent runs to restart the
                                    kubelet (default: nsenter into PID 1, systemctl restart kubelet)
  --agent-host-path PATH            also mount this host directory into remediation Jobs (repeatable;
                                    /etc, /var/lib/kubelet and the systemd unit directories always are)
  --file-audit-interval DURATION    how often file rules are audited on each node (default 1h)
  --file-audit-qps N                audit Jobs created per second at most (default 5)
  --remediation-job-ttl DURATION    finished Jobs are deleted after this; a failed node remediation
                                    is retried once its Job is gone (default 24h)

  --log-format text|json            default text
  --log-level LEVEL                 trace, debug, info, warn, error (default info)
)";
}

int RunOperator(const std::vector<std::string>& args) {
  auto flags = ParseRunFlags(args);
  if (!flags.ok()) {
    if (flags.status().code() == StatusCode::kNotFound) {
      std::cout << RunUsage();
      return 0;
    }
    std::cerr << "error: " << flags.status().message() << "\n\nRun 'kubelet-policy-controller run --help' for usage.\n";
    return 2;
  }
  const RunFlags& f = *flags;
  if (Status s = SetUpLogging(f.log_format, f.log_level); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  auto config = kube::ResolveConfig(f.kubeconfig, f.context, f.allow_insecure);
  if (!config.ok()) {
    spdlog::error("cannot configure the Kubernetes client: {}", config.status().message());
    return 2;
  }
  config->qps = f.qps;
  config->burst = f.burst;
  spdlog::info("kubelet-policy-controller starting; API server {}", config->server);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  RealClock clock;
  auto client = kube::NewClient(clock, *config);
  auto events = kube::NewEventRecorder(*client, clock, "kubelet-policy-controller", f.events_namespace);
  Registry metrics;
  OperatorOptions opts;
  opts.workers = f.workers;
  opts.configz_timeout = std::chrono::milliseconds(f.configz_timeout_ns / 1'000'000);
  opts.scheduler.concurrency = f.configz_concurrency;
  opts.scheduler.qps = f.configz_qps;
  opts.remediation.job_namespace = f.remediation_namespace;
  if (!f.agent_image.empty()) {
    opts.remediation.image = f.agent_image;
  } else if (const char* env = std::getenv("AGENT_IMAGE"); env && *env) {
    opts.remediation.image = env;
  }
  opts.remediation.image_pull_policy = f.agent_image_pull_policy;
  {
    std::istringstream words(f.restart_command);
    for (std::string w; words >> w;) opts.remediation.restart_command.push_back(w);
  }
  for (const auto& p : f.extra_host_paths) opts.remediation.host_paths.push_back(p);
  opts.remediation.job_ttl_seconds = f.job_ttl_ns / 1'000'000'000;
  opts.file_audit_interval = std::chrono::seconds(std::max<int64_t>(f.file_audit_interval_ns / 1'000'000'000, 1));
  opts.remediation.audit_ttl_seconds = opts.file_audit_interval.count();
  opts.file_audit_qps = f.file_audit_qps;
  Operator op(*client, *events, metrics, clock, opts);

  // API request counts come from the client; mirrored into a counter at scrape time.
  auto& api_requests = metrics.AddCounter("kubeletpolicy_api_requests_total",
                                          "Requests to the Kubernetes API server by verb and HTTP code.",
                                          {"verb", "code"});
  std::mutex api_mu;
  std::map<std::pair<std::string, std::string>, uint64_t> api_seen;
  auto sync_api_counts = [&] {
    std::lock_guard<std::mutex> lock(api_mu);
    for (const auto& [k, n] : client->RequestCounts()) {
      uint64_t& seen = api_seen[k];
      if (n > seen) api_requests.WithLabels({k.first, k.second}).Inc(static_cast<double>(n - seen));
      seen = n;
    }
  };
  std::atomic<bool> is_leader{!f.leader_elect};
  metrics.AddCallbackGauge("kubeletpolicy_leader", "1 when this replica is the leader.",
                           [&] { return is_leader ? 1.0 : 0.0; });

  // ---- admission webhooks ----
  std::unique_ptr<webhooks::CachedConflictChecker> conflicts;
  std::unique_ptr<webhooks::WebhookServer> webhook_server;
  std::unique_ptr<webhooks::CertRotator> cert_rotator;
  std::unique_ptr<webhooks::CertReloader> cert_reloader;
  const auto sync_period = std::chrono::milliseconds(f.webhook_sync_period_ns / 1'000'000);
  if (!f.webhook_addr.empty()) {
    webhooks::WebhookServerOptions wo;
    wo.address = f.webhook_addr;
    webhooks::CertRotatorOptions ro;
    ro.ns = f.webhook_namespace;
    ro.secret_name = f.webhook_secret;
    ro.configuration_name = f.webhook_configuration;
    ro.settings.ca_validity_seconds = f.webhook_ca_validity_ns / 1'000'000'000;
    ro.settings.cert_validity_seconds = f.webhook_cert_validity_ns / 1'000'000'000;
    ro.settings.hosts = webhooks::ServiceHostNames(f.webhook_service, f.webhook_namespace);
    if (f.local_webhooks) {
      const std::string port = f.webhook_addr.substr(f.webhook_addr.rfind(':') + 1);
      if (port.empty() || port == "0" || port.find_first_not_of("0123456789") != std::string::npos) {
        spdlog::error("--local-webhooks needs a fixed port in --webhook-addr, got \"{}\"", f.webhook_addr);
        return 2;
      }
      wo.address = "127.0.0.1:" + port;
      ro.url_base = "https://127.0.0.1:" + port;
      ro.settings.hosts = {"127.0.0.1", "localhost"};
    }
    conflicts = std::make_unique<webhooks::CachedConflictChecker>([&op] { return op.CachedPolicies(); },
                                                             op.ParseCache());
    webhook_server = std::make_unique<webhooks::WebhookServer>(metrics, conflicts.get(), clock, wo);
    webhooks::PairSource source;
    if (f.webhook_cert_mode == "cert-manager") {
      source = webhooks::DirPairSource(f.webhook_cert_dir);
      spdlog::info("webhook certificates: cert-manager mode, serving from {}", f.webhook_cert_dir);
    } else {
      cert_rotator = std::make_unique<webhooks::CertRotator>(*client, clock, ro);
      source = [r = cert_rotator.get()] { return r->ReadServingPair(); };
      spdlog::info("webhook certificates: self-managed in Secret {}/{}{}", ro.ns, ro.secret_name,
                   f.local_webhooks ? "; local webhooks at " + ro.url_base : "");
    }
    cert_reloader = std::make_unique<webhooks::CertReloader>(source, *webhook_server, sync_period);
    cert_reloader->Start();
  }
  // The leader's certificate loop (self-managed mode), next to the reconcilers.
  auto rotate_certificates = [&](const std::function<bool()>& stop) {
    while (!stop()) {
      if (Status s = cert_rotator->SyncOnce(); !s.ok()) {
        spdlog::warn("webhook certificates: {} (retrying in {}s)", s.message(), sync_period.count() / 1000.0);
      }
      for (auto waited = std::chrono::milliseconds(0); waited < sync_period && !stop();
           waited += std::chrono::milliseconds(100)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  };
  // ---- end admission webhooks ----

  auto health = net::NewHttpServer(clock, f.health_addr);
  health->Handle("/healthz", [](const net::ServerRequest&) { return Text(200, "ok\n"); });
  health->Handle("/readyz", [&](const net::ServerRequest&) {
    if (!op.HasSynced()) return Text(503, "informer caches not synced yet\n");
    if (webhook_server && !webhook_server->Serving()) return Text(503, "webhook server has no serving certificate yet\n");
    return Text(200, "ok\n");
  });
  std::unique_ptr<net::HttpServer> metrics_server;
  auto metrics_handler = [&](const net::ServerRequest&) {
    sync_api_counts();
    return Text(200, metrics.Render(), std::string(kMetricsContentType));
  };
  if (f.metrics_addr == f.health_addr) {
    health->Handle("/metrics", metrics_handler);
  } else {
    metrics_server = net::NewHttpServer(clock, f.metrics_addr);
    metrics_server->Handle("/metrics", metrics_handler);
    if (Status s = metrics_server->Start(); !s.ok()) {
      spdlog::error("cannot serve metrics on {}: {}", f.metrics_addr, s.message());
      return 1;
    }
  }
  if (Status s = health->Start(); !s.ok()) {
    spdlog::error("cannot serve health checks on {}: {}", f.health_addr, s.message());
    return 1;
  }
  spdlog::info("serving /healthz and /readyz on port {}, /metrics on port {}", health->port(),
               metrics_server ? metrics_server->port() : health->port());

  op.Start();
  std::atomic<bool> shutting_down{false};
  std::thread leader_thread;
  std::unique_ptr<kube::LeaderElector> elector;
  auto lead = [&] {
    is_leader = true;
    auto stop = [&] { return shutting_down.load() || (elector && !elector->IsLeader()); };
    std::thread certs;
    if (cert_rotator) certs = std::thread([&] { rotate_certificates(stop); });
    op.RunLeader(stop);
    if (certs.joinable()) certs.join();
  };
  if (f.leader_elect) {
    kube::LeaderElectionConfig le;
    le.lease_namespace = f.lease_namespace;
    le.lease_name = f.lease_name;
    le.identity = Identity();
    le.lease_duration = std::chrono::milliseconds(f.lease_duration_ns / 1'000'000);
    le.renew_deadline = std::chrono::milliseconds(f.renew_deadline_ns / 1'000'000);
    le.retry_period = std::chrono::milliseconds(f.retry_period_ns / 1'000'000);
    spdlog::info("leader election: Lease {}/{} as {}", le.lease_namespace, le.lease_name, le.identity);
    elector = std::make_unique<kube::LeaderElector>(
        *client, clock, le, lead, [&] {
          is_leader = false;
          spdlog::warn("lost leadership: stopped reconciling");
        });
    elector->Start();
  } else {
    leader_thread = std::thread(lead);
  }

  while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {} received: shutting down", g_signal.load());
  shutting_down = true;
  if (elector) elector->Stop();  // releases the Lease so a successor takes over at once
  if (leader_thread.joinable()) leader_thread.join();
  op.Stop();
  if (cert_reloader) cert_reloader->Stop();
  if (webhook_server) webhook_server->Stop();
  health->Stop();
  if (metrics_server) metrics_server->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace kpc::cli
