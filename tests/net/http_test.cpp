// Loopback tests of NewHttpServer + NewHttpClient: plain HTTP, HTTPS with a certificate made
// here with OpenSSL, streaming line by line, idle timeouts and Cancel; the server's limits
// against raw clients: strict parsing, deadlines against trickling clients, the body budget,
// the connection limit and the TLS protocol and cipher policy. 127.0.0.1 port 0 only.

#include "net/http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "tests/net/loopback.h"
#include "tests/net/lsan_suppressions.h"
#include "tests/net/mtls_server.h"
#include "tests/net/test_certs.h"

namespace kpc::net {
namespace {

// Real I/O: deadlines run on the real clock.
const RealClock real_clock;

using namespace std::chrono_literals;

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers["Content-Type"] = "text/plain";
  r.body = std::move(body);
  return r;
}

class PlainServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = NewHttpServer(real_clock, "127.0.0.1:0");
    server_->Handle("/hello", [](const ServerRequest& req) {
      HttpResponse r = Text(200, "hello " + req.method + " q=" + req.query + " body=" + req.body);
      r.headers["X-Test"] = "yes";
      return r;
    });
    server_->Handle("/slow", [](const ServerRequest&) {
      std::this_thread::sleep_for(1500ms);
      return Text(200, "late");
    });
    server_->Handle("/throws",
                    [](const ServerRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
    client_ = NewHttpClient(real_clock, TlsConfig{});
  }
  void TearDown() override { server_->Stop(); }

  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpClient> client_;
  std::string base_;
};

TEST_F(PlainServerTest, GetAndPostRoundTrip) {
  HttpRequest req;
  req.url = base_ + "/hello?a=1&b=2";
  auto resp = client_->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hello GET q=a=1&b=2 body=");
  EXPECT_EQ(resp->headers["x-test"], "yes");  // names are lower-cased

  req.method = "POST";
  req.url = base_ + "/hello";
  req.body = std::string(100000, 'x');
  req.headers["Content-Type"] = "application/json";
  resp = client_->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "hello POST q= body=" + req.body);
}

TEST_F(PlainServerTest, ManyRequestsReuseTheClient) {
  for (int i = 0; i < 50; ++i) {
    HttpRequest req;
    req.url = base_ + "/hello?i=" + std::to_string(i);
    auto resp = client_->Send(req);
    ASSERT_TRUE(resp.ok()) << resp.status().message();
    EXPECT_EQ(resp->body, "hello GET q=i=" + std::to_string(i) + " body=");
  }
}

TEST_F(PlainServerTest, UnknownPathIs404AndThrowingHandlerIs500) {
  HttpRequest req;
  req.url = base_ + "/nope";
  auto resp = client_->Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 404);
  req.url = base_ + "/throws";
  resp = client_->Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 500);
}

TEST_F(PlainServerTest, RequestTimeoutIsDeadlineExceeded) {
  HttpRequest req;
  req.url = base_ + "/slow";
  req.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto resp = client_->Send(req);
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1200ms);
}

TEST_F(PlainServerTest, GarbageRequestGets400AndServerKeepsServing) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  std::string garbage = "\x01\x02 not http\r\n\r\n";
  ASSERT_GT(::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL), 0);
  char buf[256] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  ::close(fd);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf).find(" 400 "), std::string::npos) << buf;

  HttpRequest req;
  req.url = base_ + "/hello";
  auto resp = client_->Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 200);
}

TEST_F(PlainServerTest, SecondServerOnSamePortFails) {
  auto other = NewHttpServer(real_clock, "127.0.0.1:" + std::to_string(server_->port()));
  Status s = other->Start();
  EXPECT_FALSE(s.ok());
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailable) {
  // Bind and close to get a port nobody listens on.
  auto tmp = NewHttpServer(real_clock, "127.0.0.1:0");
  ASSERT_TRUE(tmp->Start().ok());
  int port = tmp->port();
  tmp->Stop();
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  req.timeout = 5s;
  auto resp = client->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable);
}

TEST(HttpClientTest, BadUrlIsInvalidArgument) {
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "ftp://127.0.0.1/x";
  auto resp = client->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpServerTest, BadAddressIsRejected) {
  EXPECT_FALSE(NewHttpServer(real_clock, "no-port")->Start().ok());
  EXPECT_FALSE(NewHttpServer(real_clock, "127.0.0.1:abc")->Start().ok());
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pair_ = MakeSelfSigned();
    TlsConfig serving;
    serving.client_cert_pem = pair_.cert_pem;
    serving.client_key_pem = pair_.key_pem;
    server_ = NewHttpServer(real_clock, "127.0.0.1:0", serving);
    server_->Handle("/secure", [](const ServerRequest&) { return Text(200, "secret"); });
    ASSERT_TRUE(server_->Start().ok());
    url_ = "https://127.0.0.1:" + std::to_string(server_->port()) + "/secure";
  }
  void TearDown() override { server_->Stop(); }
  StatusOr<HttpResponse> Get(const TlsConfig& tls) {
    auto client = NewHttpClient(real_clock, tls);
    HttpRequest req;
    req.url = url_;
    req.timeout = 5s;
    return client->Send(req);
  }

  CertPair pair_;
  std::unique_ptr<HttpServer> server_;
  std::string url_;
};

TEST_F(TlsTest, VerifiesAgainstGivenCa) {
  TlsConfig tls;
  tls.ca_pem = pair_.cert_pem;
  auto resp = Get(tls);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "secret");
}

TEST_F(TlsTest, UnknownCaIsRejected) {
  TlsConfig tls;
  tls.ca_pem = MakeSelfSigned("other").cert_pem;
  auto resp = Get(tls);
  ASSERT_FALSE(resp.ok());
  // Callers tell a TLS failure from an unreachable peer by this text (controller/configz_source).
  EXPECT_NE(resp.status().message().find("SSL handshake"), std::string::npos)
      << resp.status().message();
  EXPECT_FALSE(Get(TlsConfig{}).ok());  // system roots do not know it either
}

TEST_F(TlsTest, InsecureSkipVerifyConnects) {
  TlsConfig tls;
  tls.insecure_skip_verify = true;
  auto resp = Get(tls);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 200);
}

TEST_F(TlsTest, ServerNameOverrideIsAccepted) {
  TlsConfig tls;
  tls.ca_pem = pair_.cert_pem;
  tls.server_name = "localhost";  // in the SANs
  auto ok = Get(tls);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
}

TEST_F(TlsTest, ServerNameMismatchIsRejected) {
  TlsConfig tls;
  tls.ca_pem = pair_.cert_pem;
  tls.server_name = "wrong.example";
  EXPECT_FALSE(Get(tls).ok());
}

TEST(TlsClientCertTest, ServerRequiresClientCertificate) {
  MutualTlsServer server(real_clock);
  ASSERT_TRUE(server.started());
  EXPECT_FALSE(NewHttpClient(real_clock, server.WithoutClientCert())->Send(server.Request()).ok());
  auto resp = NewHttpClient(real_clock, server.WithClientCert())->Send(server.Request());
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "mtls");
}

// A raw chunked-streaming server: the test pushes chunks; Close() ends the response.
class StreamingServer {
 public:
  StreamingServer() {
    fd_ = BindLoopback(4, &port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~StreamingServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finish_ = true;
    }
    cv_.notify_all();
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  void Push(const std::string& data) {
    std::lock_guard<std::mutex> lock(mu_);
    chunks_.push_back(data);
    cv_.notify_all();
  }
  void End() { Push(""); }
  bool peer_closed() const { return peer_closed_; }
  int status = 200;

 private:
  void Serve() {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, n);
    }
    std::string hdr = "HTTP/1.1 " + std::to_string(status) +
                      " OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    ::send(c, hdr.data(), hdr.size(), MSG_NOSIGNAL);
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return finish_ || !chunks_.empty(); });
      if (chunks_.empty()) break;
      std::string data = chunks_.front();
      chunks_.pop_front();
      lock.unlock();
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      std::string frame = std::string(size) + data + "\r\n";
      if (::send(c, frame.data(), frame.size(), MSG_NOSIGNAL) < 0) {
        peer_closed_ = true;
        break;
      }
      if (data.empty()) break;
    }
    // Detect the client closing (Cancel) by reading until EOF (not when the test is tearing
    // the server down).
    bool finishing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finishing = finish_;
    }
    if (!finishing) {
      timeval tv{5, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (::recv(c, buf, sizeof buf, 0) == 0) peer_closed_ = true;
    }
    ::close(c);
  }

  int fd_;
  int port_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  bool finish_ = false;
  std::atomic<bool> peer_closed_{false};
};

TEST(LineStreamTest, ReadsLinesAsTheyArriveAndEndsCleanly) {
  StreamingServer server;
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/watch";
  req.timeout = 5s;
  server.Push("{\"a\":1}\n{\"b\":");  // one full line and half of the next
  auto started = client->Stream(req);
  ASSERT_TRUE(started.ok()) << started.status().message();
  ASSERT_EQ(started->status, 200);
  ASSERT_TRUE(started->stream);
  auto& stream = *started->stream;

  auto line = stream.ReadLine(2s);
  ASSERT_TRUE(line.ok()) << line.status().message();
  ASSERT_TRUE(line->has_value());
  EXPECT_EQ(**line, "{\"a\":1}");

  // The half line is not a line yet: an idle timeout, and the stream stays usable.
  line = stream.ReadLine(150ms);
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), StatusCode::kDeadlineExceeded);

  server.Push("2}\r\n\n{\"c\":3}\n");
  line = stream.ReadLine(2s);
  ASSERT_TRUE(line.ok()) << line.status().message();
  EXPECT_EQ(**line, "{\"b\":2}");
  line = stream.ReadLine(2s);
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(**line, "");
  line = stream.ReadLine(2s);
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(**line, "{\"c\":3}");

  server.End();
  line = stream.ReadLine(2s);
  ASSERT_TRUE(line.ok()) << line.status().message();
  EXPECT_FALSE(line->has_value());
}

TEST(LineStreamTest, CancelUnblocksAPendingReadPromptly) {
  StreamingServer server;
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/watch";
  server.Push("first\n");
  auto started = client->Stream(req);
  ASSERT_TRUE(started.ok()) << started.status().message();
  auto& stream = *started->stream;
  ASSERT_TRUE(stream.ReadLine(2s).ok());

  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stream.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  auto line = stream.ReadLine(10s);
  auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_FALSE(line.ok());
  EXPECT_LT(took, 2s);
  EXPECT_FALSE(stream.ReadLine(1s).ok());  // stays cancelled
  started->stream.reset();
  // The connection is really closed, not left open (the server sees EOF once it looks).
  server.End();
  for (int i = 0; i < 100 && !server.peer_closed(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(server.peer_closed());
}

TEST(LineStreamTest, NonSuccessStatusComesBackAsAResponse) {
  auto server = NewHttpServer(real_clock, "127.0.0.1:0");
  server->Handle("/gone", [](const ServerRequest&) {
    return Text(410, "{\"kind\":\"Status\",\"code\":410}");
  });
  ASSERT_TRUE(server->Start().ok());
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/gone";
  auto started = client->Stream(req);
  ASSERT_TRUE(started.ok()) << started.status().message();
  EXPECT_EQ(started->status, 410);
  EXPECT_FALSE(started->stream);
  ASSERT_TRUE(started->error_response);
  EXPECT_EQ(started->error_response->body, "{\"kind\":\"Status\",\"code\":410}");
  server->Stop();
}

TEST(LineStreamTest, TruncatedStreamIsAnErrorOrEnd) {
  // A server that dies mid-chunk: the reader must get an error or the end, never hang/crash.
  auto server = std::make_unique<StreamingServer>();
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/watch";
  server->Push("partial line without newline");
  auto started = client->Stream(req);
  ASSERT_TRUE(started.ok());
  auto& stream = *started->stream;
  std::thread killer([&] { server.reset(); });  // closes the socket mid-stream
  killer.join();
  auto line = stream.ReadLine(3s);
  if (line.ok()) {
    // Acceptable only as the final partial line or the end.
    SUCCEED();
  } else {
    EXPECT_NE(line.status().code(), StatusCode::kDeadlineExceeded);
  }
}

// ---- The server's limits against raw clients ----

using SteadyClock = std::chrono::steady_clock;

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the peer closes (or resets) the connection or `timeout` passes; *closed says which.
std::string ReadUntilClose(int fd, std::chrono::milliseconds timeout, bool* closed) {
  std::string out;
  const auto deadline = SteadyClock::now() + timeout;
  *closed = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())
                    .count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return out;
    char buf[16384];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// "HTTP/1.1 404 ..." -> 404; 0 when not a status line.
int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

// Records ServerOptions::on_refusal calls; outlives the server that calls it.
class RefusalLog {
 public:
  std::function<void(RefusalReason)> Callback() {
    return [this](RefusalReason r) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(r);
    };
  }
  size_t Count(RefusalReason r) const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<size_t>(std::count(seen_.begin(), seen_.end(), r));
  }
  std::vector<RefusalReason> All() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // Waits up to 5 s until `r` was counted `n` times.
  bool WaitFor(RefusalReason r, size_t n) const {
    for (int i = 0; i < 500 && Count(r) < n; ++i) std::this_thread::sleep_for(10ms);
    return Count(r) >= n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<RefusalReason> seen_;
};

HttpResponse Echo(const ServerRequest& req) { return Text(200, req.method + " " + req.body); }

class LimitsTest : public ::testing::Test {
 protected:
  void Start(ServerOptions o, std::optional<TlsConfig> tls = std::nullopt) {
    o.on_refusal = log_.Callback();
    server_ = NewHttpServer(real_clock, "127.0.0.1:0", std::move(tls), std::move(o));
    server_->Handle("/echo", Echo);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  // Sends `raw` on a new connection; returns what came back before the server closed it.
  std::string Exchange(const std::string& raw, bool* closed) {
    int fd = ConnectTo(server_->port());
    EXPECT_GE(fd, 0);
    SendAll(fd, raw);
    std::string out = ReadUntilClose(fd, 3s, closed);
    ::close(fd);
    return out;
  }

  RefusalLog log_;
  std::unique_ptr<HttpServer> server_;
};

ServerOptions StrictLimits() {
  ServerOptions o;
  o.max_body_bytes = 1024;
  o.head.max_request_line_bytes = 256;
  o.head.max_header_line_bytes = 256;
  o.head.max_header_count = 10;
  o.head.max_head_bytes = 2048;
  return o;
}

TEST_F(LimitsTest, AmbiguousOrMalformedRequestsAreRefusedAndTheConnectionClosed) {
  Start(StrictLimits());
  const std::string post = "POST /echo HTTP/1.1\r\nHost: x\r\n";
  const std::string chunked = post + "Transfer-Encoding: chunked\r\n\r\n";
  std::string many_headers = post;
  for (int i = 0; i < 10; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
  std::string many_trailers = chunked + "0\r\n";
  for (int i = 0; i < 11; ++i) many_trailers += "T-" + std::to_string(i) + ": v\r\n";
  struct Case {
    std::string name, raw;
    int status;
    RefusalReason reason;
  } cases[] = {
      {"CL and TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
       RefusalReason::kMalformed},
      {"TE and CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400,
       RefusalReason::kMalformed},
      {"duplicate CL", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400,
       RefusalReason::kMalformed},
      {"differing CL", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
       RefusalReason::kMalformed},
      {"CL list", post + "Content-Length: 5, 5\r\n\r\nhello", 400, RefusalReason::kMalformed},
      {"TE gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
       RefusalReason::kTransferEncoding},
      {"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501,
       RefusalReason::kTransferEncoding},
      {"chunk size 0x10", chunked + "0x10\r\n" + std::string(16, 'a') + "\r\n0\r\n\r\n", 400,
       RefusalReason::kMalformed},
      {"chunk size -1", chunked + "-1\r\na\r\n0\r\n\r\n", 400, RefusalReason::kMalformed},
      {"chunk size of 20 hex digits", chunked + "00000000000000000001\r\na\r\n0\r\n\r\n", 400,
       RefusalReason::kMalformed},
      {"chunk longer than its size", chunked + "3\r\nabcd\r\n0\r\n\r\n", 400,
       RefusalReason::kMalformed},
      {"chunk extension too long", chunked + "1;" + std::string(2000, 'x') + "\r\na\r\n0\r\n\r\n",
       400, RefusalReason::kMalformed},
      {"chunks over max body",
       chunked + "400\r\n" + std::string(1024, 'a') + "\r\n1\r\na\r\n0\r\n\r\n", 413,
       RefusalReason::kBodyTooLarge},
      {"trailer line too long", chunked + "0\r\nX: " + std::string(300, 'v') + "\r\n\r\n", 431,
       RefusalReason::kHeaderTooLarge},
      {"too many trailers", many_trailers + "\r\n", 431, RefusalReason::kHeaderTooLarge},
      {"malformed trailer", chunked + "0\r\nnot a field\r\n\r\n", 400, RefusalReason::kMalformed},
      {"CL over max body", post + "Content-Length: 1025\r\n\r\n", 413,
       RefusalReason::kBodyTooLarge},
      {"request line too long", "GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", 414,
       RefusalReason::kUriTooLong},
      {"header line too long", post + "X: " + std::string(300, 'v') + "\r\n\r\n", 431,
       RefusalReason::kHeaderTooLarge},
      {"too many header fields", many_headers + "\r\n", 431, RefusalReason::kHeaderTooLarge},
      {"bare LF", "GET /echo HTTP/1.1\nHost: x\n\n", 400, RefusalReason::kMalformed},
      {"bare CR in a value", post + "X: a\rb\r\n\r\n", 400, RefusalReason::kMalformed},
      {"obs-fold", post + "X: a\r\n b\r\n\r\n", 400, RefusalReason::kMalformed},
      {"HTTP/2.0", "GET /echo HTTP/2.0\r\n\r\n", 505, RefusalReason::kHttpVersion},
  };
  for (const auto& c : cases) {
    const size_t before = log_.Count(c.reason);
    bool closed = false;
    std::string resp = Exchange(c.raw, &closed);
    EXPECT_EQ(StatusOf(resp), c.status) << c.name << ": " << resp;
    EXPECT_NE(resp.find("Connection: close"), std::string::npos) << c.name;
    EXPECT_TRUE(closed) << c.name << ": the connection stays open";
    EXPECT_TRUE(log_.WaitFor(c.reason, before + 1)) << c.name;
  }
  // Still serving.
  bool closed = false;
  EXPECT_EQ(
      StatusOf(Exchange("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &closed)),
      200);
}

TEST_F(LimitsTest, WellFormedChunkedPipelinedAndHeadRequestsAreServed) {
  Start(StrictLimits());
  bool closed = false;
  std::string resp = Exchange(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(resp.find("POST hello world"), std::string::npos) << resp;
  EXPECT_NE(resp.find("POST abc"), std::string::npos) << resp;
  // HEAD: the length of the GET answer ("HEAD "), no body after the last head.
  const size_t last = resp.rfind("HTTP/1.1 200 OK");
  ASSERT_NE(last, std::string::npos);
  EXPECT_NE(resp.find("Content-Length: 5\r\n", last), std::string::npos) << resp.substr(last);
  EXPECT_EQ(resp.substr(resp.size() - 4), "\r\n\r\n") << resp.substr(last);
  EXPECT_TRUE(log_.All().empty());
}

// Sends `prefix`, then one byte of `trickle` a second until the server answers or closes;
// returns what came back and how long after the first byte the server closed.
std::string Trickle(int fd, const std::string& prefix, const std::string& trickle,
                    SteadyClock::duration* took, bool* closed) {
  const auto start = SteadyClock::now();
  SendAll(fd, prefix);
  for (size_t i = 0; i < trickle.size(); ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) break;
    if (!SendAll(fd, trickle.substr(i, 1))) break;
  }
  std::string out = ReadUntilClose(fd, 5s, closed);
  *took = SteadyClock::now() - start;
  return out;
}

TEST_F(LimitsTest, SlowlorisIsCutAtTheRequestDeadline) {
  ServerOptions o = StrictLimits();
  o.request_timeout = 2s;
  Start(o);
  const std::string slow_head = "Host: x\r\nX-Slow: " + std::string(60, 'a') + "\r\n\r\n";
  struct Case {
    std::string name, prefix, trickle;
  } cases[] = {
      {"head, a byte a second", "G", "ET /echo HTTP/1.1\r\n" + slow_head},
      {"body, a byte a second", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
       std::string(100, 'b')},
      {"chunked body, a byte a second",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
       "64\r\n" + std::string(100, 'b')},
  };
  for (const auto& c : cases) {
    int fd = ConnectTo(server_->port());
    SteadyClock::duration took{};
    bool closed = false;
    std::string resp = Trickle(fd, c.prefix, c.trickle, &took, &closed);
    ::close(fd);
    EXPECT_EQ(StatusOf(resp), 408) << c.name << ": " << resp;
    EXPECT_TRUE(closed) << c.name;
    // A per-read timeout would never fire: every read gets a byte within a second.
    EXPECT_GE(took, 1800ms) << c.name;
    EXPECT_LT(took, 3500ms) << c.name;
  }
  EXPECT_EQ(log_.Count(RefusalReason::kRequestTimeout), 3u);
}

TEST_F(LimitsTest, SilentAndIdleConnectionsAreClosed) {
  ServerOptions o = StrictLimits();
  o.request_timeout = 1s;
  o.idle_timeout = 500ms;
  Start(o);
  // Connected, never a byte: closed within request_timeout, without an answer.
  int fd = ConnectTo(server_->port());
  auto start = SteadyClock::now();
  bool closed = false;
  EXPECT_EQ(ReadUntilClose(fd, 3s, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_LT(SteadyClock::now() - start, 2s);
  ::close(fd);
  // Kept alive after an answer: closed after idle_timeout.
  fd = ConnectTo(server_->port());
  SendAll(fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  start = SteadyClock::now();
  std::string resp = ReadUntilClose(fd, 3s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_GE(SteadyClock::now() - start, 400ms);
  EXPECT_LT(SteadyClock::now() - start, 1500ms);
  ::close(fd);
  EXPECT_TRUE(log_.All().empty()) << "an idle close is not a refusal";
}

TEST_F(LimitsTest, BodiesPastTheBudgetGet503WithRetryAfterBeforeTheirBodyIsRead) {
  ServerOptions o = StrictLimits();
  o.max_body_bytes = 64 * 1024;
  o.max_body_bytes_in_flight = 128 * 1024;
  o.retry_after_seconds = 2;
  Start(o);
  const std::string body(60000, 'x');
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n";
  const std::string expect = head + "Expect: 100-continue\r\n\r\n";
  // Two requests hold 120000 bytes of the budget while their bodies are slow to come. The
  // server says "100 Continue" only once a body has its share of the budget.
  int a = ConnectTo(server_->port()), b = ConnectTo(server_->port());
  for (int fd : {a, b}) {
    SendAll(fd, expect);
    bool closed = false;
    ASSERT_EQ(StatusOf(ReadUntilClose(fd, 1s, &closed)), 100);
    SendAll(fd, body.substr(0, 1000));
  }
  // A third is refused at once, before its body is read: it announced it and never sends it.
  int c = ConnectTo(server_->port());
  SendAll(c, expect);
  bool closed = false;
  std::string resp = ReadUntilClose(c, 3s, &closed);
  ::close(c);
  EXPECT_TRUE(closed);
  ASSERT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_NE(resp.find("Retry-After: 2\r\n"), std::string::npos) << resp;
  EXPECT_NE(resp.find("131072 bytes"), std::string::npos) << resp;
  EXPECT_TRUE(log_.WaitFor(RefusalReason::kBodyBudget, 1));  // counted after the answer is sent
  EXPECT_EQ(log_.Count(RefusalReason::kBodyBudget), 1u);
  // The two held ones complete and are served; then the budget is free again.
  for (int fd : {a, b}) {
    SendAll(fd, body.substr(1000));
    std::string got;
    for (int i = 0; i < 50 && got.find("POST " + body) == std::string::npos; ++i) {
      got += ReadUntilClose(fd, 100ms, &closed);
    }
    EXPECT_EQ(StatusOf(got), 200) << got.substr(0, 200);
    ::close(fd);
  }
  resp = Exchange(head + "Connection: close\r\n\r\n" + body, &closed);
  EXPECT_EQ(StatusOf(resp), 200) << resp.substr(0, 200);
}

TEST_F(LimitsTest, ConnectionsOverTheLimitGet503AndAreClosed) {
  ServerOptions o = StrictLimits();
  o.max_connections = 2;
  Start(o);
  int a = ConnectTo(server_->port()), b = ConnectTo(server_->port());
  for (int fd : {a, b}) {
    SendAll(fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[512];
    ASSERT_GT(::recv(fd, buf, sizeof buf, 0), 0);  // both are served and kept open
  }
  bool closed = false;
  std::string resp = Exchange("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  EXPECT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_NE(resp.find("Retry-After: 1\r\n"), std::string::npos) << resp;
  EXPECT_TRUE(closed);
  EXPECT_TRUE(
      log_.WaitFor(RefusalReason::kConnectionLimit, 1));  // counted after the answer is sent
  EXPECT_EQ(log_.Count(RefusalReason::kConnectionLimit), 1u);
  ::close(a);
  // Once one is gone, a new connection is served.
  for (int i = 0; i < 100; ++i) {
    resp = Exchange("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &closed);
    if (StatusOf(resp) == 200) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  ::close(b);
}

// A TLS client on a raw socket, configured by the test.
class RawTlsClient {
 public:
  RawTlsClient(int port, int min_version, int max_version, const std::string& ciphers) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, min_version);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    // Security level 0: let the client offer what the server must refuse.
    if (!ciphers.empty()) SSL_CTX_set_cipher_list(ctx_, (ciphers + ":@SECLEVEL=0").c_str());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    fd_ = ConnectTo(port);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~RawTlsClient() {
    SSL_free(ssl_);
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  int version() const { return SSL_version(ssl_); }
  std::string cipher() const { return SSL_get_cipher_name(ssl_); }
  SSL* ssl() { return ssl_; }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  int fd_;
  bool ok_ = false;
};

TEST_F(LimitsTest, TlsOffersOnlyEcdheWithAeadAndTls13) {
  for (bool rsa : {false, true}) {
    CertPair pair = MakeSelfSigned("ciphers", "IP:127.0.0.1,DNS:localhost", rsa);
    TlsConfig serving;
    serving.client_cert_pem = pair.cert_pem;
    serving.client_key_pem = pair.key_pem;
    Start(StrictLimits(), serving);
    struct Case {
      std::string ciphers;
      bool accepted;
    } ecdsa_cases[] =
        {
            {"ECDHE-ECDSA-AES128-GCM-SHA256", true}, {"ECDHE-ECDSA-AES256-GCM-SHA384", true},
            {"ECDHE-ECDSA-CHACHA20-POLY1305", true}, {"ECDHE-ECDSA-AES128-SHA", false},  // CBC
            {"ECDHE-ECDSA-AES256-SHA384", false},                                        // CBC
        },
      rsa_cases[] = {
          {"ECDHE-RSA-AES128-GCM-SHA256", true},
          {"ECDHE-RSA-CHACHA20-POLY1305", true},
          {"AES128-GCM-SHA256", false},          // RSA key exchange, even with AEAD
          {"AES256-SHA256", false},              // RSA key exchange, CBC
          {"ECDHE-RSA-AES128-SHA", false},       // CBC
          {"DHE-RSA-AES128-GCM-SHA256", false},  // finite-field DHE
          {"AES128-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384", false},
      };
    for (const auto& c : rsa ? std::vector<Case>(std::begin(rsa_cases), std::end(rsa_cases))
                             : std::vector<Case>(std::begin(ecdsa_cases), std::end(ecdsa_cases))) {
      RawTlsClient client(server_->port(), TLS1_2_VERSION, TLS1_2_VERSION, c.ciphers);
      EXPECT_EQ(client.ok(), c.accepted) << (rsa ? "RSA " : "ECDSA ") << c.ciphers;
    }
    RawTlsClient tls13(server_->port(), TLS1_3_VERSION, TLS1_3_VERSION, "");
    ASSERT_TRUE(tls13.ok());
    EXPECT_EQ(tls13.version(), TLS1_3_VERSION);
    RawTlsClient any(server_->port(), TLS1_2_VERSION, 0, "");
    ASSERT_TRUE(any.ok());
    EXPECT_EQ(any.version(), TLS1_3_VERSION) << "the best version is chosen";
    RawTlsClient tls11(server_->port(), TLS1_VERSION, TLS1_1_VERSION, "ALL");
    EXPECT_FALSE(tls11.ok());
    EXPECT_GE(log_.Count(RefusalReason::kTlsHandshake), 1u);
    server_->Stop();
  }
}

TEST_F(LimitsTest, TlsRenegotiationIsRefused) {
  CertPair pair = MakeSelfSigned();
  TlsConfig serving;
  serving.client_cert_pem = pair.cert_pem;
  serving.client_key_pem = pair.key_pem;
  Start(StrictLimits(), serving);
  RawTlsClient client(server_->port(), TLS1_2_VERSION, TLS1_2_VERSION, "");
  ASSERT_TRUE(client.ok());
  ASSERT_EQ(SSL_renegotiate(client.ssl()), 1);
  // The server answers the new ClientHello with a no_renegotiation alert: the client's
  // renegotiation never completes (and the read times out or fails instead).
  EXPECT_NE(SSL_do_handshake(client.ssl()), 1);
  ERR_clear_error();
}

// The bytes of a real ClientHello, made with a memory BIO.
std::string ClientHelloBytes() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  (void)SSL_connect(ssl);  // wants to read the ServerHello
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return out;
}

TEST_F(LimitsTest, SlowTlsHandshakeIsCutAtTheHandshakeDeadline) {
  CertPair pair = MakeSelfSigned();
  TlsConfig serving;
  serving.client_cert_pem = pair.cert_pem;
  serving.client_key_pem = pair.key_pem;
  ServerOptions o = StrictLimits();
  o.handshake_timeout = 1500ms;
  Start(o, serving);
  const std::string hello = ClientHelloBytes();
  ASSERT_GT(hello.size(), 100u);
  struct Case {
    std::string name, prefix, trickle;
  } cases[] = {
      {"silent", "", ""},
      {"ClientHello, a byte a second", hello.substr(0, 1), hello.substr(1)},
  };
  for (const auto& c : cases) {
    int fd = ConnectTo(server_->port());
    SteadyClock::duration took{};
    bool closed = false;
    if (c.prefix.empty()) {
      const auto start = SteadyClock::now();
      ReadUntilClose(fd, 5s, &closed);
      took = SteadyClock::now() - start;
    } else {
      Trickle(fd, c.prefix, c.trickle, &took, &closed);
    }
    ::close(fd);
    EXPECT_TRUE(closed) << c.name;
    EXPECT_GE(took, 1300ms) << c.name;
    EXPECT_LT(took, 3000ms) << c.name;
  }
  EXPECT_EQ(log_.Count(RefusalReason::kHandshakeTimeout), 2u);
}

TEST_F(LimitsTest, SlowlorisInsideTlsRecordsIsCut) {
  CertPair pair = MakeSelfSigned();
  TlsConfig serving;
  serving.client_cert_pem = pair.cert_pem;
  serving.client_key_pem = pair.key_pem;
  ServerOptions o = StrictLimits();
  o.request_timeout = 2s;
  Start(o, serving);
  RawTlsClient client(server_->port(), TLS1_2_VERSION, 0, "");
  ASSERT_TRUE(client.ok());
  const std::string head =
      "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(40, 'a') + "\r\n\r\n";
  const auto start = SteadyClock::now();
  std::string resp;
  const int fd = SSL_get_fd(client.ssl());
  for (char ch : head) {
    ASSERT_EQ(SSL_write(client.ssl(), &ch, 1), 1);  // one record per byte
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) break;
  }
  char buf[4096];
  for (int r; (r = SSL_read(client.ssl(), buf, sizeof buf)) > 0;)
    resp.append(buf, static_cast<size_t>(r));
  ERR_clear_error();
  const auto took = SteadyClock::now() - start;
  EXPECT_EQ(StatusOf(resp), 408) << resp;
  EXPECT_GE(took, 1800ms);
  EXPECT_LT(took, 3500ms);
  EXPECT_TRUE(log_.WaitFor(RefusalReason::kRequestTimeout, 1));  // counted after the answer is sent
  EXPECT_EQ(log_.Count(RefusalReason::kRequestTimeout), 1u);
}

TEST_F(LimitsTest, MethodsAndBodiesCanBeRestricted) {
  ServerOptions o = StrictLimits();
  o.allowed_methods = {"GET", "HEAD"};
  o.allow_body = false;
  o.max_body_bytes = 0;
  o.max_body_bytes_in_flight = 0;
  Start(o);
  struct Case {
    std::string name, raw;
    int status;
  } cases[] = {
      {"GET", "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200},
      {"GET with Content-Length: 0",
       "GET /echo HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 200},
      {"POST with a body", "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405},
      {"DELETE", "DELETE /echo HTTP/1.1\r\n\r\n", 405},
      {"GET with a body", "GET /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413},
      {"GET with a huge length", "GET /echo HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413},
      {"GET chunked", "GET /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413},
  };
  for (const auto& c : cases) {
    bool closed = false;
    std::string resp = Exchange(c.raw, &closed);
    EXPECT_EQ(StatusOf(resp), c.status) << c.name << ": " << resp;
    EXPECT_TRUE(closed) << c.name;
    if (c.status == 405) {
      EXPECT_NE(resp.find("Allow: GET, HEAD\r\n"), std::string::npos) << resp;
    }
  }
  EXPECT_EQ(log_.Count(RefusalReason::kMethodNotAllowed), 2u);
  EXPECT_EQ(log_.Count(RefusalReason::kBodyNotAllowed), 3u);
}

// ---- response body caps ----

// A raw server that answers every request with a body of `total` bytes in 64 KiB pieces,
// framed as `mode` says, counting what it managed to send (it stops when the client hangs up).
class BigBodyServer {
 public:
  // kDeclaredOnly: a Content-Length of `total`, then no body at all until the client hangs up.
  enum class Mode { kChunked, kUntilClose, kContentLength, kDeclaredOnly, kRedirect };
  BigBodyServer(Mode mode, size_t total) : mode_(mode), total_(total) {
    fd_ = BindLoopback(8, &port_);
    thread_ = std::thread([this] {
      for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0;) Answer(c);
    });
  }
  ~BigBodyServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/configz"; }
  size_t sent() const { return sent_; }

 private:
  void Answer(int c) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, n);
    }
    std::string hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    if (mode_ == Mode::kRedirect) {
      hdr = "HTTP/1.1 302 Found\r\nLocation: " + url() + "2\r\nContent-Length: 0\r\n\r\n";
      ::send(c, hdr.data(), hdr.size(), MSG_NOSIGNAL);
      ::close(c);
      return;
    }
    if (mode_ == Mode::kChunked) hdr += "Transfer-Encoding: chunked\r\n";
    if (mode_ == Mode::kContentLength || mode_ == Mode::kDeclaredOnly) {
      hdr += "Content-Length: " + std::to_string(total_) + "\r\n";
    }
    if (mode_ == Mode::kUntilClose) hdr += "Connection: close\r\n";
    hdr += "\r\n";
    ::send(c, hdr.data(), hdr.size(), MSG_NOSIGNAL);
    if (mode_ == Mode::kDeclaredOnly) {
      timeval tv{10, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      while (::recv(c, buf, sizeof buf, 0) > 0) {
      }
      ::close(c);
      return;
    }
    const std::string piece(64 * 1024, ' ');
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    const std::string frame = mode_ == Mode::kChunked ? std::string(size) + piece + "\r\n" : piece;
    for (size_t done = 0; done < total_; done += piece.size()) {
      if (::send(c, frame.data(), frame.size(), MSG_NOSIGNAL) < 0) break;
      sent_ += piece.size();
    }
    if (mode_ == Mode::kChunked) ::send(c, "0\r\n\r\n", 5, MSG_NOSIGNAL);
    ::close(c);
  }

  const Mode mode_;
  const size_t total_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<size_t> sent_{0};
  std::thread thread_;
};

// The process's peak resident set since the last reset, in KiB (VmHWM), or its current one
// when the peak cannot be reset.
size_t ResidentKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::stoul(line.substr(std::strlen(field)));
  }
  return 0;
}
bool ResetPeakResident() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

TEST(ResponseCapTest, BodiesAtAndUnderTheCapArriveWhole) {
  auto server = NewHttpServer(real_clock, "127.0.0.1:0");
  server->Handle("/body", [](const ServerRequest& req) {
    return Text(200, std::string(std::stoul(req.query.substr(2)), 'b'));
  });
  ASSERT_TRUE(server->Start().ok());
  auto client = NewHttpClient(real_clock, TlsConfig{});
  const std::string base = "http://127.0.0.1:" + std::to_string(server->port()) + "/body?n=";
  for (size_t n : {size_t{0}, size_t{1023}, size_t{1024}}) {
    HttpRequest req;
    req.url = base + std::to_string(n);
    req.max_body_bytes = 1024;
    auto resp = client->Send(req);
    ASSERT_TRUE(resp.ok()) << n << ": " << resp.status().message();
    EXPECT_EQ(resp->body.size(), n);
  }
  HttpRequest req;
  req.url = base + "1025";
  req.max_body_bytes = 1024;
  auto over = client->Send(req);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  // Refused at the headers (Content-Length) or at the first piece past the cap, whichever
  // cpprestsdk gets to first; both name the limit.
  EXPECT_NE(over.status().message().find("larger than 1 KiB"), std::string::npos)
      << over.status().message();
  // The connection that was refused is not reused: the next request on the client is fine.
  req.url = base + "10";
  auto again = client->Send(req);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->body, std::string(10, 'b'));
  // The default cap is 16 MiB.
  EXPECT_EQ(HttpRequest{}.max_body_bytes, 16u << 20);
  server->Stop();
}

// The scenario: a node streams far more than any configz. The client must give up at
// the cap, while the body arrives, with memory that never holds the body.
TEST(ResponseCapTest, AStreamedBodyIsCutAtTheCapWithoutHoldingIt) {
  auto client = NewHttpClient(real_clock, TlsConfig{});
  {  // warm up: the client's threads and buffers exist before the measurement
    BigBodyServer small(BigBodyServer::Mode::kChunked, 64 * 1024);
    HttpRequest req;
    req.url = small.url();
    ASSERT_TRUE(client->Send(req).ok());
  }
  for (auto mode : {BigBodyServer::Mode::kChunked, BigBodyServer::Mode::kUntilClose}) {
    BigBodyServer server(mode, 64u << 20);
    const bool peak = ResetPeakResident();
    const size_t before = ResidentKiB(peak ? "VmHWM:" : "VmRSS:");
    HttpRequest req;
    req.url = server.url();
    req.max_body_bytes = 1u << 20;
    req.timeout = 30s;
    const auto start = std::chrono::steady_clock::now();
    auto resp = client->Send(req);
    const auto took = std::chrono::steady_clock::now() - start;
    const size_t after = ResidentKiB(peak ? "VmHWM:" : "VmRSS:");
    ASSERT_FALSE(resp.ok());
    EXPECT_EQ(resp.status().code(), StatusCode::kResourceExhausted) << resp.status().message();
    EXPECT_NE(resp.status().message().find("response body larger than 1 MiB"), std::string::npos)
        << resp.status().message();
    EXPECT_LT(took, 10s);
    EXPECT_LT(after - std::min(after, before), 16u * 1024) << "KiB grown while 64 MiB were offered";
  }
}

TEST(ResponseCapTest, ADeclaredLengthOverTheCapFailsBeforeTheBodyIsRead) {
  BigBodyServer server(BigBodyServer::Mode::kContentLength, 64u << 20);
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = server.url();
  req.max_body_bytes = 4u << 20;
  auto resp = client->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(resp.status().message().find("larger than 4 MiB"), std::string::npos)
      << resp.status().message();
  EXPECT_LT(server.sent(), 32u << 20) << "the transfer stopped long before its end";
}

TEST(ResponseCapTest, ADeclaredLengthAloneIsEnough) {
  BigBodyServer server(BigBodyServer::Mode::kDeclaredOnly, 64u << 20);
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = server.url();
  req.max_body_bytes = 4u << 20;
  req.timeout = 30s;
  const auto start = std::chrono::steady_clock::now();
  auto resp = client->Send(req);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s)
      << "refused at the headers, not at the deadline";
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(resp.status().message().find(
                "response body of 67108864 bytes (Content-Length) is larger than 4 MiB"),
            std::string::npos)
      << resp.status().message();
}

TEST(ResponseCapTest, RedirectsAreNotFollowed) {
  // Following one would send the request's headers (a bearer token) wherever Location points.
  BigBodyServer server(BigBodyServer::Mode::kRedirect, 0);
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = server.url();
  req.headers["Authorization"] = "Bearer secret";
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 302);
}

TEST(ResponseCapTest, AStreamsErrorBodyIsReadUpToTheCap) {
  auto server = NewHttpServer(real_clock, "127.0.0.1:0");
  server->Handle("/watch",
                 [](const ServerRequest&) { return Text(500, std::string(4u << 20, 'e')); });
  ASSERT_TRUE(server->Start().ok());
  auto client = NewHttpClient(real_clock, TlsConfig{});
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/watch";
  req.max_body_bytes = 64 * 1024;
  req.timeout = 5s;
  auto started = client->Stream(req);
  ASSERT_TRUE(started.ok()) << started.status().message();
  ASSERT_TRUE(started->error_response);
  EXPECT_EQ(started->error_response->status, 500);
  EXPECT_EQ(started->error_response->body.size(), 64u * 1024);
  server->Stop();
}

}  // namespace
}  // namespace kpc::net
