// The webhook HTTPS server alone, for scripts/bench-webhook.sh: generates a CA and a serving
// certificate for 127.0.0.1, writes them to DIR (ca.crt, tls.crt, tls.key, so that nginx can
// serve the same certificate), serves /validate-kubeletpolicy and /mutate-kubeletpolicy on
// 127.0.0.1:PORT exactly as `run` does, and prints "listening PORT CANNED_PORT" once ready.
// CANNED_PORT is the same HTTPS server (net::HttpServer, same certificate and limits) answering
// every POST with the answer to DIR/review.json computed once: the server without the
// AdmissionReview work, to compare with nginx. Before serving, it prints the single-thread cost
// of HandleValidate / HandleMutate on DIR/review.json ("handler validate_us=... mutate_us=...").
// Runs until SIGTERM/SIGINT.
//
//   bench_webhook_server DIR [PORT]

#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "base/metrics.h"
#include "net/http.h"
#include "webhooks/admission.h"
#include "webhooks/certs.h"
#include "webhooks/server.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_webhook_server DIR [PORT]\n";
    return 2;
  }
  const std::string dir = argv[1];
  const std::string port = argc > 2 ? argv[2] : "0";
  const kpc::RealClock clock;
  const int64_t now = clock.UnixSeconds();
  auto ca = kpc::webhooks::GenerateCa("bench-ca", now, 86400);
  auto leaf = kpc::webhooks::GenerateServingCert(*ca, {"127.0.0.1", "localhost"}, now, 86400);
  if (!ca.ok() || !leaf.ok()) {
    std::cerr << "certificate generation failed\n";
    return 1;
  }
  std::ofstream(dir + "/ca.crt") << ca->cert_pem;
  std::ofstream(dir + "/tls.crt") << leaf->cert_pem;
  std::ofstream(dir + "/tls.key") << leaf->key_pem;
  kpc::Registry metrics;
  kpc::webhooks::WebhookServerOptions opts;
  opts.address = "127.0.0.1:" + port;
  // The load generator keeps up to 256 connections busy and reconnects each one the server
  // closes after 1000 requests, a moment before that one's thread is gone: above the
  // production limit (256), which is sized to the pod's memory, not to this benchmark.
  opts.max_connections = 512;
  kpc::webhooks::WebhookServer server(metrics, nullptr, clock, opts);
  if (auto s = server.SetServingPair(*leaf); !s.ok()) {
    std::cerr << "start: " << s.message() << "\n";
    return 1;
  }
  std::ifstream in(dir + "/review.json");
  std::stringstream review;
  review << in.rdbuf();
  const std::string body = review.str();
  auto per_call_us = [&](auto&& fn) {
    const int n = 2000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) fn();
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
               .count() /
           n;
  };
  double validate_us = per_call_us([&] { (void)kpc::webhooks::HandleValidate(body); });
  double mutate_us = per_call_us([&] { (void)kpc::webhooks::HandleMutate(body); });
  std::cout << "handler validate_us=" << validate_us << " mutate_us=" << mutate_us << std::endl;

  kpc::net::TlsConfig tls;
  tls.client_cert_pem = leaf->cert_pem;
  tls.client_key_pem = leaf->key_pem;
  kpc::net::ServerOptions so;
  so.max_body_bytes = opts.max_body_bytes;
  so.max_connections = opts.max_connections;
  auto canned = kpc::net::NewHttpServer(clock, "127.0.0.1:0", tls, so);
  kpc::net::HttpResponse answer;
  answer.status = 200;
  answer.headers["content-type"] = "application/json";
  answer.body = kpc::webhooks::HandleValidate(body).body;
  canned->Handle("/validate-kubeletpolicy",
                 [&answer](const kpc::net::ServerRequest&) { return answer; });
  if (auto s = canned->Start(); !s.ok()) {
    std::cerr << "start: " << s.message() << "\n";
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::cout << "listening " << server.port() << " " << canned->port() << std::endl;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  canned->Stop();
  server.Stop();
  return 0;
}
