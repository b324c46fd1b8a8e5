// The webhook HTTPS server on 127.0.0.1:0: TLS 1.2+ only, hot reload of the serving certificate
// without dropping connections, body size limit, clear 4xx answers, metrics, the reloader
// reading a certificate directory, and its limits against hostile clients (body budget,
// deadlines, connection limit) with the refusals counted by reason.

#include "webhooks/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "webhooks/cert_rotator.h"

namespace kpc::webhooks {
namespace {

using nlohmann::json;

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

struct Pki {
  KeyPairPem ca;
  KeyPairPem leaf;
};

Pki MakePki(const std::string& cn) {
  auto ca = GenerateCa(cn, Now(), 86400);
  auto leaf = GenerateServingCert(*ca, {"127.0.0.1", "localhost"}, Now(), 3600);
  return {*ca, *leaf};
}

// A raw TLS client connection (so the test controls keep-alive and sees the peer certificate).
class TlsConn {
 public:
  TlsConn(int port, const std::string& ca_pem, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (max_version) SSL_CTX_set_max_proto_version(ctx_, max_version);
    BIO* b = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
    while (X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), x);
      X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error();
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "127.0.0.1");
    ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsConn() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  int fd() const { return fd_; }
  bool Send(const std::string& data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }
  // Whether an answer (or the close) is waiting within `ms`. TLS 1.3 session tickets also make
  // the socket readable: they are consumed here and do not count.
  bool Readable(int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      if (SSL_pending(ssl_) > 0) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      const int flags = fcntl(fd_, F_GETFL);
      fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
      char c;
      const int r = SSL_peek(ssl_, &c, 1);
      const int err = SSL_get_error(ssl_, r);
      fcntl(fd_, F_SETFL, flags);
      ERR_clear_error();
      if (r > 0 || err != SSL_ERROR_WANT_READ) return true;  // data, or the close
    }
  }
  // Everything until the server closes the connection (or `ms` pass without a byte).
  std::string ReadUntilClose(int ms) {
    std::string out;
    char buf[16384];
    while (Readable(ms)) {
      int r = SSL_read(ssl_, buf, sizeof buf);
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    ERR_clear_error();
    return out;
  }
  std::string PeerFingerprint() {
    X509* x = SSL_get1_peer_certificate(ssl_);
    if (!x) return "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    X509_digest(x, EVP_sha256(), md, &n);
    X509_free(x);
    std::string s;
    char buf[3];
    for (unsigned i = 0; i < n; ++i) {
      std::snprintf(buf, sizeof buf, "%02x", md[i]);
      s += buf;
    }
    return s;
  }
  // Sends one request and reads one response (Content-Length framed); "" on failure.
  std::string RoundTrip(const std::string& method, const std::string& path, const std::string& body,
                        const std::string& extra_headers = "") {
    std::string req = method + " " + path +
                      " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra_headers +
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return "";
    std::string resp;
    char buf[16384];
    for (;;) {
      auto head_end = resp.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        auto cl = resp.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) {
          size_t n = std::stoul(resp.substr(cl + 16));
          if (resp.size() >= head_end + 4 + n) return resp.substr(0, head_end + 4 + n);
        }
      }
      int r = SSL_read(ssl_, buf, sizeof buf);
      if (r <= 0) return resp;
      resp.append(buf, static_cast<size_t>(r));
    }
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
};

std::string Review(const std::string& uid, const std::string& op, const json& object) {
  json r = {{"apiVersion", "admission.k8s.io/v1"},
            {"kind", "AdmissionReview"},
            {"request",
             {{"uid", uid},
              {"kind",
               {{"group", "kubeletpolicy.io"}, {"version", "v1alpha1"}, {"kind", "KubeletPolicy"}}},
              {"operation", op},
              {"dryRun", true},
              {"object", object}}}};
  return r.dump();
}

json Policy(const std::string& name, const json& rules) {
  return {{"apiVersion", "kubeletpolicy.io/v1alpha1"},
          {"kind", "KubeletPolicy"},
          {"metadata", {{"name", name}}},
          {"spec", {{"rules", rules}}}};
}

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = MakePki("ca-1");
    WebhookServerOptions o;
    o.address = "127.0.0.1:0";
    o.max_body_bytes = 64 * 1024;
    server_ = std::make_unique<WebhookServer>(metrics_, nullptr, clock_, o);
    ASSERT_TRUE(server_->SetServingPair(pki_.leaf).ok());
    ASSERT_TRUE(server_->Serving());
    port_ = server_->port();
  }
  RealClock clock_;
  Registry metrics_;
  Pki pki_;
  std::unique_ptr<WebhookServer> server_;
  int port_ = 0;
};

TEST_F(WebhookServerTest, ValidatesOverTlsAndEchoesUid) {
  TlsConn c(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(c.ok());
  json bad = Policy(
      "p", {{{"id", "a"},
             {"config",
              {{"path", "rotateCertificates"}, {"operator", "GreaterThan"}, {"value", true}}}}});
  std::string resp =
      c.RoundTrip("POST", "/validate-kubeletpolicy", Review("uid-123", "CREATE", bad));
  ASSERT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
  json body = json::parse(resp.substr(resp.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["response"]["uid"], "uid-123");
  EXPECT_EQ(body["response"]["allowed"], false);
  EXPECT_NE(body["response"]["status"]["message"].get<std::string>().find(
                "spec.rules[0].config.operator"),
            std::string::npos);
  // The same connection serves the mutating webhook too (keep-alive).
  resp = c.RoundTrip("POST", "/mutate-kubeletpolicy", Review("uid-124", "CREATE", bad));
  ASSERT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
  EXPECT_NE(resp.find("\"uid\":\"uid-124\""), std::string::npos);

  const std::string m = metrics_.Render();
  EXPECT_NE(
      m.find(
          R"(kubeletpolicy_admission_requests_total{webhook="validate",operation="CREATE",result="denied"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          R"(kubeletpolicy_admission_requests_total{webhook="mutate",operation="CREATE",result="allowed"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(kubeletpolicy_admission_duration_seconds_count{webhook="validate"} 1)"),
            std::string::npos)
      << m;
}

TEST_F(WebhookServerTest, MalformedAndOversizedRequestsGetClearErrors) {
  TlsConn c(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(c.ok());
  std::string resp = c.RoundTrip("POST", "/validate-kubeletpolicy", "{not json");
  EXPECT_NE(resp.find("HTTP/1.1 400"), std::string::npos) << resp;
  EXPECT_NE(resp.find("not valid JSON"), std::string::npos) << resp;
  resp = c.RoundTrip("GET", "/validate-kubeletpolicy", "");
  EXPECT_NE(resp.find("HTTP/1.1 405"), std::string::npos) << resp;
  resp = c.RoundTrip("POST", "/other", "{}");
  EXPECT_NE(resp.find("HTTP/1.1 404"), std::string::npos) << resp;

  TlsConn big(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(big.ok());
  resp = big.RoundTrip("POST", "/validate-kubeletpolicy", std::string(100 * 1024, ' '));
  EXPECT_NE(resp.find("HTTP/1.1 400"), std::string::npos) << resp;
  EXPECT_NE(resp.find("the limit is 65536 bytes"), std::string::npos) << resp;
  // The bad JSON and the GET; the oversized body is refused before any handler runs.
  EXPECT_NE(
      metrics_.Render().find(
          R"(kubeletpolicy_admission_requests_total{webhook="validate",operation="unknown",result="bad_request"} 2)"),
      std::string::npos)
      << metrics_.Render();

  // A body the server lets through but that nests too deeply: 400, counted as refused by a limit.
  resp = c.RoundTrip("POST", "/validate-kubeletpolicy",
                     std::string(10'000, '[') + std::string(10'000, ']'));
  EXPECT_NE(resp.find("HTTP/1.1 400"), std::string::npos) << resp.substr(0, 300);
  EXPECT_NE(resp.find("nests deeper than 100 levels"), std::string::npos) << resp.substr(0, 300);
  EXPECT_NE(metrics_.Render().find(
                R"(kubeletpolicy_input_rejected_total{source="admission",limit="depth"} 1)"),
            std::string::npos)
      << metrics_.Render();

  // The server is still fine.
  TlsConn again(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(again.ok());
  resp = again.RoundTrip("POST", "/mutate-kubeletpolicy",
                         Review("u", "CREATE", Policy("p", json::array())));
  EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
}

TEST_F(WebhookServerTest, LastAnswerOnAConnectionSaysClose) {
  // The server serves 1000 requests per connection; the 1000th answer must announce the close,
  // or a keep-alive client (the API server) would send a POST into a closing connection.
  TlsConn c(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(c.ok());
  const std::string review = Review("u", "DELETE", json::object());
  std::string resp;
  for (int i = 1; i <= 1000; ++i) {
    resp = c.RoundTrip("POST", "/mutate-kubeletpolicy", review);
    ASSERT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << "request " << i << ": " << resp;
    if (i < 1000) {
      ASSERT_NE(resp.find("Connection: keep-alive"), std::string::npos) << i;
    }
  }
  EXPECT_NE(resp.find("Connection: close"), std::string::npos) << resp;
}

TEST_F(WebhookServerTest, RefusesTls11) {
  TlsConn old(port_, pki_.ca.cert_pem, TLS1_1_VERSION);
  EXPECT_FALSE(old.ok());
  TlsConn tls12(port_, pki_.ca.cert_pem, TLS1_2_VERSION);
  EXPECT_TRUE(tls12.ok());
}

TEST_F(WebhookServerTest, HotReloadKeepsOpenConnectionsAndNewOnesGetTheNewCert) {
  TlsConn before(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(before.ok());
  const std::string old_fp = before.PeerFingerprint();
  ASSERT_NE(before
                .RoundTrip("POST", "/mutate-kubeletpolicy",
                           Review("1", "CREATE", Policy("p", json::array())))
                .find("HTTP/1.1 200"),
            std::string::npos);

  Pki next = MakePki("ca-2");
  ASSERT_TRUE(server_->SetServingPair(next.leaf).ok());
  EXPECT_EQ(server_->port(), port_);

  // The connection opened before the reload keeps working.
  EXPECT_NE(before
                .RoundTrip("POST", "/mutate-kubeletpolicy",
                           Review("2", "CREATE", Policy("p", json::array())))
                .find("HTTP/1.1 200"),
            std::string::npos);
  // New connections get the new certificate: trusted by the new CA, not by the old one alone.
  TlsConn after(port_, next.ca.cert_pem);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after.PeerFingerprint(), old_fp);
  TlsConn old_ca_only(port_, pki_.ca.cert_pem);
  EXPECT_FALSE(old_ca_only.ok());
  TlsConn bundle(port_, next.ca.cert_pem + pki_.ca.cert_pem);
  EXPECT_TRUE(bundle.ok());

  // An invalid pair is refused and the current one stays.
  KeyPairPem mismatched{next.leaf.cert_pem, pki_.leaf.key_pem};
  EXPECT_FALSE(server_->SetServingPair(mismatched).ok());
  TlsConn still(port_, next.ca.cert_pem);
  EXPECT_TRUE(still.ok());
  EXPECT_NE(metrics_.Render().find(
                R"(kubeletpolicy_webhook_certificate_reloads_total{result="success"} 2)"),
            std::string::npos);
}

TEST_F(WebhookServerTest, ReloaderPicksUpANewPairFromTheDirectory) {
  auto dir = std::filesystem::temp_directory_path() / ("kpc-certdir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir / name, std::ios::binary) << content;
  };
  CertReloader reloader(DirPairSource(dir.string()), *server_, std::chrono::milliseconds(50));
  EXPECT_EQ(reloader.PollOnce().code(), StatusCode::kNotFound);  // empty dir: keep serving

  Pki next = MakePki("ca-dir");
  write("tls.crt", next.leaf.cert_pem);
  write("tls.key", pki_.leaf.key_pem);  // half-written rotation: mismatched pair
  EXPECT_FALSE(reloader.PollOnce().ok());
  TlsConn old(port_, pki_.ca.cert_pem);
  EXPECT_TRUE(old.ok()) << "a bad pair on disk must not replace the served one";

  write("tls.key", next.leaf.key_pem);
  reloader.Start();
  bool switched = false;
  for (int i = 0; i < 100 && !switched; ++i) {
    TlsConn c(port_, next.ca.cert_pem);
    switched = c.ok();
    if (!switched) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  reloader.Stop();
  EXPECT_TRUE(switched);
  std::filesystem::remove_all(dir);
}

TEST(GracefulStopTest, RequestInFlightIsAnsweredIdleConnectionsAreClosed) {
  // A replica shutting down must not fail an admission call it has already received.
  RealClock clock;
  auto server = net::NewHttpServer(clock, "127.0.0.1:0");
  std::atomic<bool> entered{false};
  server->Handle("/slow", [&](const net::ServerRequest&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    net::HttpResponse r;
    r.status = 200;
    r.body = "done";
    return r;
  });
  ASSERT_TRUE(server->Start().ok());
  auto connect = [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server->port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  };
  int idle = connect();
  int busy = connect();
  const std::string req = "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(::send(busy, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread stopper([&] { server->Stop(); });
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(busy, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  stopper.join();
  EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
  EXPECT_NE(resp.find("Connection: close"), std::string::npos) << resp;
  EXPECT_NE(resp.find("done"), std::string::npos) << resp;
  EXPECT_EQ(::recv(idle, buf, sizeof buf, 0), 0);  // closed without an answer
  ::close(idle);
  ::close(busy);
}

json ValidRule() {
  return {{"id", "ro"},
          {"config", {{"path", "readOnlyPort"}, {"operator", "LessThanOrEqual"}, {"value", 10255}}},
          {"remediation", {{"value", 0}}}};
}

// Takes 3 ms of the fake clock to answer.
class SlowConflictChecker final : public ConflictChecker {
 public:
  explicit SlowConflictChecker(FakeClock& clock) : clock_(clock) {}
  std::vector<std::string> Conflicts(const kpc::policy::KubeletPolicy&) const override {
    clock_.Advance(std::chrono::milliseconds(3));
    return {};
  }

 private:
  FakeClock& clock_;
};

TEST(WebhookServerLatencyTest, LatencyIsReadOnTheServersClock) {
  Registry metrics;
  FakeClock clock;
  SlowConflictChecker slow(clock);
  WebhookServer server(metrics, &slow, clock, WebhookServerOptions{});
  net::ServerRequest req;
  req.method = "POST";
  req.path = kValidatingWebhookPath;
  req.body = Review("uid-1", "CREATE", Policy("p", json::array({ValidRule()})));
  auto resp = server.HandleForTest(kValidatingWebhookPath, req);
  ASSERT_EQ(resp.status, 200) << resp.body;
  ASSERT_NE(resp.body.find(R"("allowed":true)"), std::string::npos) << resp.body;
  const std::string m = metrics.Render();
  const std::string name = "kubeletpolicy_admission_duration_seconds";
  EXPECT_NE(m.find(name + R"(_bucket{webhook="validate",le="0.0025"} 0)"), std::string::npos) << m;
  EXPECT_NE(m.find(name + R"(_bucket{webhook="validate",le="0.005"} 1)"), std::string::npos) << m;
  EXPECT_NE(m.find(name + R"(_sum{webhook="validate"} 0.003)"), std::string::npos) << m;
}

TEST(CachedConflictCheckerTest, FindsConflictsWithCachedPoliciesAndSkipsInvalidOnes) {
  json rule = {
      {"id", "ro"},
      {"config", {{"path", "readOnlyPort"}, {"operator", "LessThanOrEqual"}, {"value", 10255}}},
      {"remediation", {{"value", 0}}}};
  json other_rule = rule;
  other_rule["remediation"]["value"] = 10255;
  json other = Policy("other", json::array({other_rule}));
  other["metadata"]["resourceVersion"] = "1";
  json invalid = Policy("invalid", json::array());
  int lists = 0;
  kpc::policy::PolicyParseCache parses;
  CachedConflictChecker checker(
      [&] {
        ++lists;
        return std::vector<json>{other, invalid};
      },
      parses);
  auto candidate = kpc::policy::ParsePolicy(Policy("mine", json::array({rule})));
  ASSERT_TRUE(candidate.policy) << (candidate.errors.empty() ? ""
                                                             : candidate.errors[0].field + ": " +
                                                                   candidate.errors[0].message);
  auto conflicts = checker.Conflicts(*candidate.policy);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_NE(conflicts[0].find("KubeletPolicy \"other\""), std::string::npos) << conflicts[0];
  EXPECT_EQ(checker.Conflicts(*candidate.policy).size(), 1u);
  EXPECT_EQ(lists, 2);
}

class WebhookLimitsTest : public ::testing::Test {
 protected:
  void Start(WebhookServerOptions o) {
    pki_ = MakePki("ca-limits");
    o.address = "127.0.0.1:0";
    server_ = std::make_unique<WebhookServer>(metrics_, nullptr, clock_, o);
    ASSERT_TRUE(server_->SetServingPair(pki_.leaf).ok());
    port_ = server_->port();
  }
  double Refused(const std::string& reason) {
    const std::string m = metrics_.Render();
    const std::string key =
        R"(kubeletpolicy_http_requests_refused_total{server="webhook",reason=")" + reason + "\"} ";
    auto at = m.find(key);
    return at == std::string::npos ? -1 : std::stod(m.substr(at + key.size()));
  }
  bool WaitForRefused(const std::string& reason, double n) {
    for (int i = 0; i < 500 && Refused(reason) < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Refused(reason) >= n;
  }
  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }

  RealClock clock_;
  Registry metrics_;
  Pki pki_;
  std::unique_ptr<WebhookServer> server_;
  int port_ = 0;
};

TEST_F(WebhookLimitsTest, ManyConcurrentLargeBodiesPastTheBudgetGet503AndTheOthersSucceed) {
  WebhookServerOptions o;
  o.max_body_bytes = 64 * 1024;
  o.max_body_bytes_in_flight = 4 * 60000;  // four of the bodies below at once
  Start(o);
  std::string review = Review("uid-big", "CREATE", Policy("p", json::array({ValidRule()})));
  review.resize(60000, ' ');  // trailing whitespace: still one valid AdmissionReview
  const std::string head =
      "POST /validate-kubeletpolicy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 60000\r\n\r\n";
  // Eight clients at once, each sending its head and half its body, then stalling.
  std::vector<std::unique_ptr<TlsConn>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<TlsConn>(port_, pki_.ca.cert_pem));
    ASSERT_TRUE(clients.back()->ok());
  }
  std::vector<std::thread> senders;
  for (auto& c : clients) senders.emplace_back([&] { c->Send(head + review.substr(0, 30000)); });
  for (auto& t : senders) t.join();
  ASSERT_TRUE(WaitForRefused("body_budget", 4)) << metrics_.Render();
  int refused = 0, served = 0;
  for (auto& c : clients) {
    std::string resp;
    if (c->Readable(100)) {
      resp = c->ReadUntilClose(2000);  // answered before its body was sent: refused
      EXPECT_NE(resp.find("HTTP/1.1 503"), std::string::npos) << resp;
      EXPECT_NE(resp.find("Retry-After: 1\r\n"), std::string::npos) << resp;
      ++refused;
    } else {
      ASSERT_TRUE(c->Send(review.substr(30000)));
      resp = c->ReadUntilClose(500);
      EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp.substr(0, 300);
      EXPECT_NE(resp.find("\"allowed\":true"), std::string::npos) << resp.substr(0, 300);
      ++served;
    }
  }
  EXPECT_EQ(refused, 4);
  EXPECT_EQ(served, 4);
  EXPECT_EQ(Refused("body_budget"), 4);
  // The budget is free again and the server still serves.
  TlsConn again(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again.RoundTrip("POST", "/validate-kubeletpolicy", review).find("HTTP/1.1 200"),
            std::string::npos);
}

TEST_F(WebhookLimitsTest, SlowAndMalformedClientsAreRefusedAndCounted) {
  WebhookServerOptions o;
  o.handshake_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(1500);
  Start(o);
  EXPECT_EQ(Refused("uri_too_long"), 0) << "every reason is exported from the start";

  // A TCP connection that never starts its handshake.
  int silent = Connect();
  char byte;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(silent, &byte, 1, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ::close(silent);
  EXPECT_TRUE(WaitForRefused("handshake_timeout", 1));

  // A head trickled a byte at a time (a TLS record each) past the request deadline.
  TlsConn slow(port_, pki_.ca.cert_pem);
  ASSERT_TRUE(slow.ok());
  const std::string head =
      "POST /validate-kubeletpolicy HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(40, 'a');
  for (char ch : head) {
    ASSERT_TRUE(slow.Send(std::string(1, ch)));
    if (slow.Readable(300)) break;
  }
  std::string resp = slow.ReadUntilClose(3000);
  EXPECT_NE(resp.find("HTTP/1.1 408"), std::string::npos) << resp;
  EXPECT_TRUE(WaitForRefused("request_timeout", 1));

  const std::string post = "POST /validate-kubeletpolicy HTTP/1.1\r\nHost: x\r\n";
  struct Case {
    std::string name, raw, status, reason;
  } cases[] = {
      {"CL and TE", post + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
       "HTTP/1.1 400", "malformed"},
      {"xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "HTTP/1.1 501",
       "transfer_encoding"},
  };
  for (const auto& c : cases) {
    TlsConn conn(port_, pki_.ca.cert_pem);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(conn.Send(c.raw));
    resp = conn.ReadUntilClose(3000);
    EXPECT_NE(resp.find(c.status), std::string::npos) << c.name << ": " << resp;
    EXPECT_TRUE(WaitForRefused(c.reason, 1)) << c.name;
  }
  // Refusals come before any handler: the admission metrics saw none of them.
  EXPECT_EQ(metrics_.Render().find("kubeletpolicy_admission_requests_total{"), std::string::npos);
}

TEST_F(WebhookLimitsTest, ConnectionLimitIsEnforced) {
  WebhookServerOptions o;
  o.max_connections = 3;
  Start(o);
  std::vector<std::unique_ptr<TlsConn>> open;
  const std::string review = Review("u", "DELETE", json::object());
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<TlsConn>(port_, pki_.ca.cert_pem));
    ASSERT_TRUE(open.back()->ok()) << i;
    // Served, then idle: never closed to make room for another.
    ASSERT_NE(open.back()->RoundTrip("POST", "/mutate-kubeletpolicy", review).find("HTTP/1.1 200"),
              std::string::npos);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  TlsConn over(port_, pki_.ca.cert_pem);
  EXPECT_FALSE(over.ok());
  EXPECT_TRUE(WaitForRefused("connection_limit", 1));
  open.pop_back();
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    TlsConn c(port_, pki_.ca.cert_pem);
    served = c.ok() &&
             c.RoundTrip("POST", "/mutate-kubeletpolicy", Review("u", "DELETE", json::object()))
                     .find("HTTP/1.1 200") != std::string::npos;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(WebhookLimitsTest, StalledClientsMakeRoomForPromptOnesAtTheLimit) {
  // Every slot taken by clients that stall: in the handshake, or mid-request.
  WebhookServerOptions o;
  o.max_connections = 4;
  Start(o);
  std::vector<int> silent = {Connect(), Connect()};
  std::vector<std::unique_ptr<TlsConn>> stalled;
  for (int i = 0; i < 2; ++i) {
    stalled.push_back(std::make_unique<TlsConn>(port_, pki_.ca.cert_pem));
    ASSERT_TRUE(stalled.back()->ok());
    ASSERT_TRUE(stalled.back()->Send("POST /validate-kubeletpolicy HTTP/1.1\r\nHost: x\r\n"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  // Prompt clients are served at once, each in the place of a stalled one (and kept open:
  // idle between requests, they are not closed for the next one).
  std::vector<std::unique_ptr<TlsConn>> prompt;
  for (int i = 0; i < 4; ++i) {
    prompt.push_back(std::make_unique<TlsConn>(port_, pki_.ca.cert_pem));
    ASSERT_TRUE(prompt.back()->ok()) << i;
    const std::string resp = prompt.back()->RoundTrip("POST", "/mutate-kubeletpolicy",
                                                      Review("u", "DELETE", json::object()));
    EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << i;
  }
  TlsConn fifth(port_, pki_.ca.cert_pem);
  EXPECT_FALSE(fifth.ok()) << "nobody is left to make room";
  EXPECT_TRUE(WaitForRefused("connection_limit", 5));
  EXPECT_EQ(Refused("connection_limit"), 5);  // four made room, the fifth was turned away
  char byte;
  for (int fd : silent) {
    EXPECT_EQ(::recv(fd, &byte, 1, 0), 0);  // closed (not after the 10 s handshake deadline)
    ::close(fd);
  }
  for (auto& c : stalled) {
    EXPECT_TRUE(c->Readable(1000)) << "closed";
    EXPECT_EQ(c->ReadUntilClose(1000), "") << "without an answer";
  }
}

}  // namespace
}  // namespace kpc::webhooks
