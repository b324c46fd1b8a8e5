// Leader election on a coordination.k8s.io/v1 Lease, following client-go's LeaseLock:
// - a lease is free when holderIdentity is empty, or when its record has not changed for
//   leaseDurationSeconds as observed on *our* clock (clocks of replicas are never compared);
// - every write carries the resourceVersion it read (409 -> try again next period);
// - a leader that cannot renew within renew_deadline stops leading at once (a watchdog thread
//   notices even while a request hangs);
// - Stop() releases the lease (holderIdentity "", leaseDurationSeconds 1) like ReleaseOnCancel.

#include "kube/leader_election.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

namespace kpc::kube {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

struct Record {
  std::string holder;
  int lease_seconds = 0;
  std::string acquire_time;
  std::string renew_time;
  int transitions = 0;
  bool operator==(const Record&) const = default;
};

Record RecordOf(const nlohmann::json& lease) {
  Record r;
  auto spec = lease.is_object() ? lease.value("spec", nlohmann::json::object()) : nlohmann::json::object();
  if (!spec.is_object()) return r;
  auto str = [&](const char* k) {
    return spec.contains(k) && spec[k].is_string() ? spec[k].get<std::string>() : std::string();
  };
  auto num = [&](const char* k) { return spec.contains(k) && spec[k].is_number_integer() ? spec[k].get<int>() : 0; };
  r.holder = str("holderIdentity");
  r.lease_seconds = num("leaseDurationSeconds");
  r.acquire_time = str("acquireTime");
  r.renew_time = str("renewTime");
  r.transitions = num("leaseTransitions");
  return r;
}

}  // namespace

struct LeaderElector::Impl {
  Client& client;
  const Clock& clock;
  LeaderElectionConfig cfg;
  std::function<void()> on_started;
  std::function<void()> on_stopped;
  std::string path;
  std::string lease_ref;  // "ns/name" for logs

  std::mutex mu;  // guards everything below and serialises leadership transitions
  std::condition_variable cv;
  bool stopping = false;
  bool leader = false;
  uint64_t term = 0;                 // incremented on every loss so stale renewals are ignored
  // When the last successful acquire or renew of the current term *started*: the renew deadline
  // counts from before the request, which the API server and the other replicas saw later.
  TimePoint last_renew{};
  std::optional<Record> observed;
  TimePoint observed_at{};
  std::string observed_rv;
  std::atomic<bool> is_leader{false};

  std::thread loop_thread;
  std::thread watchdog_thread;
  std::thread leading_thread;
  std::mt19937_64 rng{std::random_device{}()};

  Impl(Client& c, const Clock& k, LeaderElectionConfig config, std::function<void()> start,
       std::function<void()> stop)
      : client(c), clock(k), cfg(std::move(config)), on_started(std::move(start)), on_stopped(std::move(stop)) {
    path = "/apis/coordination.k8s.io/v1/namespaces/" + cfg.lease_namespace + "/leases/" + cfg.lease_name;
    lease_ref = cfg.lease_namespace + "/" + cfg.lease_name;
  }

  // metav1.MicroTime for acquireTime / renewTime.
  std::string MicroTimeNow() const { return FormatRfc3339Micro(clock.WallNow()); }

  int LeaseSeconds() const {
    return static_cast<int>(std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(cfg.lease_duration).count()));
  }

  // REQUIRES: mu held. Drops leadership and tells the owner at once.
  void LoseLocked(std::unique_lock<std::mutex>& lock, const std::string& why) {
    if (!leader) return;
    leader = false;
    is_leader = false;
    ++term;
    spdlog::warn("leader election {}: {} lost leadership: {}", lease_ref, cfg.identity, why);
    lock.unlock();
    if (on_stopped) {
      try {
        on_stopped();
      } catch (const std::exception& e) {
        spdlog::error("leader election {}: on_stopped_leading threw: {}", lease_ref, e.what());
      }
    }
    lock.lock();
  }

  // One attempt to acquire or renew. Returns true when we hold the lease afterwards.
  bool TryAcquireOrRenew() {
    auto now = clock.Now();
    Result got = client.Get(path);
    nlohmann::json lease;
    if (!got.ok()) {
      if (got.status.code() != StatusCode::kNotFound) {
        spdlog::warn("leader election {}: get failed: {}", lease_ref, got.status.message());
        return false;
      }
      std::string t = MicroTimeNow();
      lease = {{"apiVersion", "coordination.k8s.io/v1"},
               {"kind", "Lease"},
               {"metadata", {{"name", cfg.lease_name}, {"namespace", cfg.lease_namespace}}},
               {"spec",
                {{"holderIdentity", cfg.identity},
                 {"leaseDurationSeconds", LeaseSeconds()},
                 {"acquireTime", t},
                 {"renewTime", t},
                 {"leaseTransitions", 0}}}};
      Result created = client.Create("/apis/coordination.k8s.io/v1/namespaces/" + cfg.lease_namespace + "/leases", lease);
      if (!created.ok()) {
        spdlog::info("leader election {}: create failed: {}", lease_ref, created.status.message());
        return false;
      }
      std::lock_guard<std::mutex> lock(mu);
      observed = RecordOf(created.body);
      observed_at = clock.Now();
      return true;
    }
    lease = got.body;
    Record rec = RecordOf(lease);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!observed || !(*observed == rec)) {
        observed = rec;
        observed_at = now;
      }
      if (!rec.holder.empty() && rec.holder != cfg.identity) {
        int secs = rec.lease_seconds > 0 ? rec.lease_seconds : LeaseSeconds();
        if (observed_at + std::chrono::seconds(secs) > now) return false;  // held by someone else
      }
    }
    std::string t = MicroTimeNow();
    auto& spec = lease["spec"];
    if (!spec.is_object()) spec = nlohmann::json::object();
    if (rec.holder != cfg.identity) {
      spec["acquireTime"] = t;
      spec["leaseTransitions"] = rec.transitions + 1;
    }
    spec["holderIdentity"] = cfg.identity;
    spec["leaseDurationSeconds"] = LeaseSeconds();
    spec["renewTime"] = t;
    // metadata.resourceVersion from the GET rides along: a concurrent writer makes this a 409.
    Result updated = client.Update(path, lease);
    if (!updated.ok()) {
      if (updated.status.code() == StatusCode::kConflict)
        spdlog::debug("leader election {}: update conflict; retrying next period", lease_ref);
      else
        spdlog::warn("leader election {}: update failed: {}", lease_ref, updated.status.message());
      return false;
    }
    std::lock_guard<std::mutex> lock(mu);
    observed = RecordOf(updated.body);
    observed_at = clock.Now();
    return true;
  }

  bool Sleep(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    return !cv.wait_for(lock, d, [&] { return stopping; });
  }

  std::chrono::milliseconds Jittered(std::chrono::milliseconds d) {
    // client-go jitters the acquire period by up to 20%.
    std::uniform_int_distribution<long long> dist(0, d.count() / 5);
    return d + std::chrono::milliseconds(dist(rng));
  }

  void Loop() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      uint64_t my_term;
      bool was_leader;
      {
        std::lock_guard<std::mutex> lock(mu);
        my_term = term;
        was_leader = leader;
      }
      const TimePoint attempt_start = clock.Now();
      bool ok = TryAcquireOrRenew();
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) return;
      if (ok && term == my_term) {
        last_renew = attempt_start;
        if (!was_leader && !leader) {
          leader = true;
          is_leader = true;
          spdlog::info("leader election {}: {} became leader", lease_ref, cfg.identity);
          lock.unlock();
          if (leading_thread.joinable()) leading_thread.join();
          if (on_started) {
            leading_thread = std::thread([this] {
              try {
                on_started();
              } catch (const std::exception& e) {
                spdlog::error("leader election {}: on_started_leading threw: {}", lease_ref, e.what());
              }
            });
          }
          lock.lock();
        }
      } else if (leader && term == my_term && clock.Now() - last_renew > cfg.renew_deadline) {
        LoseLocked(lock, "could not renew within the renew deadline");
      }
      auto period = leader ? cfg.retry_period : Jittered(cfg.retry_period);
      if (cv.wait_for(lock, period, [&] { return stopping; })) return;
    }
  }

  // Declares the loss even while a renew request hangs.
  void Watchdog() {
    std::unique_lock<std::mutex> lock(mu);
    auto tick = std::max(std::chrono::milliseconds(10), std::min(cfg.retry_period / 4, std::chrono::milliseconds(100)));
    while (!stopping) {
      cv.wait_for(lock, tick, [&] { return stopping; });
      if (stopping) return;
      if (leader && clock.Now() - last_renew > cfg.renew_deadline) {
        LoseLocked(lock, "renew deadline passed");
      }
    }
  }

  void Release() {
    Result got = client.Get(path);
    if (!got.ok()) return;
    Record rec = RecordOf(got.body);
    if (rec.holder != cfg.identity) return;
    auto lease = got.body;
    std::string t = MicroTimeNow();
    lease["spec"]["holderIdentity"] = "";
    lease["spec"]["leaseDurationSeconds"] = 1;
    lease["spec"]["renewTime"] = t;
    lease["spec"]["acquireTime"] = t;
    Result r = client.Update(path, lease);
    if (r.ok()) {
      spdlog::info("leader election {}: {} released the lease", lease_ref, cfg.identity);
    } else {
      spdlog::warn("leader election {}: release failed: {}", lease_ref, r.status.message());
    }
  }
};

LeaderElector::LeaderElector(Client& client, const Clock& clock, LeaderElectionConfig config,
                             std::function<void()> on_started_leading, std::function<void()> on_stopped_leading)
    : impl_(std::make_unique<Impl>(client, clock, std::move(config), std::move(on_started_leading),
                                   std::move(on_stopped_leading))) {}

LeaderElector::~LeaderElector() { Stop(); }

void LeaderElector::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->loop_thread.joinable()) return;
  impl_->stopping = false;
  impl_->loop_thread = std::thread([this] { impl_->Loop(); });
  impl_->watchdog_thread = std::thread([this] { impl_->Watchdog(); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->loop_thread.joinable()) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->loop_thread.join();
  impl_->watchdog_thread.join();
  bool was_leader;
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    was_leader = impl_->leader;
    impl_->LoseLocked(lock, "stopping");
  }
  if (impl_->leading_thread.joinable()) impl_->leading_thread.join();
  if (was_leader) impl_->Release();
}

bool LeaderElector::IsLeader() const { return impl_->is_leader.load(); }

LeaseHold LeaderElector::Hold() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return LeaseHold{impl_->lease_ref, impl_->leader, impl_->last_renew, impl_->cfg.renew_deadline};
}

Status LeaderElector::MayMutate() const { return DecideMutation(Hold(), impl_->clock.Now()); }

}  // namespace kpc::kube
