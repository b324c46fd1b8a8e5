#pragma once
// Fencing for writes. A kube::Client given a MutationGate asks it right before it sends each
// POST, PUT, PATCH or DELETE — every retry included — and sends nothing when it refuses; reads
// and watches are never gated. A LeaderElector is the gate of a leader's writes
// (kube/leader_election.h); DecideMutation is its decision.
//
// Leader election gives no fencing token: a replica that was stopped (SIGSTOP, a frozen VM, a
// long pause) wakes up still believing it leads while another replica has taken the Lease over.
// The gate closes by the clock alone once the hold's renew deadline has passed, before the
// elector's own threads have noticed. A write already on the wire cannot be recalled, so every
// write must still be safe to repeat.
//
// MutationGate implementations are safe to call from any thread.

#include <chrono>
#include <string>

#include "base/status.h"

namespace kpc::kube {

class MutationGate {
 public:
  virtual ~MutationGate() = default;
  // OK when a write may be sent now; else kFailedPrecondition saying why not.
  virtual Status MayMutate() const = 0;
};

// What a replica knows of its own hold on a Lease.
struct LeaseHold {
  std::string lease;  // "namespace/name", for messages
  bool leader = false;
  // When the last successful acquire or renew started. The API server stored it later, and the
  // other replicas count the lease duration from when they saw it, later still.
  std::chrono::steady_clock::time_point renewed_at{};
  std::chrono::milliseconds renew_deadline{0};
};

// OK while the hold is the leader's and `now` is before renewed_at + renew_deadline; else
// kFailedPrecondition ("not the leader: ..."). Pure.
Status DecideMutation(const LeaseHold& hold, std::chrono::steady_clock::time_point now);

}  // namespace kpc::kube
