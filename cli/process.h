#pragma once
// What the long-running commands (`run`, `webhook`) share around their own work: the API
// client from the connection flags, /healthz /readyz /metrics, the API request counter, the
// leader's work started with or without a Lease, and the signals that stop the process.
//
// Threading: InstallStopSignals and WaitForStopSignal belong to the main thread; the classes
// are safe to use from the threads they start. Every reference passed in must outlive the
// object it is passed to.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "base/clock.h"
#include "base/metrics.h"
#include "base/status.h"
#include "cli/common_flags.h"
#include "kube/client.h"
#include "kube/leader_election.h"
#include "net/http.h"

namespace kpc::cli {

std::chrono::milliseconds Millis(int64_t ns);

// Sets the process's SIGTERM and SIGINT handlers; WaitForStopSignal then blocks until one
// arrives and returns its number.
void InstallStopSignals();
int WaitForStopSignal();

// The client configuration the connection flags describe; logs which API server `component`
// talks to.
StatusOr<kube::ClientConfig> ApiClientConfig(const ConnectionFlags& flags, const std::string& component);
// A client with that configuration.
StatusOr<std::unique_ptr<kube::Client>> NewApiClient(const ConnectionFlags& flags,
                                                     const Clock& clock,
                                                     const std::string& component);

// The Lease settings of the flags, with a fresh identity (hostname and a random suffix).
kube::LeaderElectionConfig LeaderElectionFrom(const LeaderElectionFlags& flags);

// The client's request counts, mirrored into kubeletpolicy_api_requests_total at scrape time.
class ApiRequestMetrics {
 public:
  ApiRequestMetrics(Registry& metrics, const kube::Client& client);
  void Sync();

 private:
  const kube::Client& client_;
  CounterFamily& counter_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> seen_;
};

// The limits of the /healthz, /readyz and /metrics servers: they get GETs from the kubelet and
// Prometheus with a few short headers, never a body. GET and HEAD only (405), no body (413),
// heads of at most 8 KiB, 64 connections — a flood of connections or slow clients costs a few
// MB (64 x (~30 KiB + 8 KiB head + 16 KiB read)) — and refusals counted in `metrics` under
// server="<server>".
net::ServerOptions ProbeServerOptions(Registry& metrics, const std::string& server);

// Why the process is not ready yet (the /readyz body), or nullopt when it is.
using Readiness = std::function<std::optional<std::string>()>;

// /healthz and /readyz, and /metrics on the same server or its own: GET and HEAD only, no
// request bodies, small head limits; refusals are counted in `metrics`
// (kubeletpolicy_http_requests_refused_total{server="health"|"metrics"}). Logs the ports as
// "serving /healthz and /readyz on port H, /metrics on port M" (tests read that line).
class Endpoints {
 public:
  static StatusOr<std::unique_ptr<Endpoints>> Serve(const ServingFlags& flags, Readiness ready,
                                                    Registry& metrics,
                                                    ApiRequestMetrics& api_requests,
                                                    const Clock& clock);
  ~Endpoints();  // stops
  void Stop();   // idempotent

 private:
  Endpoints() = default;
  std::unique_ptr<net::HttpServer> health_;
  std::unique_ptr<net::HttpServer> metrics_;  // null when --metrics-addr is --health-addr
};

// The leader's work, `lead(stop)`, which must return once `stop()` is true. It runs at once
// without leader election, else each time this replica wins the Lease; `is_leader` follows.
class Leadership {
 public:
  using Work = std::function<void(const std::function<bool()>& stop)>;
  Leadership(std::optional<kube::LeaderElectionConfig> election, kube::Client& client,
             const Clock& clock, Work lead, std::string what_stops, std::atomic<bool>& is_leader);
  ~Leadership();

  void Start();
  // Ends the leader's work; releases the Lease so that a successor takes over at once.
  void Stop();

 private:
  void Lead();

  const std::optional<kube::LeaderElectionConfig> election_;
  kube::Client& client_;
  const Clock& clock_;
  const Work lead_;
  const std::string what_stops_;  // logged when leadership is lost
  std::atomic<bool>& is_leader_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<kube::LeaderElector> elector_;
  std::thread thread_;
};

}  // namespace kpc::cli
