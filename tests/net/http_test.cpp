// Loopback tests of NewHttpServer + NewHttpClient: plain HTTP, HTTPS with a certificate made
// here with OpenSSL, streaming line by line, idle timeouts and Cancel. 127.0.0.1 port 0 only.

#include "net/http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "tests/net/lsan_suppressions.h"

namespace kpc::net {
namespace {

// Real I/O: deadlines run on the real clock.
const RealClock real_clock;

using namespace std::chrono_literals;

struct CertPair {
  std::string cert_pem, key_pem;
};

// Self-signed P-256 certificate for 127.0.0.1 / localhost (also usable as its own CA).
CertPair MakeSelfSigned(const std::string& cn = "kpc-test") {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,digitalSignature,keyCertSign"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  CertPair out;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  out.cert_pem.assign(data, n);
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(b, &data);
  out.key_pem.assign(data, n);
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

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
    server_->Handle("/throws", [](const ServerRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
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
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
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
  CertPair server_pair = MakeSelfSigned("server");
  CertPair client_pair = MakeSelfSigned("client");
  TlsConfig serving;
  serving.client_cert_pem = server_pair.cert_pem;
  serving.client_key_pem = server_pair.key_pem;
  serving.ca_pem = client_pair.cert_pem;  // trust this client
  auto server = NewHttpServer(real_clock, "127.0.0.1:0", serving);
  server->Handle("/m", [](const ServerRequest&) { return Text(200, "mtls"); });
  ASSERT_TRUE(server->Start().ok());
  HttpRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(server->port()) + "/m";
  req.timeout = 5s;

  TlsConfig without;
  without.ca_pem = server_pair.cert_pem;
  EXPECT_FALSE(NewHttpClient(real_clock, without)->Send(req).ok());

  TlsConfig with = without;
  with.client_cert_pem = client_pair.cert_pem;
  with.client_key_pem = client_pair.key_pem;
  auto resp = NewHttpClient(real_clock, with)->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->body, "mtls");
  server->Stop();
}

// A raw chunked-streaming server: the test pushes chunks; Close() ends the response.
class StreamingServer {
 public:
  StreamingServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 4);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
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
  server->Handle("/gone", [](const ServerRequest&) { return Text(410, "{\"kind\":\"Status\",\"code\":410}"); });
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

// ---- response body caps ----

// A raw server that answers every request with a body of `total` bytes in 64 KiB pieces,
// framed as `mode` says, counting what it managed to send (it stops when the client hangs up).
class BigBodyServer {
 public:
  // kDeclaredOnly: a Content-Length of `total`, then no body at all until the client hangs up.
  enum class Mode { kChunked, kUntilClose, kContentLength, kDeclaredOnly, kRedirect };
  BigBodyServer(Mode mode, size_t total) : mode_(mode), total_(total) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
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
