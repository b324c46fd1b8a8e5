// The cost of an HTTPS request that opens its own connection, as the controller's /configz
// fetches from many kubelets (each a different host) do: the cpprestsdk client
// (net::NewHttpClient) against the one-shot client (net::NewOneShotHttpsClient), both trusting
// one test CA (the --kubelet-certificate-authority case; the server certificate has the IP SAN
// 127.0.0.1).
//
// A child process runs N TLS servers (net::NewHttpServer) on 127.0.0.1, each on its own port,
// answering GET /configz with a 5 KiB body; the parent sends N sequential GETs per round, one
// to each port. Distinct ports are distinct URL authorities, so cpprestsdk opens a connection
// (and builds an SSL context) per request, as for distinct kubelets; a fresh cpprestsdk
// client per round keeps its per-host pools from serving a later round. The servers' CPU is
// in the child, so the CPU time measured (getrusage of the parent: user + system, all its
// threads) is the client's alone. Rounds alternate between the clients.
//
//   bench_https_client [N=200] [ROUNDS=3]

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "net/http.h"
#include "tests/net/test_certs.h"

namespace {

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Runs the servers; writes their ports (one per line) to `out_fd`, serves until `stop_fd`
// reads EOF.
[[noreturn]] void ServeInChild(const kpc::net::CertPair& pair, int n, int out_fd, int stop_fd) {
  const kpc::RealClock clock;
  kpc::net::TlsConfig serving;
  serving.client_cert_pem = pair.cert_pem;
  serving.client_key_pem = pair.key_pem;
  const std::string body = "{\"kubeletconfig\":{\"x\":\"" + std::string(5 * 1024, 'x') + "\"}}";
  kpc::net::ServerOptions opts;
  opts.max_connections = 4096;
  std::vector<std::unique_ptr<kpc::net::HttpServer>> servers;
  std::string ports;
  for (int i = 0; i < n; ++i) {
    auto s = kpc::net::NewHttpServer(clock, "127.0.0.1:0", serving, opts);
    s->Handle("/configz", [&body](const kpc::net::ServerRequest&) {
      kpc::net::HttpResponse r;
      r.status = 200;
      r.headers["Content-Type"] = "application/json";
      r.body = body;
      return r;
    });
    if (!s->Start().ok()) _exit(3);
    ports += std::to_string(s->port()) + "\n";
    servers.push_back(std::move(s));
  }
  if (write(out_fd, ports.data(), ports.size()) != static_cast<ssize_t>(ports.size())) _exit(4);
  close(out_fd);
  char c;
  while (read(stop_fd, &c, 1) > 0) {
  }
  for (auto& s : servers) s->Stop();
  _exit(0);
}

struct Totals {
  double cpu = 0, wall = 0;
  int requests = 0;
};

void Round(kpc::net::HttpClient& client, const std::vector<int>& ports, Totals* t) {
  const double cpu0 = CpuSeconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (int port : ports) {
    kpc::net::HttpRequest req;
    req.url = "https://127.0.0.1:" + std::to_string(port) + "/configz";
    req.timeout = std::chrono::seconds(10);
    req.headers["Accept"] = "application/json";
    auto resp = client.Send(req);
    if (!resp.ok() || resp->status != 200) {
      std::cerr << "request failed: "
                << (resp.ok() ? std::to_string(resp->status) : resp.status().message()) << "\n";
      std::exit(1);
    }
  }
  t->wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  t->cpu += CpuSeconds() - cpu0;
  t->requests += static_cast<int>(ports.size());
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  if (n < 1 || rounds < 1) {
    std::cerr << "usage: bench_https_client [N] [ROUNDS]\n";
    return 2;
  }
  // Before any thread exists in this process: the child starts its own.
  const kpc::net::CertPair pair = kpc::net::MakeSelfSigned("bench");
  int ports_pipe[2], stop_pipe[2];
  if (pipe(ports_pipe) != 0 || pipe(stop_pipe) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    close(ports_pipe[0]);
    close(stop_pipe[1]);
    ServeInChild(pair, n, ports_pipe[1], stop_pipe[0]);
  }
  close(ports_pipe[1]);
  close(stop_pipe[0]);
  std::string text;
  char buf[4096];
  for (ssize_t r; (r = read(ports_pipe[0], buf, sizeof buf)) > 0;) {
    text.append(buf, static_cast<size_t>(r));
  }
  std::vector<int> ports;
  for (size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    ports.push_back(std::stoi(text.substr(pos, nl - pos)));
  }
  if (static_cast<int>(ports.size()) != n) {
    std::cerr << "the servers did not start\n";
    return 1;
  }

  const kpc::RealClock clock;
  kpc::net::TlsConfig tls;
  tls.ca_pem = pair.cert_pem;
  // Warm-up (thread pools, lazy library set-up), not measured.
  {
    auto warm = kpc::net::NewHttpClient(clock, tls);
    Totals ignored;
    Round(*warm, {ports[0]}, &ignored);
  }
  auto oneshot = kpc::net::NewOneShotHttpsClient(clock, tls);
  {
    Totals ignored;
    Round(*oneshot, {ports[0]}, &ignored);
  }

  Totals cpprest, direct;
  for (int r = 0; r < rounds; ++r) {
    {
      auto client = kpc::net::NewHttpClient(clock, tls);
      Round(*client, ports, &cpprest);
    }  // its pooled connections close here, outside the measurement
    Round(*oneshot, ports, &direct);
  }

  close(stop_pipe[1]);
  int status = 0;
  waitpid(child, &status, 0);

  auto line = [](const char* name, const Totals& t) {
    std::printf("%-8s %6d requests  cpu %7.3f ms/request  wall %7.3f ms/request\n", name,
                t.requests, 1e3 * t.cpu / t.requests, 1e3 * t.wall / t.requests);
  };
  std::printf("new TLS connection per request, %d hosts (ports) x %d rounds, CA-verified\n", n,
              rounds);
  line("cpprest", cpprest);
  line("oneshot", direct);
  std::printf("cpu ratio cpprest/oneshot: %.1fx   wall ratio: %.1fx\n", cpprest.cpu / direct.cpu,
              cpprest.wall / direct.wall);
  return 0;
}
