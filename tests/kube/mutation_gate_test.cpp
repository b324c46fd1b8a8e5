// DecideMutation: the leader's write gate as a table over (leading, last renewal, deadline, now).

#include "kube/mutation_gate.h"

#include <gtest/gtest.h>

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

TEST(DecideMutationTest, OpenOnlyWhileLeadingWithinTheRenewDeadline) {
  const TimePoint renewed = TimePoint(1h);
  struct Case {
    std::string name;
    bool leader;
    std::chrono::milliseconds since_renewal;  // now - renewed_at
    bool open;
    std::string message;  // part of the refusal
  };
  const std::vector<Case> cases = {
      {"just renewed", true, 0ms, true, ""},
      {"well within", true, 2000ms, true, ""},
      {"1 ms before the deadline", true, 9999ms, true, ""},
      {"at the deadline", true, 10000ms, false, "was held until 0.0 s ago"},
      {"woke from a 30 s stop still believing it leads", true, 30000ms, false,
       "was held until 20.0 s ago (last renewed 30.0 s ago, renew deadline 10.0 s)"},
      {"not leading", false, 0ms, false, "lease kpc/lock is not held by this replica"},
      {"not leading, stale", false, 60000ms, false, "is not held by this replica"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    LeaseHold hold{"kpc/lock", c.leader, renewed, 10000ms};
    Status s = DecideMutation(hold, renewed + c.since_renewal);
    EXPECT_EQ(s.ok(), c.open);
    if (c.open) continue;
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message().rfind("not the leader: lease kpc/lock ", 0), 0u) << s.message();
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
}

TEST(DecideMutationTest, ANeverRenewedHoldIsClosed) {
  // The default hold: not leading, renewed "long ago".
  EXPECT_EQ(DecideMutation(LeaseHold{}, TimePoint(1h)).code(), StatusCode::kFailedPrecondition);
  LeaseHold leader_without_renewal{"a/b", true, TimePoint{}, 10000ms};
  EXPECT_FALSE(DecideMutation(leader_without_renewal, TimePoint(1h)).ok());
}

}  // namespace
}  // namespace kpc::kube
