#pragma once
// What the long-running commands (`run`, `webhook`) share around their own work: the API
// client from the connection flags, /healthz /readyz /metrics, the API request counter, the
// leader's work started with or without a Lease — and the gate of the leader's writes — and the
// signals that stop the process.
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
#include <vector>

#include "base/clock.h"
#include "base/metrics.h"
#include "base/status.h"
#include "cli/common_flags.h"
#include "kube/client.h"
#include "kube/leader_election.h"
#include "kube/mutation_gate.h"
#include "net/http.h"

namespace kpc::cli {

std::chrono::milliseconds Millis(int64_t ns);

// Sets the process's SIGTERM and SIGINT handlers; WaitForStopSignal then blocks until one
// arrives and returns its number.
void InstallStopSignals();
int WaitForStopSignal();

// The client configuration the connection flags describe; logs which API server `component`
// talks to.
StatusOr<kube::ClientConfig> ApiClientConfig(const ConnectionFlags& flags,
                                             const std::string& component);

// The Lease settings of the flags, with a fresh identity (hostname and a random suffix).
kube::LeaderElectionConfig LeaderElectionFrom(const LeaderElectionFlags& flags);

// The clients' request counts, summed, mirrored into kubeletpolicy_api_requests_total at scrape
// time.
class ApiRequestMetrics {
 public:
  ApiRequestMetrics(Registry& metrics, const kube::Client& client);
  ApiRequestMetrics(Registry& metrics, std::vector<const kube::Client*> clients);
  void Sync();

 private:
  const std::vector<const kube::Client*> clients_;
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
//
// It is also the gate of the leader's writes: give it to the client the work writes with
// (kube::NewClient(clock, config, &leadership)). Without leader election the gate is always
// open; with it, open only while the Lease is held and renewed within the renew deadline
// (kube/mutation_gate.h). `lease_client` carries the Lease requests and must not be that gated
// client; a client of its own also keeps renewals from queueing behind the work's rate limit.
class Leadership final : public kube::MutationGate {
 public:
  using Work = std::function<void(const std::function<bool()>& stop)>;
  Leadership(std::optional<kube::LeaderElectionConfig> election, kube::Client& lease_client,
             const Clock& clock, std::string what_stops, std::atomic<bool>& is_leader);
  ~Leadership() override;

  // REQUIRES: called once.
  void Start(Work lead);
  // Ends the leader's work; releases the Lease so that a successor takes over at once.
  void Stop();
  Status MayMutate() const override;

 private:
  void Lead();

  const std::string what_stops_;  // logged when leadership is lost
  std::atomic<bool>& is_leader_;
  std::atomic<bool> shutting_down_{false};
  Work lead_;                                           // set by Start
  const std::unique_ptr<kube::LeaderElector> elector_;  // null without leader election
  std::thread thread_;
};

}  // namespace kpc::cli
