#include "kube/mutation_gate.h"

#include <cstdio>

namespace kpc::kube {
namespace {

std::string Seconds(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

Status DecideMutation(const LeaseHold& hold, std::chrono::steady_clock::time_point now) {
  if (!hold.leader) {
    return FailedPrecondition("not the leader: lease " + hold.lease +
                              " is not held by this replica");
  }
  const auto held_until = hold.renewed_at + hold.renew_deadline;
  if (now >= held_until) {
    return FailedPrecondition("not the leader: lease " + hold.lease + " was held until " +
                              Seconds(now - held_until) + " ago (last renewed " +
                              Seconds(now - hold.renewed_at) + " ago, renew deadline " +
                              Seconds(hold.renew_deadline) + ")");
  }
  return Status::Ok();
}

}  // namespace kpc::kube
