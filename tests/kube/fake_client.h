#pragma once
// A hand-written in-memory kube::Client for tests of the informer, leader election and the
// event recorder: objects by exact path with resourceVersion semantics (409 on a stale
// update, AlreadyExists on create), a `hook` to script any answer, and scripted watches.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"

namespace kpc::kube::testing {

inline Result ErrorResult(int http, const std::string& reason, const std::string& message) {
  ApiError err;
  err.http_status = http;
  err.reason = reason;
  err.message = message;
  Result r;
  r.status = StatusFromApiError(err);
  r.api_error = err;
  return r;
}

inline Result Ok(nlohmann::json body) {
  Result r;
  r.body = std::move(body);
  return r;
}

class FakeKube : public Client {
 public:
  struct WatchScript {
    std::vector<WatchEvent> events;
    Status end;         // returned after the events (or after stop, when hang)
    bool hang = false;  // keep the watch open until stop
  };
  using Hook = std::function<std::optional<Result>(const std::string& verb, const std::string& path,
                                                   const std::string& query, const nlohmann::json& body)>;

  void SetHook(Hook h) {
    std::lock_guard<std::mutex> lock(mu_);
    hook_ = std::move(h);
  }
  void Put(const std::string& path, nlohmann::json obj) {
    std::lock_guard<std::mutex> lock(mu_);
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[path] = std::move(obj);
  }
  std::optional<nlohmann::json> Object(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<nlohmann::json> ObjectsUnder(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<nlohmann::json> out;
    for (auto& [p, o] : objects_) {
      if (p.rfind(prefix, 0) == 0) out.push_back(o);
    }
    return out;
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  void PushWatch(WatchScript w) {
    std::lock_guard<std::mutex> lock(mu_);
    watches_.push_back(std::move(w));
    cv_.notify_all();
  }
  std::vector<std::string> WatchQueries() {
    std::lock_guard<std::mutex> lock(mu_);
    return watch_queries_;
  }
  std::atomic<bool> fail_all{false};
  // Runs after each scripted watch delivered its events (e.g. advances a FakeClock: how long
  // the watch lasted). Set before the watches start.
  std::function<void()> after_watch_events;

  Result Get(const std::string& path, const std::string& query) override {
    if (auto r = Pre("GET", path, query, nullptr)) return *r;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return ErrorResult(404, "NotFound", path + " not found");
    return Ok(it->second);
  }
  Result Create(const std::string& path, const nlohmann::json& obj) override {
    if (auto r = Pre("POST", path, "", obj)) return *r;
    std::lock_guard<std::mutex> lock(mu_);
    std::string key = path + "/" + obj["metadata"]["name"].get<std::string>();
    if (objects_.count(key)) return ErrorResult(409, "AlreadyExists", key + " already exists");
    auto stored = obj;
    stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[key] = stored;
    return Ok(stored);
  }
  Result Update(const std::string& path, const nlohmann::json& obj) override {
    if (auto r = Pre("PUT", path, "", obj)) return *r;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return ErrorResult(404, "NotFound", path + " not found");
    std::string want = obj["metadata"].value("resourceVersion", "");
    if (!want.empty() && want != it->second["metadata"]["resourceVersion"])
      return ErrorResult(409, "Conflict", "the object has been modified");
    auto stored = obj;
    stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
    it->second = stored;
    return Ok(stored);
  }
  Result Patch(const std::string& path, const nlohmann::json& patch, const std::string& content_type,
               const std::string& query) override {
    if (auto r = Pre("PATCH", path, query, patch)) return *r;
    std::lock_guard<std::mutex> lock(mu_);
    last_patch_type_ = content_type;
    auto it = objects_.find(path);
    if (it == objects_.end()) return ErrorResult(404, "NotFound", path + " not found");
    it->second.merge_patch(patch);
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return Ok(it->second);
  }
  Result Delete(const std::string& path, const std::string& query) override {
    if (auto r = Pre("DELETE", path, query, nullptr)) return *r;
    std::lock_guard<std::mutex> lock(mu_);
    if (!objects_.erase(path)) return ErrorResult(404, "NotFound", path + " not found");
    return Ok(nlohmann::json::object());
  }
  StatusOr<net::HttpResponse> GetRaw(const std::string& path, std::chrono::milliseconds,
                                     size_t max_body_bytes) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_raw_max_body_bytes_ = max_body_bytes;
    }
    auto r = Get(path, "");
    if (!r.ok()) return r.status;
    net::HttpResponse resp;
    resp.status = 200;
    resp.body = r.body.dump();
    return resp;
  }
  Status Watch(const std::string& path, const std::string& query,
               const std::function<bool(const WatchEvent&)>& on_event, const std::function<bool()>& stop) override {
    WatchScript script;
    {
      std::unique_lock<std::mutex> lock(mu_);
      calls_.push_back("WATCH " + path + "?" + query);
      watch_queries_.push_back(query);
      while (watches_.empty()) {
        if (stop()) return Status::Ok();
        cv_.wait_for(lock, std::chrono::milliseconds(10));
      }
      script = std::move(watches_.front());
      watches_.pop_front();
    }
    for (const auto& ev : script.events) {
      if (stop()) return Status::Ok();
      if (!on_event(ev)) return Status::Ok();
    }
    if (after_watch_events) after_watch_events();
    while (script.hang && !stop()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return script.end;
  }
  std::map<std::pair<std::string, std::string>, uint64_t> RequestCounts() const override { return {}; }

  size_t last_raw_max_body_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_raw_max_body_bytes_;
  }
  std::string last_patch_type() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_patch_type_;
  }

 private:
  std::optional<Result> Pre(const std::string& verb, const std::string& path, const std::string& query,
                            const nlohmann::json& body) {
    Hook hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(verb + " " + path + (query.empty() ? "" : "?" + query));
      hook = hook_;
    }
    if (fail_all) return ErrorResult(503, "ServiceUnavailable", "injected failure");
    if (hook) return hook(verb, path, query, body);
    return std::nullopt;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  Hook hook_;
  std::map<std::string, nlohmann::json> objects_;
  int64_t rv_ = 100;
  std::vector<std::string> calls_;
  std::deque<WatchScript> watches_;
  std::vector<std::string> watch_queries_;
  std::string last_patch_type_;
  size_t last_raw_max_body_bytes_ = 0;
};

// Polls `cond` for up to `timeout`.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace kpc::kube::testing
