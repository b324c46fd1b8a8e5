// The limits of the /healthz, /readyz and /metrics servers (ProbeServerOptions), over a real
// server on 127.0.0.1:0 and raw sockets: GET and HEAD only, no bodies, small heads, refusals
// counted by reason. Leadership as the gate of the leader's writes; the request counts of
// several clients summed.

#include "cli/process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "tests/kube/fake_client.h"

namespace kpc::cli {
namespace {

// Sends `raw` on a new connection; returns what came back until the server closed it (3 s at
// most).
std::string Exchange(int port, const std::string& raw) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL), static_cast<ssize_t>(raw.size()));
  std::string out;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 3000) > 0) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(ProbeServerOptionsTest, OnlyBodilessGetsAndHeadsWithSmallHeadsAreServed) {
  RealClock clock;
  Registry metrics;
  auto server =
      net::NewHttpServer(clock, "127.0.0.1:0", std::nullopt, ProbeServerOptions(metrics, "health"));
  server->Handle("/healthz", [](const net::ServerRequest&) {
    net::HttpResponse r;
    r.status = 200;
    r.body = "ok\n";
    return r;
  });
  ASSERT_TRUE(server->Start().ok());
  const std::string close = "Host: x\r\nConnection: close\r\n";
  struct Case {
    std::string name, raw, status_line;
  } cases[] = {
      {"GET", "GET /healthz HTTP/1.1\r\n" + close + "\r\n", "HTTP/1.1 200 OK"},
      {"HEAD", "HEAD /healthz HTTP/1.1\r\n" + close + "\r\n", "HTTP/1.1 200 OK"},
      {"POST with a body", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
       "HTTP/1.1 405 Method Not Allowed"},
      {"PUT without a body", "PUT /healthz HTTP/1.1\r\n" + close + "\r\n",
       "HTTP/1.1 405 Method Not Allowed"},
      {"GET with a body", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
       "HTTP/1.1 413 Payload Too Large"},
      {"GET chunked",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       "HTTP/1.1 413 Payload Too Large"},
      {"a 5 KiB header line", "GET /healthz HTTP/1.1\r\nX: " + std::string(5000, 'v') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"a 3 KiB request line", "GET /healthz?" + std::string(3000, 'q') + " HTTP/1.1\r\n\r\n",
       "HTTP/1.1 414 URI Too Long"},
  };
  for (const auto& c : cases) {
    std::string resp = Exchange(server->port(), c.raw);
    EXPECT_EQ(resp.substr(0, c.status_line.size()), c.status_line) << c.name << ": " << resp;
  }
  EXPECT_EQ(Exchange(server->port(), "HEAD /healthz HTTP/1.1\r\n" + close + "\r\n").find("ok\n"),
            std::string::npos);
  server->Stop();
  const std::string m = metrics.Render();
  const std::string family = "kubeletpolicy_http_requests_refused_total";
  EXPECT_NE(m.find(family + R"({server="health",reason="method_not_allowed"} 2)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(family + R"({server="health",reason="body_not_allowed"} 2)"), std::string::npos)
      << m;
  EXPECT_NE(m.find(family + R"({server="health",reason="header_too_large"} 1)"), std::string::npos)
      << m;
  EXPECT_NE(m.find(family + R"({server="health",reason="uri_too_long"} 1)"), std::string::npos)
      << m;
}

using namespace std::chrono_literals;

TEST(LeadershipTest, WithoutLeaderElectionTheGateIsOpenAndTheWorkRunsAtOnce) {
  kube::testing::FakeKube lease_client;
  FakeClock clock;
  std::atomic<bool> is_leader{false};
  Leadership leadership(std::nullopt, lease_client, clock, "working", is_leader);
  EXPECT_TRUE(leadership.MayMutate().ok());
  std::atomic<bool> ran{false};
  leadership.Start([&](const std::function<bool()>& stop) {
    ran = true;
    while (!stop()) std::this_thread::sleep_for(5ms);
  });
  ASSERT_TRUE(kube::testing::WaitFor([&] { return ran.load(); }));
  EXPECT_TRUE(is_leader);
  leadership.Stop();
  EXPECT_TRUE(leadership.MayMutate().ok());
  EXPECT_TRUE(lease_client.Calls().empty()) << "no Lease";
}

TEST(LeadershipTest, WithLeaderElectionTheGateIsOpenOnlyWhileHoldingTheLease) {
  kube::testing::FakeKube lease_client;
  FakeClock clock;
  std::atomic<bool> is_leader{false};
  kube::LeaderElectionConfig election;
  election.lease_namespace = "kpc";
  election.lease_name = "lock";
  election.identity = "me";
  election.lease_duration = 1000ms;
  election.renew_deadline = 600ms;
  election.retry_period = 50ms;
  Leadership leadership(election, lease_client, clock, "working", is_leader);
  Status before = leadership.MayMutate();
  EXPECT_EQ(before.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(before.message().find("not the leader: lease kpc/lock"), std::string::npos);
  std::atomic<bool> leading{false};
  leadership.Start([&](const std::function<bool()>& stop) {
    leading = true;
    while (!stop()) std::this_thread::sleep_for(5ms);
    leading = false;
  });
  ASSERT_TRUE(kube::testing::WaitFor([&] { return leading.load(); }));
  EXPECT_TRUE(leadership.MayMutate().ok());
  // The Lease's own requests went through the lease client, which has no gate.
  EXPECT_FALSE(lease_client.Calls().empty());
  lease_client.fail_all = true;  // renewals fail from now on
  clock.Advance(600ms);
  EXPECT_EQ(leadership.MayMutate().code(), StatusCode::kFailedPrecondition)
      << "closed at the deadline, before the elector declares the loss";
  clock.Advance(1ms);
  ASSERT_TRUE(kube::testing::WaitFor([&] { return !leading.load(); }));
  EXPECT_FALSE(is_leader);
  leadership.Stop();
  EXPECT_FALSE(leadership.MayMutate().ok());
}

TEST(ApiRequestMetricsTest, SumsTheClientsCounts) {
  class Counting : public kube::testing::FakeKube {
   public:
    explicit Counting(std::map<std::pair<std::string, std::string>, uint64_t> c)
        : counts(std::move(c)) {}
    std::map<std::pair<std::string, std::string>, uint64_t> RequestCounts() const override {
      return counts;
    }
    std::map<std::pair<std::string, std::string>, uint64_t> counts;
  };
  Counting work({{{"POST", "201"}, 2}, {{"GET", "200"}, 5}});
  Counting lease({{{"PUT", "200"}, 3}, {{"GET", "200"}, 1}});
  Registry metrics;
  ApiRequestMetrics api(metrics, {&work, &lease});
  api.Sync();
  work.counts[{"GET", "200"}] = 7;
  api.Sync();
  const std::string out = metrics.Render();
  EXPECT_NE(out.find("kubeletpolicy_api_requests_total{verb=\"GET\",code=\"200\"} 8"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("kubeletpolicy_api_requests_total{verb=\"PUT\",code=\"200\"} 3"),
            std::string::npos);
  EXPECT_NE(out.find("kubeletpolicy_api_requests_total{verb=\"POST\",code=\"201\"} 2"),
            std::string::npos);
}

}  // namespace
}  // namespace kpc::cli
