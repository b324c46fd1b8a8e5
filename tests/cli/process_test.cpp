// The limits of the /healthz, /readyz and /metrics servers (ProbeServerOptions), over a real
// server on 127.0.0.1:0 and raw sockets: GET and HEAD only, no bodies, small heads, refusals
// counted by reason.

#include "cli/process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

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

}  // namespace
}  // namespace kpc::cli
