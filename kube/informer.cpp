// Informer: list (paginated) -> diff against the cache -> watch from the list's resourceVersion
// -> on a clean end re-watch from the last seen resourceVersion; on 410 relist; on errors back
// off (200 ms doubling to 30 s, jittered).

#include "kube/informer.h"

#include <condition_variable>
#include <mutex>
#include <random>

#include <spdlog/spdlog.h>

namespace kpc::kube {
namespace {

constexpr std::chrono::milliseconds kInitialBackoff{200};
constexpr std::chrono::milliseconds kMaxBackoff{30000};
// A watch that ends cleanly this fast without events is treated like a failure for backoff
// purposes, so a server that closes watches at once cannot make us spin.
constexpr std::chrono::seconds kShortWatch{1};

std::string ResourceVersionOf(const nlohmann::json& obj) {
  try {
    const auto& md = obj.at("metadata");
    if (md.contains("resourceVersion") && md["resourceVersion"].is_string())
      return md["resourceVersion"].get<std::string>();
  } catch (...) {
  }
  return "";
}

}  // namespace

struct Informer::Impl {
  Client& client;
  const Clock& clock;
  InformerOptions opts;
  InformerHandlers handlers;

  mutable std::mutex mu;  // cache
  struct Entry {
    nlohmann::json obj;  // transformed
    std::string rv;
  };
  std::map<std::string, Entry> cache;

  std::atomic<bool> synced{false};
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  std::thread thread;
  std::string rv;  // last seen resourceVersion (informer thread only)
  std::mt19937_64 rng{std::random_device{}()};

  Impl(Client& c, const Clock& k, InformerOptions o, InformerHandlers h)
      : client(c), clock(k), opts(std::move(o)), handlers(std::move(h)) {}

  nlohmann::json Transform(const nlohmann::json& obj) const {
    if (!opts.transform) return obj;
    try {
      return opts.transform(obj);
    } catch (const std::exception& e) {
      spdlog::error("informer {}: transform of {} threw: {}", opts.list_path, KeyOf(obj), e.what());
      return obj;
    }
  }

  std::string SelectorQuery() const {
    std::string q;
    if (!opts.label_selector.empty()) q += "&labelSelector=" + QueryEscape(opts.label_selector);
    if (!opts.field_selector.empty()) q += "&fieldSelector=" + QueryEscape(opts.field_selector);
    return q;
  }

  // Sleeps unless stopped; returns false when stopping.
  bool SleepFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(stop_mu);
    return !stop_cv.wait_for(lock, d, [&] { return stopping.load(); });
  }

  std::chrono::milliseconds Jitter(std::chrono::milliseconds d) {
    // [d/2, d]: spreads reconnects of many replicas/informers after an API server restart.
    std::uniform_int_distribution<long long> dist(d.count() / 2, d.count());
    return std::chrono::milliseconds(dist(rng));
  }

  // Lists every page. On success fills items and the list's resourceVersion.
  Status ListAll(std::vector<nlohmann::json>* items, std::string* list_rv) {
    items->clear();
    std::string cont;
    bool paginate = opts.page_size > 0;
    for (;;) {
      if (stopping) return Status(StatusCode::kUnavailable, "stopping");
      std::string q = paginate ? "limit=" + std::to_string(opts.page_size) : "";
      if (!cont.empty()) q += "&continue=" + QueryEscape(cont);
      q += SelectorQuery();
      if (!q.empty() && q[0] == '&') q.erase(0, 1);
      Result r = client.Get(opts.list_path, q);
      if (!r.ok()) {
        if (r.status.code() == StatusCode::kGone && !cont.empty()) {
          // The continue token expired mid-list: start over with one unpaginated list.
          spdlog::info("informer {}: continue token expired; listing without pagination", opts.list_path);
          items->clear();
          cont.clear();
          paginate = false;
          continue;
        }
        return r.status;
      }
      if (!r.body.is_object() || !r.body.contains("items") || !(r.body["items"].is_array() || r.body["items"].is_null()))
        return Internal("list " + opts.list_path + ": response has no items array");
      if (r.body["items"].is_array()) {
        for (auto& item : r.body["items"]) {
          if (item.is_object()) items->push_back(std::move(item));
        }
      }
      const auto& md = r.body.value("metadata", nlohmann::json::object());
      if (cont.empty() || list_rv->empty()) *list_rv = md.is_object() ? md.value("resourceVersion", "") : "";
      cont = md.is_object() ? md.value("continue", "") : "";
      if (cont.empty()) return Status::Ok();
    }
  }

  // Replaces the cache with a fresh list, delivering adds/updates/deletes.
  void Replace(std::vector<nlohmann::json>& items) {
    std::map<std::string, Entry> fresh;
    for (auto& raw : items) {
      std::string key = KeyOf(raw);
      if (key.empty()) continue;
      fresh[key] = Entry{Transform(raw), ResourceVersionOf(raw)};
    }
    std::vector<std::pair<std::string, Entry>> added, deleted;
    std::vector<std::tuple<std::string, Entry, Entry>> updated;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [key, e] : fresh) {
        auto it = cache.find(key);
        if (it == cache.end()) {
          added.emplace_back(key, e);
        } else if (it->second.rv != e.rv || it->second.obj != e.obj) {
          updated.emplace_back(key, it->second, e);
        }
      }
      for (auto& [key, e] : cache) {
        if (!fresh.count(key)) deleted.emplace_back(key, e);
      }
      cache = std::move(fresh);
    }
    for (auto& [key, e] : deleted) {
      spdlog::debug("informer {}: {} deleted (missing from relist)", opts.list_path, key);
      Call([&] { if (handlers.on_delete) handlers.on_delete(e.obj); });
    }
    for (auto& [key, e] : added) Call([&] { if (handlers.on_add) handlers.on_add(e.obj); });
    for (auto& [key, old_e, new_e] : updated) Call([&] { if (handlers.on_update) handlers.on_update(old_e.obj, new_e.obj); });
  }

  void Call(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::error("informer {}: handler threw: {}", opts.list_path, e.what());
    }
  }

  bool OnEvent(const WatchEvent& ev, bool* got_event) {
    *got_event = true;
    std::string event_rv = ResourceVersionOf(ev.object);
    if (ev.type == "BOOKMARK") {
      if (!event_rv.empty()) rv = event_rv;
      return true;
    }
    std::string key = KeyOf(ev.object);
    if (key.empty()) {
      spdlog::warn("informer {}: {} event for an object without a name; ignored", opts.list_path, ev.type);
      return true;
    }
    if (!event_rv.empty()) rv = event_rv;
    if (ev.type == "DELETED") {
      std::optional<Entry> old;
      {
        std::lock_guard<std::mutex> lock(mu);
        auto it = cache.find(key);
        if (it != cache.end()) {
          old = std::move(it->second);
          cache.erase(it);
        }
      }
      nlohmann::json last = old ? old->obj : Transform(ev.object);
      Call([&] { if (handlers.on_delete) handlers.on_delete(last); });
      return true;
    }
    Entry e{Transform(ev.object), event_rv};
    std::optional<Entry> old;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = cache.find(key);
      if (it != cache.end()) old = it->second;
      cache[key] = e;
    }
    if (old) {
      Call([&] { if (handlers.on_update) handlers.on_update(old->obj, e.obj); });
    } else {
      Call([&] { if (handlers.on_add) handlers.on_add(e.obj); });
    }
    return true;
  }

  void Run() {
    auto backoff = kInitialBackoff;
    bool need_list = true;
    auto fail = [&](const Status& s, const char* what) {
      auto wait = Jitter(backoff);
      spdlog::warn("informer {}: {} failed: {}; retrying in {} ms", opts.list_path, what, s.message(), wait.count());
      backoff = std::min(backoff * 2, kMaxBackoff);
      return SleepFor(wait);
    };
    while (!stopping) {
      if (need_list) {
        std::vector<nlohmann::json> items;
        std::string list_rv;
        Status s = ListAll(&items, &list_rv);
        if (stopping) return;
        if (!s.ok()) {
          if (!fail(s, "list")) return;
          continue;
        }
        Replace(items);
        rv = list_rv;
        need_list = false;
        if (!synced.exchange(true)) {
          spdlog::info("informer {}: synced {} objects at resourceVersion {}", opts.list_path, items.size(), rv);
        }
      }
      std::string q = "resourceVersion=" + QueryEscape(rv) +
                      "&timeoutSeconds=" + std::to_string(std::max(1, opts.watch_timeout_seconds)) + SelectorQuery();
      bool got_event = false;
      const auto started = clock.Now();
      Status s = client.Watch(
          opts.list_path, q, [&](const WatchEvent& ev) { return OnEvent(ev, &got_event); },
          [&] { return stopping.load(); });
      if (stopping) return;
      if (got_event) backoff = kInitialBackoff;
      if (s.ok()) {
        if (!got_event && clock.Now() - started < kShortWatch) {
          if (!SleepFor(Jitter(backoff))) return;
          backoff = std::min(backoff * 2, kMaxBackoff);
        }
        continue;  // re-watch from the last seen resourceVersion
      }
      if (s.code() == StatusCode::kGone) {
        spdlog::info("informer {}: resourceVersion {} too old ({}); relisting", opts.list_path, rv, s.message());
        need_list = true;
        continue;
      }
      if (!fail(s, "watch")) return;
    }
  }
};

Informer::Informer(Client& client, const Clock& clock, InformerOptions options, InformerHandlers handlers)
    : impl_(std::make_unique<Impl>(client, clock, std::move(options), std::move(handlers))) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  if (impl_->thread.joinable()) return;
  impl_->stopping = false;
  impl_->thread = std::thread([this] { impl_->Run(); });
}

void Informer::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->stop_mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool Informer::HasSynced() const { return impl_->synced.load(); }

std::optional<nlohmann::json> Informer::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->cache.find(key);
  if (it == impl_->cache.end()) return std::nullopt;
  return it->second.obj;
}

std::vector<nlohmann::json> Informer::List() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<nlohmann::json> out;
  out.reserve(impl_->cache.size());
  for (const auto& [key, e] : impl_->cache) out.push_back(e.obj);
  return out;
}

size_t Informer::Size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->cache.size();
}

std::string Informer::KeyOf(const nlohmann::json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const auto& md = obj["metadata"];
  std::string name = md.contains("name") && md["name"].is_string() ? md["name"].get<std::string>() : "";
  if (name.empty()) return "";
  std::string ns = md.contains("namespace") && md["namespace"].is_string() ? md["namespace"].get<std::string>() : "";
  return ns.empty() ? name : ns + "/" + name;
}

}  // namespace kpc::kube
