// kube::Client over net::HttpClient: auth, client-side rate limit, typed errors, watch streams.

#include "kube/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "kube/rate_limiter.h"
#include "kube/token_source.h"

namespace kpc::kube {
namespace {

// Watch reads poll the stop callback this often.
constexpr std::chrono::milliseconds kWatchPoll{100};
constexpr int kDefaultWatchTimeoutSeconds = 300;
// API server answers (a page of a list, an object) are read up to this: the API server is
// trusted, and large clusters' unpaginated lists are big.
constexpr size_t kMaxApiResponseBytes = 256u << 20;

bool HasParam(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    std::string kv = query.substr(pos, end - pos);
    if (kv == name || kv.rfind(name + "=", 0) == 0) return true;
    pos = end + 1;
  }
  return false;
}

std::string ParamValue(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    std::string kv = query.substr(pos, end - pos);
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

std::string Snippet(const std::string& body) {
  std::string s = body.substr(0, 300);
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

StatusCode CodeForHttp(int http, const std::string& reason) {
  switch (http) {
    case 400: return StatusCode::kInvalidArgument;
    case 401:
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kConflict;
    case 410: return StatusCode::kGone;
    case 422: return StatusCode::kInvalidArgument;
    case 408:
    case 429: return StatusCode::kUnavailable;
    case 504: return StatusCode::kDeadlineExceeded;
    default: break;
  }
  if (http >= 500) return StatusCode::kUnavailable;
  return StatusCode::kInvalidArgument;
}

bool IsWrite(const std::string& method) { return method != "GET"; }

class KubeClient final : public Client {
 public:
  KubeClient(std::shared_ptr<net::HttpClient> transport, const Clock& clock, ClientConfig config,
             const MutationGate* gate)
      : cfg_(std::move(config)),
        http_(std::move(transport)),
        clock_(clock),
        gate_(gate),
        limiter_(clock, cfg_.qps, cfg_.burst) {
    while (!cfg_.server.empty() && cfg_.server.back() == '/') cfg_.server.pop_back();
    tokens_ = NewClientConfigTokenSource(cfg_, clock_);
  }

  Result Get(const std::string& path, const std::string& query) override {
    return ToResult("GET", path, Do("GET", path, query, "", ""));
  }
  Result Create(const std::string& path, const nlohmann::json& obj) override {
    return ToResult("POST", path, Do("POST", path, "", Dump(obj), "application/json"));
  }
  Result Update(const std::string& path, const nlohmann::json& obj) override {
    return ToResult("PUT", path, Do("PUT", path, "", Dump(obj), "application/json"));
  }
  Result Patch(const std::string& path, const nlohmann::json& patch, const std::string& content_type,
               const std::string& query) override {
    // For application/apply-patch+yaml too: JSON is valid YAML.
    return ToResult("PATCH", path, Do("PATCH", path, query, Dump(patch), content_type));
  }
  Result Delete(const std::string& path, const std::string& query) override {
    return ToResult("DELETE", path, Do("DELETE", path, query, "", ""));
  }

  StatusOr<net::HttpResponse> GetRaw(const std::string& path, std::chrono::milliseconds timeout,
                                     size_t max_body_bytes) override {
    auto resp = Do("GET", path, "", "", "", timeout, "*/*", max_body_bytes, /*retry_429=*/false);
    if (!resp.ok()) return resp.status();
    if (resp->status == 429) return resp;  // the caller schedules the next attempt
    if (resp->status < 200 || resp->status > 299) {
      ApiError err = DecodeApiError(*resp);
      return Status(CodeForHttp(resp->status, err.reason),
                    "GET " + path + ": HTTP " + std::to_string(resp->status) + ": " +
                        (err.message.empty() ? Snippet(resp->body) : err.message));
    }
    return resp;
  }

  Status Watch(const std::string& path, const std::string& query,
               const std::function<bool(const WatchEvent&)>& on_event, const std::function<bool()>& stop) override {
    std::string q = query;
    auto add = [&q](const std::string& kv) { q += (q.empty() ? "" : "&") + kv; };
    if (!HasParam(q, "watch")) add("watch=1");
    if (!HasParam(q, "allowWatchBookmarks")) add("allowWatchBookmarks=true");
    if (!HasParam(q, "timeoutSeconds")) add("timeoutSeconds=" + std::to_string(kDefaultWatchTimeoutSeconds));
    int timeout_seconds = kDefaultWatchTimeoutSeconds;
    try {
      timeout_seconds = std::stoi(ParamValue(q, "timeoutSeconds"));
    } catch (...) {
    }
    // The server ends the watch after timeoutSeconds; silence well beyond that means a dead
    // connection (bookmarks normally arrive about once a minute).
    auto idle_limit = std::chrono::seconds(std::max(timeout_seconds, 1) + 30);

    auto started = OpenWatch(path, q);
    if (!started.ok()) return started.status();
    auto& stream = *started->stream;
    auto last_data = clock_.Now();
    for (;;) {
      if (stop && stop()) {
        stream.Cancel();
        return Status::Ok();
      }
      auto line = stream.ReadLine(kWatchPoll);
      if (!line.ok()) {
        if (line.status().code() == StatusCode::kDeadlineExceeded) {
          if (clock_.Now() - last_data > idle_limit) {
            stream.Cancel();
            return Unavailable("watch " + path + ": no data for " + std::to_string(idle_limit.count()) + " s");
          }
          continue;
        }
        return Status(line.status().code(), "watch " + path + ": " + line.status().message());
      }
      last_data = clock_.Now();
      if (!line->has_value()) return Status::Ok();  // the server closed the watch cleanly
      const std::string& text = **line;
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
      WatchEvent ev;
      try {
        auto j = nlohmann::json::parse(text);
        if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
          throw std::runtime_error("event without a type");
        ev.type = j["type"].get<std::string>();
        if (j.contains("object")) ev.object = std::move(j["object"]);
      } catch (const std::exception& e) {
        stream.Cancel();
        return Unavailable("watch " + path + ": undecodable event (" + std::string(e.what()) + "): " + Snippet(text));
      }
      if (ev.type == "ERROR") {
        stream.Cancel();
        int code = ev.object.is_object() && ev.object.contains("code") && ev.object["code"].is_number_integer()
                       ? ev.object["code"].get<int>()
                       : 500;
        std::string reason = ev.object.is_object() ? ev.object.value("reason", "") : "";
        std::string message = ev.object.is_object() ? ev.object.value("message", "") : "";
        return Status(CodeForHttp(code, reason), "watch " + path + ": " + (message.empty() ? reason : message));
      }
      if (ev.type != "ADDED" && ev.type != "MODIFIED" && ev.type != "DELETED" && ev.type != "BOOKMARK") {
        spdlog::warn("watch {}: ignoring event of unknown type {}", path, ev.type);
        continue;
      }
      if (!ev.object.is_object()) {
        stream.Cancel();
        return Unavailable("watch " + path + ": " + ev.type + " event without an object");
      }
      if (!on_event(ev)) {
        stream.Cancel();
        return Status::Ok();
      }
    }
  }

  std::map<std::pair<std::string, std::string>, uint64_t> RequestCounts() const override {
    std::lock_guard<std::mutex> lock(counts_mu_);
    return counts_;
  }

 private:
  // Starts the watch stream, waiting out a 429's Retry-After like Do; an error answer becomes
  // its Status.
  StatusOr<net::HttpClient::StreamResult> OpenWatch(const std::string& path, const std::string& q) {
    for (int throttled = 0;; ++throttled) {
      Acquire(limiter_, cfg_.sleep);
      net::HttpRequest req = BaseRequest("GET", path, q, cfg_.request_timeout, "application/json");
      auto started = http_->Stream(req);
      if (!started.ok()) {
        Count("WATCH", "<error>");
        return Status(started.status().code(), "watch " + path + ": " + started.status().message());
      }
      Count("WATCH", std::to_string(started->status));
      if (started->error_response) {
        if (started->status == 429 && throttled < kMaxThrottledRetries) {
          WaitOutThrottling("WATCH", path, *started->error_response);
          continue;
        }
        if (started->status == 401) InvalidateToken();
        ApiError err = DecodeApiError(*started->error_response);
        Status s = StatusFromApiError(err);
        return Status(s.code(), "watch " + path + ": " + s.message());
      }
      if (!started->stream) return Unavailable("watch " + path + ": no stream");
      return started;
    }
  }

  void WaitOutThrottling(const std::string& method, const std::string& path,
                         const net::HttpResponse& resp) {
    const auto wait = ThrottleDelay(RetryAfterOf(resp.headers), kApiThrottle);
    spdlog::debug("{} {}: throttled (429); retrying in {} s", method, path, wait.count());
    if (cfg_.sleep) {
      cfg_.sleep(wait);
    } else {
      std::this_thread::sleep_for(wait);
    }
  }

  // The gate's word on a write about to be sent; reads always pass.
  Status Gate(const std::string& method, const std::string& path) const {
    if (!gate_ || !IsWrite(method)) return Status::Ok();
    Status s = gate_->MayMutate();
    if (!s.ok()) spdlog::debug("{} {}: not sent: {}", method, path, s.message());
    return s;
  }

  static std::string Dump(const nlohmann::json& j) {
    // Replace invalid UTF-8 rather than throw: object text may come from anywhere.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  std::string Url(const std::string& path, const std::string& query) const {
    return cfg_.server + path + (query.empty() ? "" : "?" + query);
  }

  // The token file is re-read every minute (service-account tokens rotate) and after a 401.
  std::string Token() {
    auto t = tokens_->Token();  // a ClientConfig's source always has a token (maybe empty)
    return t.ok() ? *t : std::string();
  }
  void InvalidateToken() { tokens_->Invalidate(); }

  net::HttpRequest BaseRequest(const std::string& method, const std::string& path, const std::string& query,
                               std::chrono::milliseconds timeout, const std::string& accept) {
    net::HttpRequest req;
    req.method = method;
    req.url = Url(path, query);
    req.timeout = timeout;
    req.max_body_bytes = kMaxApiResponseBytes;
    req.headers["Accept"] = accept;
    req.headers["User-Agent"] = cfg_.user_agent;
    std::string token = Token();
    if (!token.empty()) req.headers["Authorization"] = "Bearer " + token;
    return req;
  }

  StatusOr<net::HttpResponse> Do(const std::string& method, const std::string& path,
                                 const std::string& query, const std::string& body,
                                 const std::string& content_type,
                                 std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                                 const std::string& accept = "application/json",
                                 size_t max_body_bytes = kMaxApiResponseBytes,
                                 bool retry_429 = true) {
    bool token_retried = false;
    for (int throttled = 0;;) {
      Acquire(limiter_, cfg_.sleep);
      // Asked after the rate limiter and before every send: a wait may have outlived the lease.
      if (Status s = Gate(method, path); !s.ok()) return s;
      net::HttpRequest req = BaseRequest(method, path, query, timeout.value_or(cfg_.request_timeout), accept);
      req.max_body_bytes = max_body_bytes;
      req.body = body;
      if (!content_type.empty()) req.headers["Content-Type"] = content_type;
      auto resp = http_->Send(req);
      if (!resp.ok()) {
        Count(method, "<error>");
        return resp;
      }
      Count(method, std::to_string(resp->status));
      // A rotated token: re-read the file and retry once.
      if (resp->status == 401 && !token_retried && !cfg_.bearer_token_file.empty()) {
        token_retried = true;
        std::string before = Token();
        InvalidateToken();
        if (Token() != before) continue;
      }
      // Throttled (API priority and fairness): the request was not carried out.
      if (resp->status == 429 && retry_429 && throttled < kMaxThrottledRetries) {
        ++throttled;
        WaitOutThrottling(method, path, *resp);
        continue;
      }
      return resp;
    }
  }

  Result ToResult(const std::string& method, const std::string& path, StatusOr<net::HttpResponse> resp) {
    Result r;
    if (!resp.ok()) {
      r.status = Status(resp.status().code(), method + " " + path + ": " + resp.status().message());
      return r;
    }
    if (resp->status >= 200 && resp->status <= 299) {
      if (resp->body.empty()) return r;
      try {
        r.body = nlohmann::json::parse(resp->body);
      } catch (const std::exception& e) {
        r.status = Internal(method + " " + path + ": response is not JSON: " + e.what());
      }
      return r;
    }
    if (resp->status == 401) InvalidateToken();
    ApiError err = DecodeApiError(*resp);
    Status s = StatusFromApiError(err);
    r.status = Status(s.code(), method + " " + path + ": " + s.message());
    try {
      r.body = nlohmann::json::parse(resp->body);
    } catch (...) {
      r.body = nullptr;
    }
    r.api_error = std::move(err);
    return r;
  }

  void Count(const std::string& verb, const std::string& code) {
    std::lock_guard<std::mutex> lock(counts_mu_);
    ++counts_[{verb, code}];
  }

  ClientConfig cfg_;
  std::shared_ptr<net::HttpClient> http_;
  const Clock& clock_;
  const MutationGate* const gate_;  // null: writes are not gated
  TokenBucket limiter_;
  std::unique_ptr<TokenSource> tokens_;
  mutable std::mutex counts_mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> counts_;
};

}  // namespace

ApiError DecodeApiError(const net::HttpResponse& resp) {
  ApiError err;
  err.http_status = resp.status;
  try {
    auto j = nlohmann::json::parse(resp.body);
    if (j.is_object()) {
      if (j.contains("reason") && j["reason"].is_string()) err.reason = j["reason"].get<std::string>();
      if (j.contains("message") && j["message"].is_string()) err.message = j["message"].get<std::string>();
    }
  } catch (...) {
    // not a metav1.Status: keep the raw text
  }
  if (err.message.empty()) err.message = "HTTP " + std::to_string(resp.status) + (resp.body.empty() ? "" : ": " + Snippet(resp.body));
  err.retry_after = RetryAfterOf(resp.headers);
  return err;
}

std::optional<std::chrono::seconds> RetryAfterOf(
    const std::map<std::string, std::string>& headers) {
  auto ra = headers.find("retry-after");
  if (ra == headers.end()) return std::nullopt;
  // Only the delta-seconds form; the API server never sends an HTTP date.
  const std::string& v = ra->second;
  if (v.empty() || v.size() >= 10 || v.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stol(v));
}

std::chrono::seconds ThrottleDelay(std::optional<std::chrono::seconds> retry_after,
                                   const ThrottleBounds& bounds) {
  if (!retry_after) return bounds.fallback;
  return std::clamp(*retry_after, bounds.min, bounds.max);
}

Status StatusFromApiError(const ApiError& err) {
  return Status(CodeForHttp(err.http_status, err.reason), err.message);
}

std::string QueryEscape(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::unique_ptr<Client> NewClient(const Clock& clock, const ClientConfig& config,
                                  const MutationGate* gate) {
  return std::make_unique<KubeClient>(
      std::shared_ptr<net::HttpClient>(net::NewHttpClient(clock, config.tls)), clock, config, gate);
}

std::unique_ptr<Client> NewClientWithTransport(std::shared_ptr<net::HttpClient> transport,
                                               const Clock& clock, const ClientConfig& config,
                                               const MutationGate* gate) {
  return std::make_unique<KubeClient>(std::move(transport), clock, config, gate);
}

}  // namespace kpc::kube
