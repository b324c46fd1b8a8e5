// kube::Client over a fake net::HttpClient: URLs and headers, typed errors, Retry-After, token
// file rotation, rate limiting, request counters, and watch stream decoding.

#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>

#include "kube/client.h"

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;

class FakeLineStream : public net::LineStream {
 public:
  explicit FakeLineStream(std::deque<std::string> lines, bool hang_at_end = false)
      : lines_(std::move(lines)), hang_(hang_at_end) {}
  StatusOr<std::optional<std::string>> ReadLine(std::chrono::milliseconds idle) override {
    if (cancelled_) return Status(StatusCode::kUnavailable, "cancelled");
    if (!lines_.empty()) {
      auto l = lines_.front();
      lines_.pop_front();
      return std::optional<std::string>(l);
    }
    if (hang_) {
      if (on_idle) {
        on_idle();
      } else {
        std::this_thread::sleep_for(std::min(idle, std::chrono::milliseconds(20)));
      }
      return Status(StatusCode::kDeadlineExceeded, "idle");
    }
    return std::optional<std::string>();
  }
  void Cancel() override {
    cancelled_ = true;
    if (cancel_flag) *cancel_flag = true;
  }
  std::atomic<bool> cancelled_{false};
  std::shared_ptr<std::atomic<bool>> cancel_flag;  // outlives the stream
  std::function<void()> on_idle;                   // instead of sleeping while hanging

 private:
  std::deque<std::string> lines_;
  bool hang_;
};

class FakeTransport : public net::HttpClient {
 public:
  std::function<StatusOr<net::HttpResponse>(const net::HttpRequest&)> on_send;
  std::function<StatusOr<StreamResult>(const net::HttpRequest&)> on_stream;
  std::vector<net::HttpRequest> requests;
  std::mutex mu;

  StatusOr<net::HttpResponse> Send(const net::HttpRequest& req) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(req);
    }
    return on_send(req);
  }
  StatusOr<StreamResult> Stream(const net::HttpRequest& req) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(req);
    }
    return on_stream(req);
  }
};

net::HttpResponse Resp(int status, std::string body, std::map<std::string, std::string> headers = {}) {
  net::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return nlohmann::json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                        {"code", code},     {"reason", reason},    {"message", message}}
      .dump();
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = std::make_shared<FakeTransport>();
    cfg_.server = "https://10.0.0.1:6443/";
    cfg_.bearer_token = "tok";
    cfg_.qps = 0;  // unlimited unless a test says otherwise
  }
  std::unique_ptr<Client> Make() { return NewClientWithTransport(transport_, clock_, cfg_); }

  FakeClock clock_;
  std::shared_ptr<FakeTransport> transport_;
  ClientConfig cfg_;
};

TEST_F(ClientTest, GetBuildsUrlAndHeadersAndParsesJson) {
  transport_->on_send = [](const net::HttpRequest&) { return Resp(200, R"({"kind":"NodeList","items":[]})"); };
  auto client = Make();
  Result r = client->Get("/api/v1/nodes", "limit=500");
  ASSERT_TRUE(r.ok()) << r.status.message();
  EXPECT_EQ(r.body["kind"], "NodeList");
  ASSERT_EQ(transport_->requests.size(), 1u);
  const auto& req = transport_->requests[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.url, "https://10.0.0.1:6443/api/v1/nodes?limit=500");
  EXPECT_EQ(req.headers.at("Authorization"), "Bearer tok");
  EXPECT_EQ(req.headers.at("Accept"), "application/json");
  EXPECT_EQ(req.headers.at("User-Agent"), "kubelet-policy-controller");
}

TEST_F(ClientTest, WritesSendJsonBodiesWithContentType) {
  transport_->on_send = [](const net::HttpRequest& req) { return Resp(201, req.body); };
  auto client = Make();
  nlohmann::json obj = {{"metadata", {{"name", "x"}}}};
  Result r = client->Create("/api/v1/namespaces/a/configmaps", obj);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.body, obj);
  r = client->Patch("/api/v1/namespaces/a/configmaps/x", {{"data", {{"k", "v"}}}}, "application/merge-patch+json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(transport_->requests[0].method, "POST");
  EXPECT_EQ(transport_->requests[0].headers.at("Content-Type"), "application/json");
  EXPECT_EQ(transport_->requests[1].method, "PATCH");
  EXPECT_EQ(transport_->requests[1].headers.at("Content-Type"), "application/merge-patch+json");
}

struct ErrorCase {
  int http;
  std::string reason;
  StatusCode code;
};

TEST_F(ClientTest, HttpErrorsMapToTypedStatuses) {
  std::vector<ErrorCase> cases = {
      {404, "NotFound", StatusCode::kNotFound},           {409, "AlreadyExists", StatusCode::kAlreadyExists},
      {409, "Conflict", StatusCode::kConflict},           {410, "Expired", StatusCode::kGone},
      {422, "Invalid", StatusCode::kInvalidArgument},     {400, "BadRequest", StatusCode::kInvalidArgument},
      {401, "Unauthorized", StatusCode::kPermissionDenied}, {403, "Forbidden", StatusCode::kPermissionDenied},
      {429, "TooManyRequests", StatusCode::kUnavailable}, {500, "InternalError", StatusCode::kUnavailable},
      {503, "ServiceUnavailable", StatusCode::kUnavailable}, {504, "Timeout", StatusCode::kDeadlineExceeded},
  };
  auto client = Make();
  for (const auto& c : cases) {
    transport_->on_send = [&](const net::HttpRequest&) {
      return Resp(c.http, StatusBody(c.http, c.reason, "server says " + c.reason));
    };
    Result r = client->Get("/api/v1/namespaces/a/configmaps/x");
    EXPECT_EQ(r.status.code(), c.code) << c.http << " " << c.reason;
    ASSERT_TRUE(r.api_error.has_value());
    EXPECT_EQ(r.api_error->http_status, c.http);
    EXPECT_EQ(r.api_error->reason, c.reason);
    EXPECT_EQ(r.api_error->message, "server says " + c.reason);
    EXPECT_NE(r.status.message().find("server says " + c.reason), std::string::npos);
  }
}

TEST_F(ClientTest, RetryAfterIsParsed) {
  cfg_.sleep = [this](std::chrono::nanoseconds d) { clock_.Advance(d); };  // throttled retries
  transport_->on_send = [](const net::HttpRequest&) {
    return Resp(429, StatusBody(429, "TooManyRequests", "slow down"), {{"retry-after", "7"}});
  };
  Result r = Make()->Get("/api/v1/nodes");
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(r.api_error && r.api_error->retry_after);
  EXPECT_EQ(*r.api_error->retry_after, 7s);
  // A date form or garbage is ignored rather than misread.
  transport_->on_send = [](const net::HttpRequest&) {
    return Resp(503, "oops", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}});
  };
  r = Make()->Get("/api/v1/nodes");
  ASSERT_TRUE(r.api_error);
  EXPECT_FALSE(r.api_error->retry_after);
}

TEST(ThrottleDelayTest, RetryAfterIsBoundedWithAFallback) {
  struct Case {
    std::map<std::string, std::string> headers;
    std::optional<std::chrono::seconds> parsed;
    std::chrono::seconds api, configz;  // kApiThrottle; 1 s..10 min, 10 s without one
  };
  const ThrottleBounds configz{1s, 600s, 10s};
  const std::vector<Case> cases = {
      {{}, std::nullopt, 1s, 10s},
      {{{"retry-after", "7"}}, 7s, 7s, 7s},
      {{{"retry-after", "0"}}, 0s, 1s, 1s},
      {{{"retry-after", "120"}}, 120s, 10s, 120s},
      {{{"retry-after", "86400"}}, 86400s, 10s, 600s},
      {{{"retry-after", "999999999"}}, 999999999s, 10s, 600s},
      {{{"retry-after", "9999999999"}}, std::nullopt, 1s, 10s},  // too long to be sane
      {{{"retry-after", "-5"}}, std::nullopt, 1s, 10s},
      {{{"retry-after", "1.5"}}, std::nullopt, 1s, 10s},
      {{{"retry-after", ""}}, std::nullopt, 1s, 10s},
      {{{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}, std::nullopt, 1s, 10s},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.headers.empty() ? "absent" : "\"" + c.headers.begin()->second + "\"");
    EXPECT_EQ(RetryAfterOf(c.headers), c.parsed);
    EXPECT_EQ(ThrottleDelay(RetryAfterOf(c.headers), kApiThrottle), c.api);
    EXPECT_EQ(ThrottleDelay(RetryAfterOf(c.headers), configz), c.configz);
  }
}

TEST_F(ClientTest, A429IsRetriedAfterItsBoundedRetryAfter) {
  std::vector<std::chrono::nanoseconds> sleeps;
  cfg_.sleep = [&](std::chrono::nanoseconds d) {
    sleeps.push_back(d);
    clock_.Advance(d);
  };
  int throttled = 2;
  transport_->on_send = [&](const net::HttpRequest& req) {
    if (throttled-- > 0) {
      return Resp(429, StatusBody(429, "TooManyRequests", "slow down"),
                  {{"retry-after", throttled == 1 ? "3" : "3600"}});
    }
    return Resp(201, req.body);
  };
  auto client = Make();
  Result r = client->Create("/api/v1/namespaces/a/configmaps", {{"metadata", {{"name", "x"}}}});
  ASSERT_TRUE(r.ok()) << r.status.message();
  EXPECT_EQ(transport_->requests.size(), 3u);
  EXPECT_EQ(sleeps, (std::vector<std::chrono::nanoseconds>{3s, 10s}));  // 3600 s bounded to 10 s
  EXPECT_EQ((client->RequestCounts()[{"POST", "429"}]), 2u);
  EXPECT_EQ((client->RequestCounts()[{"POST", "201"}]), 1u);

  // Throttled every time: kMaxThrottledRetries retries, then the 429 is the answer.
  transport_->requests.clear();
  sleeps.clear();
  throttled = 100;
  r = client->Delete("/api/v1/namespaces/a/configmaps/x");
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(r.api_error);
  EXPECT_EQ(r.api_error->http_status, 429);
  EXPECT_EQ(transport_->requests.size(), 1u + kMaxThrottledRetries);
  EXPECT_EQ(sleeps.size(), static_cast<size_t>(kMaxThrottledRetries));

  // GetRaw leaves the schedule to its caller: one request, the 429 comes back as the answer.
  transport_->requests.clear();
  sleeps.clear();
  throttled = 1;
  auto raw = client->GetRaw("/api/v1/nodes/n1/proxy/configz", 5s, 4096);
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  EXPECT_EQ(raw->status, 429);
  EXPECT_EQ(raw->headers.at("retry-after"), "3600");
  EXPECT_EQ(transport_->requests.size(), 1u);
  EXPECT_TRUE(sleeps.empty());
}

TEST_F(ClientTest, AWatchRefusedWith429IsReopenedAfterItsRetryAfter) {
  std::vector<std::chrono::nanoseconds> sleeps;
  cfg_.sleep = [&](std::chrono::nanoseconds d) {
    sleeps.push_back(d);
    clock_.Advance(d);
  };
  int opened = 0;
  transport_->on_stream = [&](const net::HttpRequest&) -> StatusOr<net::HttpClient::StreamResult> {
    if (opened++ == 0) {
      net::HttpClient::StreamResult refused;
      refused.status = 429;
      refused.error_response =
          Resp(429, StatusBody(429, "TooManyRequests", "slow down"), {{"retry-after", "2"}});
      return refused;
    }
    net::HttpClient::StreamResult s;
    s.status = 200;
    s.stream = std::make_unique<FakeLineStream>(std::deque<std::string>{});
    return s;
  };
  Status s = Make()->Watch(
      "/api/v1/nodes", "", [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(opened, 2);
  EXPECT_EQ(sleeps, (std::vector<std::chrono::nanoseconds>{2s}));
}

// A gate the test opens and closes.
class SwitchGate : public MutationGate {
 public:
  Status MayMutate() const override {
    ++asked;
    return open ? Status::Ok() : FailedPrecondition("not the leader: lease kpc/lock is not held");
  }
  std::atomic<bool> open{false};
  mutable std::atomic<int> asked{0};
};

TEST_F(ClientTest, AClosedGateSendsNoWriteAndLetsReadsThrough) {
  transport_->on_send = [](const net::HttpRequest& req) {
    return Resp(200, req.body.empty() ? "{}" : req.body);
  };
  transport_->on_stream = [](const net::HttpRequest&) -> StatusOr<net::HttpClient::StreamResult> {
    net::HttpClient::StreamResult s;
    s.status = 200;
    s.stream = std::make_unique<FakeLineStream>(std::deque<std::string>{});
    return s;
  };
  SwitchGate gate;
  auto client = NewClientWithTransport(transport_, clock_, cfg_, &gate);
  const nlohmann::json obj = {{"metadata", {{"name", "x"}}}};
  std::vector<Result> writes = {
      client->Create("/apis/batch/v1/namespaces/r/jobs", obj),
      client->Update("/apis/kubeletpolicy.io/v1alpha1/kubeletpolicies/cis/status", obj),
      client->Patch("/apis/batch/v1/namespaces/r/jobs/j", obj, "application/merge-patch+json"),
      client->Delete("/apis/batch/v1/namespaces/r/jobs/j"),
  };
  for (const auto& r : writes) {
    EXPECT_EQ(r.status.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status.message().find("not the leader"), std::string::npos) << r.status.message();
    EXPECT_FALSE(r.api_error);
  }
  EXPECT_TRUE(transport_->requests.empty()) << "nothing was sent";
  EXPECT_TRUE(client->RequestCounts().empty());
  EXPECT_EQ(gate.asked.load(), 4);

  // Reads and watches are never gated.
  EXPECT_TRUE(client->Get("/api/v1/nodes").ok());
  EXPECT_TRUE(client->GetRaw("/api/v1/nodes/n1/proxy/configz", 5s, 4096).ok());
  EXPECT_TRUE(client
                  ->Watch(
                      "/api/v1/nodes", "", [](const WatchEvent&) { return true; }, nullptr)
                  .ok());
  EXPECT_EQ(transport_->requests.size(), 3u);
  EXPECT_EQ(gate.asked.load(), 4);

  gate.open = true;
  EXPECT_TRUE(client->Create("/apis/batch/v1/namespaces/r/jobs", obj).ok());
  EXPECT_EQ(transport_->requests.size(), 4u);
  EXPECT_EQ(transport_->requests.back().method, "POST");
}

TEST_F(ClientTest, TheGateIsAskedAgainBeforeEveryRetry) {
  SwitchGate gate;
  gate.open = true;
  // The gate closes while the client waits out a 429 (the lease ran out meanwhile).
  cfg_.sleep = [&](std::chrono::nanoseconds d) {
    clock_.Advance(d);
    gate.open = false;
  };
  transport_->on_send = [](const net::HttpRequest&) {
    return Resp(429, StatusBody(429, "TooManyRequests", "slow down"), {{"retry-after", "1"}});
  };
  auto client = NewClientWithTransport(transport_, clock_, cfg_, &gate);
  Result r = client->Create("/apis/batch/v1/namespaces/r/jobs", {{"metadata", {{"name", "x"}}}});
  EXPECT_EQ(r.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(transport_->requests.size(), 1u) << "the retry was not sent";
}

TEST_F(ClientTest, GarbageBodiesNeverThrow) {
  transport_->on_send = [](const net::HttpRequest&) { return Resp(500, "\xff\xfe<html>not json"); };
  Result r = Make()->Get("/x");
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status.message().find("HTTP 500"), std::string::npos);
  transport_->on_send = [](const net::HttpRequest&) { return Resp(200, "{truncated"); };
  r = Make()->Get("/x");
  EXPECT_EQ(r.status.code(), StatusCode::kInternal);
  transport_->on_send = [](const net::HttpRequest&) -> StatusOr<net::HttpResponse> {
    return Status(StatusCode::kUnavailable, "connection refused");
  };
  r = Make()->Get("/x");
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(r.api_error);
}

TEST_F(ClientTest, RequestCountsByVerbAndCode) {
  int n = 0;
  transport_->on_send = [&](const net::HttpRequest&) -> StatusOr<net::HttpResponse> {
    if (++n == 3) return Status(StatusCode::kUnavailable, "down");
    return Resp(n == 1 ? 200 : 404, "{}");
  };
  auto client = Make();
  (void)client->Get("/a");
  (void)client->Get("/b");
  (void)client->Delete("/c");
  auto counts = client->RequestCounts();
  EXPECT_EQ((counts[{"GET", "200"}]), 1u);
  EXPECT_EQ((counts[{"GET", "404"}]), 1u);
  EXPECT_EQ((counts[{"DELETE", "<error>"}]), 1u);
}

TEST_F(ClientTest, TokenFileIsReReadPeriodicallyAndOn401) {
  auto dir = std::filesystem::temp_directory_path() / ("kpc-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = dir / "token";
  auto write = [&](const std::string& t) { std::ofstream(file) << t << "\n"; };
  write("first");
  cfg_.bearer_token.clear();
  cfg_.bearer_token_file = file.string();
  std::vector<std::string> seen;
  std::string accepted;  // empty: any token
  transport_->on_send = [&](const net::HttpRequest& req) {
    std::string auth = req.headers.count("Authorization") ? req.headers.at("Authorization") : "";
    seen.push_back(auth);
    return Resp(accepted.empty() || auth == accepted ? 200 : 401, "{}");
  };
  auto client = Make();
  EXPECT_TRUE(client->Get("/x").ok());
  write("second");
  EXPECT_TRUE(client->Get("/x").ok());  // cached for a minute
  clock_.Advance(59s);
  EXPECT_TRUE(client->Get("/x").ok());
  clock_.Advance(1s);
  EXPECT_TRUE(client->Get("/x").ok());
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], "Bearer first");
  EXPECT_EQ(seen[1], "Bearer first");
  EXPECT_EQ(seen[2], "Bearer first");
  EXPECT_EQ(seen[3], "Bearer second");

  // The server starts rejecting the cached token before the minute is up: the client re-reads
  // the file at once and retries once with the new token.
  accepted = "Bearer rotated";
  write("rotated");
  seen.clear();
  Result r = client->Get("/x");
  EXPECT_TRUE(r.ok()) << r.status.message();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "Bearer second");
  EXPECT_EQ(seen[1], "Bearer rotated");
  std::filesystem::remove_all(dir);
}

TEST_F(ClientTest, RateLimiterSpacesRequests) {
  std::vector<std::chrono::nanoseconds> sleeps;
  cfg_.qps = 2;
  cfg_.burst = 2;
  cfg_.sleep = [&](std::chrono::nanoseconds d) {
    sleeps.push_back(d);
    clock_.Advance(d);
  };
  transport_->on_send = [](const net::HttpRequest&) { return Resp(200, "{}"); };
  auto client = Make();
  for (int i = 0; i < 4; ++i) (void)client->Get("/x");
  ASSERT_EQ(sleeps.size(), 2u);  // burst of 2, then 500 ms apart
  EXPECT_NEAR(std::chrono::duration<double>(sleeps[0]).count(), 0.5, 1e-6);
  EXPECT_NEAR(std::chrono::duration<double>(sleeps[1]).count(), 0.5, 1e-6);
}

TEST_F(ClientTest, GetRawReturnsBodyOrError) {
  transport_->on_send = [](const net::HttpRequest& req) {
    if (req.url.find("/good/") != std::string::npos) return Resp(200, R"({"kubeletconfig":{}})");
    return Resp(503, "Error trying to reach service: dial tcp: connection refused");
  };
  auto client = Make();
  auto good = client->GetRaw("/api/v1/nodes/good/proxy/configz", 5s, 4096);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->body, R"({"kubeletconfig":{}})");
  EXPECT_EQ(transport_->requests.back().timeout, 5s);
  EXPECT_EQ(transport_->requests.back().max_body_bytes,
            4096u);              // the caller's cap reaches the transport
  client->Get("/api/v1/nodes");  // API answers (big unpaginated lists) keep the generous cap
  EXPECT_EQ(transport_->requests.back().max_body_bytes, 256u << 20);
  auto bad = client->GetRaw("/api/v1/nodes/bad/proxy/configz", 5s, 4096);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(bad.status().message().find("connection refused"), std::string::npos);
}

net::HttpClient::StreamResult StreamOf(std::deque<std::string> lines, bool hang = false) {
  net::HttpClient::StreamResult s;
  s.status = 200;
  s.stream = std::make_unique<FakeLineStream>(std::move(lines), hang);
  return s;
}

TEST_F(ClientTest, WatchDecodesEventsAndAddsWatchParameters) {
  transport_->on_stream = [](const net::HttpRequest&) {
    return StreamOf({R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}})", "",
                     R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})",
                     R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"10"}}})"});
  };
  std::vector<WatchEvent> events;
  Status s = Make()->Watch("/api/v1/nodes", "resourceVersion=4&timeoutSeconds=60",
                           [&](const WatchEvent& ev) {
                             events.push_back(ev);
                             return true;
                           },
                           [] { return false; });
  EXPECT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "ADDED");
  EXPECT_EQ(events[1].type, "BOOKMARK");
  EXPECT_EQ(events[2].type, "DELETED");
  const auto& url = transport_->requests[0].url;
  EXPECT_NE(url.find("resourceVersion=4"), std::string::npos) << url;
  EXPECT_NE(url.find("timeoutSeconds=60"), std::string::npos) << url;
  EXPECT_NE(url.find("watch=1"), std::string::npos) << url;
  EXPECT_NE(url.find("allowWatchBookmarks=true"), std::string::npos) << url;
}

TEST_F(ClientTest, WatchAlwaysHasAFiniteTimeout) {
  transport_->on_stream = [](const net::HttpRequest&) { return StreamOf({}); };
  EXPECT_TRUE(Make()->Watch("/api/v1/nodes", "", [](const WatchEvent&) { return true; }, [] { return false; }).ok());
  EXPECT_NE(transport_->requests[0].url.find("timeoutSeconds="), std::string::npos);
}

TEST_F(ClientTest, WatchErrorEvent410IsGone) {
  transport_->on_stream = [](const net::HttpRequest&) {
    return StreamOf({R"j({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (200)"}})j"});
  };
  Status s = Make()->Watch("/api/v1/nodes", "resourceVersion=1", [](const WatchEvent&) { return true; },
                           [] { return false; });
  EXPECT_EQ(s.code(), StatusCode::kGone);
  EXPECT_NE(s.message().find("too old"), std::string::npos);
}

TEST_F(ClientTest, WatchHttp410IsGone) {
  transport_->on_stream = [](const net::HttpRequest&) {
    net::HttpClient::StreamResult s;
    s.status = 410;
    s.error_response = Resp(410, StatusBody(410, "Expired", "too old"));
    return s;
  };
  Status s = Make()->Watch("/api/v1/nodes", "", [](const WatchEvent&) { return true; }, [] { return false; });
  EXPECT_EQ(s.code(), StatusCode::kGone);
}

TEST_F(ClientTest, WatchGarbageLineIsAnErrorNotACrash) {
  transport_->on_stream = [&](const net::HttpRequest&) {
    return StreamOf({R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})", "{garbage", "never read"});
  };
  int n = 0;
  Status s = Make()->Watch("/api/v1/nodes", "", [&](const WatchEvent&) { return ++n > 0; }, [] { return false; });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(n, 1);
  for (const char* bad : {R"({"type":"ADDED"})", R"([1,2])", R"({"type":5})", R"({"type":"ERROR","object":"x"})"}) {
    transport_->on_stream = [&](const net::HttpRequest&) { return StreamOf({bad}); };
    Status st = Make()->Watch("/x", "", [](const WatchEvent&) { return true; }, [] { return false; });
    EXPECT_FALSE(st.ok()) << bad;
  }
}

TEST_F(ClientTest, WatchStopIsHonouredPromptlyAndCancelsTheStream) {
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  transport_->on_stream = [&](const net::HttpRequest&) {
    auto s = StreamOf({}, /*hang=*/true);
    static_cast<FakeLineStream*>(s.stream.get())->cancel_flag = cancelled;
    return s;
  };
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop = true;
  });
  auto start = std::chrono::steady_clock::now();
  Status s = Make()->Watch("/x", "", [](const WatchEvent&) { return true; }, [&] { return stop.load(); });
  stopper.join();
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(*cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(ClientTest, WatchWithoutDataForTimeoutPlus30SecondsIsUnavailable) {
  // Each idle read lasts one second on the fake clock.
  int idle_reads = 0;
  transport_->on_stream = [&](const net::HttpRequest&) {
    auto s = StreamOf({R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})"}, /*hang=*/true);
    auto* stream = static_cast<FakeLineStream*>(s.stream.get());
    stream->on_idle = [&] {
      ++idle_reads;
      clock_.Advance(1s);
    };
    return s;
  };
  int events = 0;
  Status s = Make()->Watch("/x", "timeoutSeconds=10", [&](const WatchEvent&) { return ++events > 0; },
                           [] { return false; });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.message();
  EXPECT_NE(s.message().find("no data for 40 s"), std::string::npos) << s.message();
  EXPECT_EQ(events, 1);
  EXPECT_EQ(idle_reads, 41) << "silence of exactly 40 s is still tolerated";
}

TEST(QueryEscapeTest, EscapesReservedCharacters) {
  EXPECT_EQ(QueryEscape("app=web,tier in (a,b)"), "app%3Dweb%2Ctier%20in%20%28a%2Cb%29");
  EXPECT_EQ(QueryEscape("a-b_c.d~"), "a-b_c.d~");
}

}  // namespace
}  // namespace kpc::kube
