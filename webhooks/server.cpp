#include "webhooks/server.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "policy/conflicts.h"
#include "policy/limits.h"
#include "policy/model.h"
#include "webhooks/cert_rotator.h"

namespace kpc::webhooks {
namespace {

// Admission latencies are sub-millisecond to a few milliseconds; the API server's timeout is 5s.
std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
}

net::HttpResponse PlainText(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.headers["content-type"] = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

std::string ReadFile(const std::string& path, bool* exists) {
  std::ifstream in(path, std::ios::binary);
  *exists = static_cast<bool>(in);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

WebhookServer::WebhookServer(Registry& metrics, const ConflictChecker* conflicts,
                             const Clock& clock, WebhookServerOptions options)
    : options_(std::move(options)),
      conflicts_(conflicts),
      clock_(clock),
      requests_(metrics.AddCounter(
          "kubeletpolicy_admission_requests_total",
          "AdmissionReview requests by webhook (validate, mutate), operation (CREATE, UPDATE, ...; "
          "\"unknown\" when unreadable) and result (allowed, denied, bad_request, error).",
          {"webhook", "operation", "result"})),
      latency_(metrics.AddHistogram(
          "kubeletpolicy_admission_duration_seconds",
          "Time to answer an AdmissionReview, by webhook (request body read to "
          "response ready).",
          {"webhook"}, LatencyBuckets())),
      input_rejected_(metrics.AddCounter(policy::kInputRejectedMetric, policy::kInputRejectedHelp,
                                         {"source", "limit"})),
      reloads_(metrics.AddCounter("kubeletpolicy_webhook_certificate_reloads_total",
                                  "Serving certificates loaded by the webhook server, by result.",
                                  {"result"})),
      refusals_(net::RefusalCounter(metrics, "webhook")) {}

WebhookServer::~WebhookServer() { Stop(); }

Status WebhookServer::SetServingPair(const KeyPairPem& pair) {
  if (Status s = CheckKeyPair(pair.cert_pem, pair.key_pem); !s.ok()) {
    reloads_.WithLabels({"error"}).Inc();
    return s;
  }
  auto certs = ParseCertificates(pair.cert_pem);
  if (!certs.ok()) return certs.status();
  const std::string fp = certs->front().fingerprint;
  std::lock_guard<std::mutex> lock(mu_);
  if (fp == current_fingerprint_) return Status::Ok();
  net::TlsConfig tls;
  tls.client_cert_pem = pair.cert_pem;
  tls.client_key_pem = pair.key_pem;
  if (!server_) {
    net::ServerOptions so;
    so.max_body_bytes = options_.max_body_bytes;
    so.body_too_large_status = 400;  // like every other unreadable AdmissionReview
    so.max_body_bytes_in_flight = options_.max_body_bytes_in_flight;
    so.max_connections = options_.max_connections;
    // The API server's heads are a few hundred bytes (a bearer token at most adds ~2 KB).
    so.head.max_request_line_bytes = 4 * 1024;
    so.head.max_header_count = 64;
    so.head.max_head_bytes = 16 * 1024;
    so.handshake_timeout = options_.handshake_timeout;
    so.request_timeout = options_.request_timeout;
    so.idle_timeout = options_.idle_timeout;
    so.on_refusal = refusals_;
    auto server = net::NewHttpServer(clock_, options_.address, tls, so);
    for (const char* path : {kValidatingWebhookPath, kMutatingWebhookPath}) {
      std::string p = path;
      server->Handle(p, [this, p](const net::ServerRequest& req) { return Serve(p, req); });
    }
    if (Status s = server->Start(); !s.ok()) {
      reloads_.WithLabels({"error"}).Inc();
      return s;
    }
    server_ = std::move(server);
    serving_ = true;
    spdlog::info("webhook server listening on port {} (https; certificate {} expires {})",
                 server_->port(), fp.substr(0, 16), certs->front().not_after);
  } else {
    if (Status s = server_->UpdateTls(tls); !s.ok()) {
      reloads_.WithLabels({"error"}).Inc();
      return s;
    }
    spdlog::info("webhook server: serving certificate reloaded (certificate {} expires {})",
                 fp.substr(0, 16), certs->front().not_after);
  }
  reloads_.WithLabels({"success"}).Inc();
  current_fingerprint_ = fp;
  return Status::Ok();
}

int WebhookServer::port() const {
  std::lock_guard<std::mutex> lock(mu_);
  return server_ ? server_->port() : 0;
}

void WebhookServer::Stop() {
  std::unique_ptr<net::HttpServer> server;
  {
    std::lock_guard<std::mutex> lock(mu_);
    server = std::move(server_);
    serving_ = false;
    current_fingerprint_.clear();
  }
  if (server) server->Stop();
}

net::HttpResponse WebhookServer::Serve(const std::string& path, const net::ServerRequest& req) {
  const auto start = clock_.Now();
  const bool validate = path == kValidatingWebhookPath;
  const std::string webhook = validate ? "validate" : "mutate";
  if (req.method != "POST") {
    requests_.WithLabels({webhook, "unknown", "bad_request"}).Inc();
    auto r =
        PlainText(405, "only POST of an admission.k8s.io/v1 AdmissionReview is accepted here\n");
    r.headers["allow"] = "POST";
    return r;
  }
  AdmissionResult result = validate ? HandleValidate(req.body, conflicts_) : HandleMutate(req.body);
  std::string outcome = result.http_status == 200  ? (result.allowed ? "allowed" : "denied")
                        : result.http_status < 500 ? "bad_request"
                                                   : "error";
  const std::string operation = result.operation.empty() ? "unknown" : result.operation;
  requests_.WithLabels({webhook, operation, outcome}).Inc();
  if (!result.limit.empty()) input_rejected_.WithLabels({"admission", result.limit}).Inc();
  latency_.WithLabels({webhook}).Observe(
      std::chrono::duration<double>(clock_.Now() - start).count());
  if (outcome != "allowed") {
    spdlog::info("admission {} {}: {} (HTTP {})", webhook, operation, outcome, result.http_status);
  }
  net::HttpResponse resp;
  resp.status = result.http_status;
  resp.headers["content-type"] = result.content_type;
  resp.body = std::move(result.body);
  return resp;
}

PairSource DirPairSource(const std::string& dir) {
  return [dir]() -> StatusOr<std::optional<KeyPairPem>> {
    bool cert_exists = false, key_exists = false;
    KeyPairPem pair{ReadFile(dir + "/tls.crt", &cert_exists),
                    ReadFile(dir + "/tls.key", &key_exists)};
    if (!cert_exists || !key_exists) return std::optional<KeyPairPem>();
    // A mounted Secret is swapped atomically, but two reads may straddle a swap: a mismatch is
    // reported and the next poll reads a consistent pair.
    if (Status s = CheckKeyPair(pair.cert_pem, pair.key_pem); !s.ok()) {
      return InvalidArgument(dir + "/tls.crt and tls.key: " + s.message());
    }
    return std::optional<KeyPairPem>(std::move(pair));
  };
}

CertReloader::CertReloader(PairSource source, WebhookServer& server,
                           std::chrono::milliseconds period)
    : source_(std::move(source)), server_(server), period_(period) {}

CertReloader::~CertReloader() { Stop(); }

Status CertReloader::PollOnce() {
  auto pair = source_();
  if (!pair.ok()) return pair.status();
  if (!*pair) return Status(StatusCode::kNotFound, "no serving certificate yet");
  return server_.SetServingPair(**pair);
}

void CertReloader::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      Status s = PollOnce();
      lock.lock();
      std::string err = s.ok() ? "" : s.message();
      if (err != last_error_) {
        if (!err.empty()) spdlog::warn("webhook serving certificate: {}", err);
        last_error_ = err;
      }
      // Until the first pair arrives (the leader may be creating it), look again every second.
      auto wait = server_.Serving()
                      ? period_
                      : std::min<std::chrono::milliseconds>(period_, std::chrono::seconds(1));
      cv_.wait_for(lock, wait, [this] { return stop_; });
    }
  });
}

void CertReloader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

CachedConflictChecker::CachedConflictChecker(std::function<std::vector<nlohmann::json>()> list,
                                             kpc::policy::PolicyParseCache& parses)
    : list_(std::move(list)), parses_(parses) {}

std::vector<std::string> CachedConflictChecker::Conflicts(
    const kpc::policy::KubeletPolicy& p) const {
  std::vector<kpc::policy::KubeletPolicy> others;
  for (const auto& obj : list_()) {
    auto parsed = parses_.Parse(obj);
    if (parsed->policy) others.push_back(*parsed->policy);
  }
  return policy::FindRemediationConflicts(p, others);
}

}  // namespace kpc::webhooks
