#include "cli/webhook_command.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "base/clock.h"
#include "base/logging.h"
#include "base/metrics.h"
#include "cli/process.h"
#include "cli/webhook_flags.h"
#include "controller/policy_index.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "policy/parse_cache.h"
#include "webhooks/cert_rotator.h"
#include "webhooks/certs.h"
#include "webhooks/server.h"

namespace kpc::cli {
namespace {

using nlohmann::json;

constexpr const char* kComponent = "kubelet-policy-controller-webhook";

// The policies the conflict warnings compare with, kept by this process (it shares nothing
// with the operator). Policies are small; everything but managedFields is kept.
std::unique_ptr<kube::Informer> NewPolicyInformer(kube::Client& client, const Clock& clock,
                                                  policy::PolicyParseCache& parses) {
  kube::InformerOptions o;
  o.list_path = controller::kPolicyPath;
  o.transform = [](const json& obj) {
    json out = obj;
    if (out.contains("metadata") && out["metadata"].is_object()) {
      out["metadata"].erase("managedFields");
    }
    return out;
  };
  kube::InformerHandlers h;
  h.on_delete = [&parses](const json& obj) { parses.Forget(kube::Informer::KeyOf(obj)); };
  return std::make_unique<kube::Informer>(client, clock, o, h);
}

webhooks::CertRotatorOptions CertRotatorOptionsFrom(const WebhookServerFlags& f,
                                                    kube::EventRecorder& events) {
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
  ro.on_secret_written = [&events, ns = ro.ns,
                          name = ro.secret_name](const std::vector<std::string>& reasons) {
    std::string message;
    for (const auto& r : reasons) message += (message.empty() ? "" : "; ") + r;
    events.Record({"v1", "Secret", name, ns, ""}, "Normal", "WebhookCertificatesUpdated", message);
  };
  return ro;
}

// The admission server, the policies it reads and where its serving pair comes from.
struct Admission {
  policy::PolicyParseCache parses;
  std::unique_ptr<kube::Informer> policies;
  std::unique_ptr<webhooks::CachedConflictChecker> conflicts;
  std::unique_ptr<webhooks::WebhookServer> server;
  std::unique_ptr<webhooks::CertRotator> rotator;  // self-managed mode: the leader's
  std::unique_ptr<webhooks::CertReloader> reloader;

  std::optional<std::string> NotReady() const {
    if (!policies->HasSynced()) return "KubeletPolicies not listed yet";
    if (!server->Serving()) return "webhook server has no serving certificate yet";
    return std::nullopt;
  }

  void Stop() {
    reloader->Stop();
    server->Stop();
    policies->Stop();
  }
};

std::unique_ptr<Admission> StartAdmission(const WebhookServerFlags& f, kube::Client& client,
                                          kube::EventRecorder& events, Registry& metrics,
                                          const Clock& clock) {
  auto a = std::make_unique<Admission>();
  a->policies = NewPolicyInformer(client, clock, a->parses);
  a->conflicts = std::make_unique<webhooks::CachedConflictChecker>(
      [p = a->policies.get()] { return p->List(); }, a->parses);
  webhooks::WebhookServerOptions wo;
  wo.address = f.local_webhooks ? "127.0.0.1:" + LocalWebhookPort(f.webhook_addr).value_or("")
                                : f.webhook_addr;
  a->server = std::make_unique<webhooks::WebhookServer>(metrics, a->conflicts.get(), clock, wo);
  webhooks::PairSource source;
  if (f.webhook_cert_mode == "cert-manager") {
    source = webhooks::DirPairSource(f.webhook_cert_dir);
    spdlog::info("webhook certificates: cert-manager mode, serving from {}", f.webhook_cert_dir);
  } else {
    const webhooks::CertRotatorOptions ro = CertRotatorOptionsFrom(f, events);
    a->rotator = std::make_unique<webhooks::CertRotator>(client, clock, ro);
    source = [r = a->rotator.get()] { return r->ReadServingPair(); };
    spdlog::info("webhook certificates: self-managed in Secret {}/{}{}", ro.ns, ro.secret_name,
                 f.local_webhooks ? "; local webhooks at " + ro.url_base : "");
  }
  a->policies->Start();
  a->reloader = std::make_unique<webhooks::CertReloader>(source, *a->server,
                                                         Millis(f.webhook_sync_period_ns));
  a->reloader->Start();
  return a;
}

// The leader's certificate loop (self-managed mode). Every pass is a full, idempotent sync, so
// a pass that overlaps a new leader's first one does no harm.
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

// Who writes the certificates: the Lease holder in self-managed mode (every replica at once
// without --leader-elect); nobody in cert-manager mode (no Leadership, no Lease).
std::unique_ptr<Leadership> CertificateLeadership(const WebhookFlags& f, kube::Client& lease_client,
                                                  const Clock& clock,
                                                  std::atomic<bool>& is_leader) {
  if (f.server.webhook_cert_mode == "cert-manager") {
    spdlog::info("cert-manager mode: this process writes nothing, so it takes no Lease");
    return nullptr;
  }
  auto election =
      f.election.leader_elect ? std::optional(LeaderElectionFrom(f.election)) : std::nullopt;
  return std::make_unique<Leadership>(election, lease_client, clock,
                                      "writing the webhook certificates", is_leader);
}

// Serves the webhooks with flags that were read and checked, until a signal.
int Serve(const WebhookFlags& f) {
  RealClock clock;  // outlives everything below
  auto config = ApiClientConfig(f.connection, kComponent);
  if (!config.ok()) {
    spdlog::error("cannot configure the Kubernetes client: {}", config.status().message());
    return 2;
  }
  // The Lease goes through a client of its own; the Secret, the webhook configurations and the
  // Events are written only while this replica holds the Lease (the gate of `leadership`).
  auto lease_client = kube::NewClient(clock, *config);
  std::atomic<bool> is_leader{false};
  std::unique_ptr<Leadership> leadership =
      CertificateLeadership(f, *lease_client, clock, is_leader);
  auto client = kube::NewClient(clock, *config, leadership.get());
  kube::Client& api = *client;
  InstallStopSignals();

  // Events about the Secret, a namespaced object: they go to its namespace.
  auto events = kube::NewEventRecorder(api, clock, kComponent, f.server.webhook_namespace);
  Registry metrics;
  ApiRequestMetrics api_requests(metrics, {&api, lease_client.get()});
  metrics.AddCallbackGauge("kubeletpolicy_webhook_leader",
                           "1 when this replica writes the self-managed webhook certificates.",
                           [&is_leader] { return is_leader ? 1.0 : 0.0; });
  std::unique_ptr<Admission> admission = StartAdmission(f.server, api, *events, metrics, clock);
  auto endpoints = Endpoints::Serve(
      f.serving, [&admission] { return admission->NotReady(); }, metrics, api_requests, clock);
  if (!endpoints.ok()) {
    spdlog::error("{}", endpoints.status().message());
    admission->Stop();
    return 1;
  }
  if (leadership) {
    const auto period = Millis(f.server.webhook_sync_period_ns);
    leadership->Start(
        [rotator = admission->rotator.get(), period](const std::function<bool()>& stop) {
          RotateCertificates(*rotator, period, stop);
        });
  }

  spdlog::info("signal {} received: shutting down", WaitForStopSignal());
  if (leadership) leadership->Stop();
  admission->Stop();
  (*endpoints)->Stop();
  events->Flush(std::chrono::seconds(2));
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int RunWebhook(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto line = ParseWebhookFlags(args);
  if (!line.ok()) return ReportUsageError(err, line.status(), "kubelet-policy-controller webhook");
  if (line->help) {
    out << *line->help;
    return 0;
  }
  const WebhookFlags& f = line->flags;
  if (Status s = SetUpLogging(f.logging.log_format, f.logging.log_level); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 2;
  }
  return Serve(f);
}

}  // namespace kpc::cli
