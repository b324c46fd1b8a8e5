// NewOneShotHttpsClient against the project's own TLS server (net::NewHttpServer) and a
// scripted TLS server of this file (answers byte by byte, slowly, or not at all), on
// 127.0.0.1 with test certificates. Deadlines run on the real clock.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "net/http.h"
#include "tests/net/loopback.h"
#include "tests/net/mtls_server.h"
#include "tests/net/test_certs.h"

namespace kpc::net {
namespace {

using namespace std::chrono_literals;

const RealClock real_clock;

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers["Content-Type"] = "text/plain";
  r.headers["X-Test"] = "yes";
  r.body = std::move(body);
  return r;
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A listening socket on 127.0.0.1 that never accepts: connections complete in the backlog
// and then hear nothing.
class SilentListener {
 public:
  SilentListener() { fd_ = BindLoopback(8, &port_); }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
};

// A TLS server for one connection whose answer is scripted: after the request head it writes
// each step's bytes after the step's delay, then ends as told.
class ScriptedTlsServer {
 public:
  struct Step {
    std::chrono::milliseconds delay;
    std::string bytes;
  };
  enum class End { kCloseNotify, kAbruptClose, kHoldOpen };

  ScriptedTlsServer(const CertPair& pair, std::vector<Step> steps, End end)
      : steps_(std::move(steps)), end_(end) {
    ::signal(SIGPIPE, SIG_IGN);  // the client may leave while we write
    ctx_ = SSL_CTX_new(TLS_server_method());
    BIO* b = BIO_new_mem_buf(pair.cert_pem.data(), static_cast<int>(pair.cert_pem.size()));
    X509* cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    b = BIO_new_mem_buf(pair.key_pem.data(), static_cast<int>(pair.key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    SSL_CTX_use_certificate(ctx_, cert);
    SSL_CTX_use_PrivateKey(ctx_, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    listen_fd_ = BindLoopback(4, &port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedTlsServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (conn_fd_ >= 0) ::shutdown(conn_fd_, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }
  int port() const { return port_; }
  std::string url(const std::string& path = "/x") const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  // Sleeps for `d` unless the server stops first; false when it stopped.
  bool Pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stop_; });
  }

  void Serve() {
    const int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conn_fd_ = c;
      if (stop_) ::shutdown(c, SHUT_RDWR);
    }
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) == 1 && ReadHead(ssl)) Answer(ssl);
    SSL_free(ssl);
    ERR_clear_error();
    {
      std::lock_guard<std::mutex> lock(mu_);
      conn_fd_ = -1;
    }
    ::close(c);
  }

  static bool ReadHead(SSL* ssl) {
    std::string head;
    char buf[4096];
    while (!Contains(head, "\r\n\r\n") && head.size() < 65536) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return false;
      head.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  void Answer(SSL* ssl) {
    for (const Step& step : steps_) {
      if (!Pause(step.delay)) return;
      if (!step.bytes.empty() &&
          SSL_write(ssl, step.bytes.data(), static_cast<int>(step.bytes.size())) <= 0)
        return;
    }
    if (end_ == End::kCloseNotify) SSL_shutdown(ssl);
    if (end_ == End::kHoldOpen) Pause(30s);
  }

  const std::vector<Step> steps_;
  const End end_;
  SSL_CTX* ctx_;
  int listen_fd_;
  int port_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int conn_fd_ = -1;
};

class OneShotHttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pair_ = MakeSelfSigned();
    TlsConfig serving;
    serving.client_cert_pem = pair_.cert_pem;
    serving.client_key_pem = pair_.key_pem;
    server_ = NewHttpServer(real_clock, "127.0.0.1:0", serving);
    server_->Handle("/secure", [](const ServerRequest&) { return Text(200, "secret"); });
    server_->Handle("/echo", [](const ServerRequest& req) {
      auto header = [&](const char* name) {
        auto it = req.headers.find(name);
        return it == req.headers.end() ? std::string("-") : it->second;
      };
      return Text(201, req.method + " q=" + req.query + " host=" + header("host") + " connection=" +
                           header("connection") + " length=" + header("content-length") +
                           " auth=" + header("authorization") + " body=" + req.body);
    });
    server_->Handle("/big", [](const ServerRequest&) { return Text(200, std::string(2000, 'b')); });
    ASSERT_TRUE(server_->Start().ok());
    base_ = "https://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->Stop(); }

  TlsConfig Trusting() const {
    TlsConfig tls;
    tls.ca_pem = pair_.cert_pem;
    return tls;
  }
  StatusOr<HttpResponse> Get(const TlsConfig& tls, const std::string& url) {
    HttpRequest req;
    req.url = url;
    req.timeout = 5s;
    return NewOneShotHttpsClient(real_clock, tls)->Send(req);
  }

  CertPair pair_;
  std::unique_ptr<HttpServer> server_;
  std::string base_;
};

TEST_F(OneShotHttpsClientTest, GetsWithTheRightCa) {
  auto resp = Get(Trusting(), base_ + "/secure");
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "secret");
  EXPECT_EQ(resp->headers["x-test"], "yes");  // names are lower-cased
  EXPECT_EQ(resp->headers["content-type"], "text/plain");
}

TEST_F(OneShotHttpsClientTest, SendsHostConnectionCloseHeadersAndBody) {
  auto client = NewOneShotHttpsClient(real_clock, Trusting());
  HttpRequest req;
  req.method = "POST";
  req.url = base_ + "/echo?a=1&b=2#fragment";
  req.headers["Authorization"] = "Bearer t0ken";
  req.headers["Connection"] = "keep-alive";  // the client decides that one
  req.body = std::string(70000, 'x');
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->body, "POST q=a=1&b=2 host=127.0.0.1:" + std::to_string(server_->port()) +
                            " connection=close length=70000 auth=Bearer t0ken body=" + req.body);

  req.method = "GET";
  req.body.clear();
  req.headers.clear();
  req.url = base_ + "/echo";
  resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_TRUE(Contains(resp->body, "connection=close length=- auth=- body=")) << resp->body;
}

TEST_F(OneShotHttpsClientTest, AnyStatusIsAResponse) {
  auto resp = Get(Trusting(), base_ + "/nope");
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 404);
}

TEST_F(OneShotHttpsClientTest, WrongCaFailsWithCertificateVerifyFailed) {
  TlsConfig tls;
  tls.ca_pem = MakeSelfSigned("other").cert_pem;
  auto resp = Get(tls, base_ + "/secure");
  ASSERT_FALSE(resp.ok());
  const std::string& m = resp.status().message();
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(m.rfind("GET " + base_ + "/secure: ", 0), 0u) << m;
  // Callers tell a TLS failure from an unreachable peer by these words (controller/configz_source).
  EXPECT_TRUE(Contains(m, "certificate verify failed")) << m;
  EXPECT_TRUE(Contains(m, X509_verify_cert_error_string(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)))
      << m;
}

TEST_F(OneShotHttpsClientTest, SystemRootsDoNotTrustATestCertificate) {
  auto resp = Get(TlsConfig{}, base_ + "/secure");
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(Contains(resp.status().message(), "certificate verify failed"))
      << resp.status().message();
}

TEST_F(OneShotHttpsClientTest, InsecureSkipVerifyConnects) {
  TlsConfig tls;
  tls.insecure_skip_verify = true;
  auto resp = Get(tls, base_ + "/secure");
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "secret");
}

TEST_F(OneShotHttpsClientTest, ServerNameMismatchFails) {
  TlsConfig tls = Trusting();
  tls.server_name = "wrong.example";
  auto resp = Get(tls, base_ + "/secure");
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(Contains(resp.status().message(), "certificate verify failed"))
      << resp.status().message();
  EXPECT_TRUE(Contains(resp.status().message(),
                       X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH)))
      << resp.status().message();
}

TEST_F(OneShotHttpsClientTest, ServerNameOverrideIsVerified) {
  TlsConfig tls = Trusting();
  tls.server_name = "localhost";  // in the SANs
  auto resp = Get(tls, base_ + "/secure");
  ASSERT_TRUE(resp.ok()) << resp.status().message();
}

TEST_F(OneShotHttpsClientTest, DnsNameIsLookedUpAndVerified) {
  // localhost may come first as ::1, where nobody listens: the next address is tried.
  auto resp = Get(Trusting(), "https://localhost:" + std::to_string(server_->port()) + "/secure");
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "secret");
}

TEST(OneShotHttpsClientTlsTest, IpAddressNotInTheCertificateFails) {
  CertPair named_only = MakeSelfSigned("named", "DNS:localhost");
  TlsConfig serving;
  serving.client_cert_pem = named_only.cert_pem;
  serving.client_key_pem = named_only.key_pem;
  auto server = NewHttpServer(real_clock, "127.0.0.1:0", serving);
  server->Handle("/x", [](const ServerRequest&) { return Text(200, "x"); });
  ASSERT_TRUE(server->Start().ok());
  TlsConfig tls;
  tls.ca_pem = named_only.cert_pem;
  HttpRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(server->port()) + "/x";
  req.timeout = 5s;
  auto resp = NewOneShotHttpsClient(real_clock, tls)->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_TRUE(Contains(resp.status().message(), "certificate verify failed"))
      << resp.status().message();
  EXPECT_TRUE(Contains(resp.status().message(),
                       X509_verify_cert_error_string(X509_V_ERR_IP_ADDRESS_MISMATCH)))
      << resp.status().message();
  server->Stop();
}

TEST(OneShotHttpsClientTlsTest, ClientCertificateForMutualTls) {
  MutualTlsServer server(real_clock);
  ASSERT_TRUE(server.started());
  auto refused =
      NewOneShotHttpsClient(real_clock, server.WithoutClientCert())->Send(server.Request());
  ASSERT_FALSE(refused.ok());
  // TLS 1.3: the server's refusal comes after the client's handshake; its alert is reported.
  EXPECT_TRUE(Contains(refused.status().message(), "certificate required"))
      << refused.status().message();
  auto resp = NewOneShotHttpsClient(real_clock, server.WithClientCert())->Send(server.Request());
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "mtls");
}

TEST_F(OneShotHttpsClientTest, BodyOverTheCapIsResourceExhausted) {
  HttpRequest req;
  req.url = base_ + "/big";
  req.timeout = 5s;
  req.max_body_bytes = 1000;
  auto resp = NewOneShotHttpsClient(real_clock, Trusting())->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(resp.status().message(),
                       "response body of 2000 bytes (Content-Length) is larger than 1000 bytes"))
      << resp.status().message();
  req.max_body_bytes = 2000;
  resp = NewOneShotHttpsClient(real_clock, Trusting())->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body.size(), 2000u);
}

TEST_F(OneShotHttpsClientTest, ConcurrentRequestsShareOneClient) {
  auto client = NewOneShotHttpsClient(real_clock, Trusting());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        HttpRequest req;
        req.url = base_ + "/secure";
        req.timeout = 10s;
        auto resp = client->Send(req);
        if (resp.ok() && resp->body == "secret") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
}

TEST(OneShotHttpsClientTimeoutTest, SilentServerIsDeadlineExceededInTime) {
  SilentListener silent;
  HttpRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(silent.port()) + "/configz";
  req.timeout = 400ms;
  TlsConfig tls;
  tls.insecure_skip_verify = true;
  const auto start = std::chrono::steady_clock::now();
  auto resp = NewOneShotHttpsClient(real_clock, tls)->Send(req);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kDeadlineExceeded) << resp.status().message();
  EXPECT_TRUE(Contains(resp.status().message(), "no response within 400 ms"))
      << resp.status().message();
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 400ms + 600ms);
}

TEST(OneShotHttpsClientTimeoutTest, TricklingServerIsDeadlineExceededInTime) {
  CertPair pair = MakeSelfSigned();
  std::vector<ScriptedTlsServer::Step> steps = {
      {0ms, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"}};
  for (int i = 0; i < 100; ++i) steps.push_back({100ms, "x"});  // one byte every 100 ms
  ScriptedTlsServer server(pair, steps, ScriptedTlsServer::End::kCloseNotify);
  HttpRequest req;
  req.url = server.url();
  req.timeout = 500ms;
  TlsConfig tls;
  tls.ca_pem = pair.cert_pem;
  const auto start = std::chrono::steady_clock::now();
  auto resp = NewOneShotHttpsClient(real_clock, tls)->Send(req);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kDeadlineExceeded) << resp.status().message();
  EXPECT_LT(took, 500ms + 600ms);
}

TEST(OneShotHttpsClientTimeoutTest, ServerStoppingMidBodyIsDeadlineExceeded) {
  CertPair pair = MakeSelfSigned();
  ScriptedTlsServer server(pair, {{0ms, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"}},
                           ScriptedTlsServer::End::kHoldOpen);
  HttpRequest req;
  req.url = server.url();
  req.timeout = 400ms;
  TlsConfig tls;
  tls.ca_pem = pair.cert_pem;
  const auto start = std::chrono::steady_clock::now();
  auto resp = NewOneShotHttpsClient(real_clock, tls)->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kDeadlineExceeded) << resp.status().message();
  EXPECT_TRUE(Contains(resp.status().message(), "reading the response")) << resp.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 400ms + 600ms);
}

struct ScriptedCase {
  std::string name;
  std::string answer;
  ScriptedTlsServer::End end;
  size_t max_body;
  StatusCode code;
  std::string expect;  // the body, or a part of the error message
};

class OneShotScriptedTest : public ::testing::TestWithParam<ScriptedCase> {};

TEST_P(OneShotScriptedTest, FramingOverTls) {
  const ScriptedCase& c = GetParam();
  CertPair pair = MakeSelfSigned();
  std::vector<ScriptedTlsServer::Step> steps;
  for (size_t i = 0; i < c.answer.size(); i += 7)
    steps.push_back({0ms, c.answer.substr(i, 7)});  // small records
  ScriptedTlsServer server(pair, steps, c.end);
  HttpRequest req;
  req.url = server.url();
  req.timeout = 5s;
  req.max_body_bytes = c.max_body;
  TlsConfig tls;
  tls.ca_pem = pair.cert_pem;
  auto resp = NewOneShotHttpsClient(real_clock, tls)->Send(req);
  ASSERT_EQ(resp.status().code(), c.code) << resp.status().message();
  if (c.code == StatusCode::kOk) {
    EXPECT_EQ(resp->body, c.expect);
  } else {
    EXPECT_TRUE(Contains(resp.status().message(), c.expect)) << resp.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Framings, OneShotScriptedTest,
    ::testing::Values(
        ScriptedCase{"chunked",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n "
                     "world\r\n0\r\n\r\n",
                     ScriptedTlsServer::End::kHoldOpen, 100, StatusCode::kOk, "hello world"},
        ScriptedCase{
            "continue_then_length",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
            ScriptedTlsServer::End::kHoldOpen, 100, StatusCode::kOk, "body"},
        ScriptedCase{"until_close_notify", "HTTP/1.1 200 OK\r\n\r\nthe whole body",
                     ScriptedTlsServer::End::kCloseNotify, 100, StatusCode::kOk, "the whole body"},
        ScriptedCase{"until_abrupt_close", "HTTP/1.1 200 OK\r\n\r\ncut",
                     ScriptedTlsServer::End::kAbruptClose, 100, StatusCode::kUnavailable,
                     "may be cut short"},
        ScriptedCase{"length_cut_short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
                     ScriptedTlsServer::End::kCloseNotify, 100, StatusCode::kUnavailable,
                     "connection closed after 4 of 10 body bytes"},
        ScriptedCase{"chunked_over_cap",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
                     ScriptedTlsServer::End::kHoldOpen, 10, StatusCode::kResourceExhausted,
                     "response body larger than 10 bytes"},
        ScriptedCase{"until_close_over_cap", "HTTP/1.1 200 OK\r\n\r\n" + std::string(50, 'z'),
                     ScriptedTlsServer::End::kHoldOpen, 10, StatusCode::kResourceExhausted,
                     "response body larger than 10 bytes"},
        ScriptedCase{"malformed",
                     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
                     ScriptedTlsServer::End::kHoldOpen, 100, StatusCode::kUnavailable,
                     "more than one Content-Length"},
        ScriptedCase{"not_http", "SSH-2.0-OpenSSH_9.2\r\n", ScriptedTlsServer::End::kHoldOpen, 100,
                     StatusCode::kUnavailable, "bad status line"}),
    [](const ::testing::TestParamInfo<ScriptedCase>& info) { return info.param.name; });

TEST(OneShotHttpsClientErrorsTest, ConnectionRefusedIsUnavailable) {
  int port = 0;
  ::close(BindLoopback(0, &port));  // nobody listens on that port now
  HttpRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(port) + "/configz";
  req.timeout = 5s;
  auto resp = NewOneShotHttpsClient(real_clock, TlsConfig{})->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(resp.status().message(), "GET " + req.url + ": connect to 127.0.0.1:"))
      << resp.status().message();
  EXPECT_TRUE(Contains(resp.status().message(), "refused")) << resp.status().message();
}

TEST(OneShotHttpsClientErrorsTest, BadRequestsAreRefusedBeforeConnecting) {
  auto client = NewOneShotHttpsClient(real_clock, TlsConfig{});
  auto send = [&](const std::string& url, const std::string& method = "GET",
                  std::map<std::string, std::string> headers = {}) {
    HttpRequest req;
    req.url = url;
    req.method = method;
    req.headers = std::move(headers);
    req.timeout = 1s;
    return client->Send(req).status();
  };
  for (const std::string url :
       {"http://127.0.0.1/x", "ftp://127.0.0.1/x", "127.0.0.1/x", "https:///x",
        "https://user@127.0.0.1/x", "https://127.0.0.1:0/x", "https://127.0.0.1:65536/x",
        "https://127.0.0.1:8a/x", "https://[::1/x", "https://[nonsense]/x", "https://bad host/x",
        "https://127.0.0.1/a b", "https://127.0.0.1/a\r\nX: y"}) {
    Status s = send(url);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << url << ": " << s.message();
  }
  EXPECT_EQ(send("https://127.0.0.1:1/x", "GET\r\nX:").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(send("https://127.0.0.1:1/x", "GET", {{"X-A", "v\r\nInjected: 1"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(send("https://127.0.0.1:1/x", "GET", {{"X-A", "v\nInjected: 1"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(send("https://127.0.0.1:1/x", "GET", {{"X-A\r\nB", "v"}}).code(),
            StatusCode::kInvalidArgument);
  // Well-formed, nobody listening: the URL was accepted (an IPv6 literal too).
  EXPECT_EQ(send("https://127.0.0.1:1/x?q").code(), StatusCode::kUnavailable);
  EXPECT_EQ(send("https://[::1]:1/x").code(), StatusCode::kUnavailable);
}

TEST(OneShotHttpsClientErrorsTest, UnloadableTlsConfigFailsEverySend) {
  TlsConfig bad_ca;
  bad_ca.ca_pem = "not a certificate";
  TlsConfig lone_cert;
  lone_cert.ca_pem = MakeSelfSigned().cert_pem;
  lone_cert.client_cert_pem = lone_cert.ca_pem;  // no key
  TlsConfig mismatched = lone_cert;
  mismatched.client_key_pem = MakeSelfSigned().key_pem;
  for (const TlsConfig& tls : {bad_ca, lone_cert, mismatched}) {
    HttpRequest req;
    req.url = "https://127.0.0.1:1/x";
    auto resp = NewOneShotHttpsClient(real_clock, tls)->Send(req);
    ASSERT_FALSE(resp.ok());
    EXPECT_EQ(resp.status().code(), StatusCode::kInvalidArgument) << resp.status().message();
    EXPECT_TRUE(Contains(resp.status().message(), "TLS")) << resp.status().message();
  }
}

TEST(OneShotHttpsClientErrorsTest, StreamIsNotSupported) {
  HttpRequest req;
  req.url = "https://127.0.0.1:1/watch";
  auto started = NewOneShotHttpsClient(real_clock, TlsConfig{})->Stream(req);
  EXPECT_FALSE(started.ok());
}

}  // namespace
}  // namespace kpc::net
