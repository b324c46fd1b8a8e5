#pragma once
// Leader election with a coordination.k8s.io/v1 Lease (client-go semantics): acquire when the
// lease is free or expired, renew every retry_period, give up leadership when it cannot renew
// within renew_deadline. Leader election gives no fencing: every write must be safe to repeat.
// Expiry and the renew deadline are measured on the given Clock, which also stamps the Lease's
// acquireTime/renewTime; the retry period is waited in real time. The Clock and the Client must
// outlive the elector. Thread-safe.
//
// The elector is also the MutationGate of the leader's writes (kube/mutation_gate.h): open only
// while it leads and its last renewal is younger than renew_deadline, on the clock alone — so a
// replica that wakes from a stop closes the gate before the watchdog has declared the loss.
// Its own Lease requests must go through a client without that gate.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.h"
#include "kube/client.h"
#include "kube/mutation_gate.h"

namespace kpc::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name = "kubelet-policy-controller";
  std::string identity;  // unique per replica (hostname + random suffix)
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

class LeaderElector final : public MutationGate {
 public:
  // on_started_leading runs on its own thread when this replica becomes leader; the stop
  // callback passed to it returns true as soon as leadership is lost (checked by workers).
  // on_stopped_leading runs when leadership is lost (at once, before any further write).
  LeaderElector(Client& client, const Clock& clock, LeaderElectionConfig config,
                std::function<void()> on_started_leading, std::function<void()> on_stopped_leading);
  ~LeaderElector() override;
  void Start();
  void Stop();  // releases the lease if held (so a successor need not wait for expiry)
  bool IsLeader() const;
  // This replica's hold on the Lease: leading or not, and when its last renewal started.
  LeaseHold Hold() const;
  // DecideMutation(Hold(), clock.Now()).
  Status MayMutate() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpc::kube
