// The webhook HTTPS server on 127.0.0.1:0: TLS 1.2+ only, hot reload of the serving certificate
// without dropping connections, body size limit, clear 4xx answers, metrics, and the reloader
// reading a certificate directory.

#include "webhooks/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
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

}  // namespace
}  // namespace kpc::webhooks
