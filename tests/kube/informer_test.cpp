// Informer against the in-memory fake: paginated list, watch events, bookmarks, 410 relist
// with delete detection, transform, error backoff, prompt Stop.

#include "kube/informer.h"

#include <gtest/gtest.h>

#include "fake_client.h"

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;
using testing::ErrorResult;
using testing::FakeKube;
using testing::Ok;
using testing::WaitFor;

nlohmann::json Node(const std::string& name, const std::string& rv, nlohmann::json labels = nlohmann::json::object()) {
  return {{"metadata", {{"name", name}, {"resourceVersion", rv}, {"labels", labels}}},
          {"status", {{"big", std::string(100, 'x')}}}};
}

struct Recorded {
  std::mutex mu;
  std::vector<std::string> log;
  void Add(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(s);
  }
  std::vector<std::string> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return log;
  }
  bool Has(const std::string& s) {
    auto l = Get();
    return std::find(l.begin(), l.end(), s) != l.end();
  }
};

InformerHandlers Recording(Recorded& rec) {
  InformerHandlers h;
  h.on_add = [&](const nlohmann::json& o) { rec.Add("add " + Informer::KeyOf(o)); };
  h.on_update = [&](const nlohmann::json&, const nlohmann::json& n) { rec.Add("update " + Informer::KeyOf(n)); };
  h.on_delete = [&](const nlohmann::json& o) { rec.Add("delete " + Informer::KeyOf(o)); };
  return h;
}

// Serves `pages` for the list path: page i answers continue token "tok<i>".
void ServeList(FakeKube& kube, std::shared_ptr<std::vector<std::vector<nlohmann::json>>> pages, std::string rv) {
  kube.SetHook([pages, rv](const std::string& verb, const std::string& path, const std::string& query,
                           const nlohmann::json&) -> std::optional<Result> {
    if (verb != "GET" || path != "/api/v1/nodes") return std::nullopt;
    size_t page = 0;
    auto pos = query.find("continue=tok");
    if (pos != std::string::npos) page = std::stoul(query.substr(pos + 12));
    nlohmann::json list = {{"kind", "NodeList"}, {"metadata", {{"resourceVersion", rv}}}, {"items", (*pages)[page]}};
    if (page + 1 < pages->size()) list["metadata"]["continue"] = "tok" + std::to_string(page + 1);
    return Ok(list);
  });
}

TEST(InformerTest, PaginatedListThenWatchFromListVersion) {
  FakeKube kube;
  FakeClock clock;
  auto pages = std::make_shared<std::vector<std::vector<nlohmann::json>>>(
      std::vector<std::vector<nlohmann::json>>{{Node("a", "1"), Node("b", "2")}, {Node("c", "3")}});
  ServeList(kube, pages, "50");
  Recorded rec;
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  opts.page_size = 2;
  opts.label_selector = "role=worker";
  opts.watch_timeout_seconds = 42;
  Informer inf(kube, clock, opts, Recording(rec));
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  EXPECT_EQ(inf.Size(), 3u);
  EXPECT_TRUE(rec.Has("add a") && rec.Has("add b") && rec.Has("add c"));
  ASSERT_TRUE(WaitFor([&] { return !kube.WatchQueries().empty(); }));
  auto q = kube.WatchQueries()[0];
  EXPECT_NE(q.find("resourceVersion=50"), std::string::npos) << q;
  EXPECT_NE(q.find("timeoutSeconds=42"), std::string::npos) << q;
  EXPECT_NE(q.find("labelSelector=role%3Dworker"), std::string::npos) << q;
  auto calls = kube.Calls();
  EXPECT_EQ(calls[0], "GET /api/v1/nodes?limit=2&labelSelector=role%3Dworker");
  EXPECT_EQ(calls[1], "GET /api/v1/nodes?limit=2&continue=tok1&labelSelector=role%3Dworker");
  inf.Stop();
}

TEST(InformerTest, WatchEventsUpdateCacheAndBookmarksMoveTheVersion) {
  FakeKube kube;
  FakeClock clock;
  auto pages = std::make_shared<std::vector<std::vector<nlohmann::json>>>(
      std::vector<std::vector<nlohmann::json>>{{Node("a", "1")}});
  ServeList(kube, pages, "10");
  kube.PushWatch({{{"ADDED", Node("b", "11")},
                   {"MODIFIED", Node("a", "12", {{"x", "y"}})},
                   {"BOOKMARK", {{"metadata", {{"resourceVersion", "20"}}}}}},
                  Status::Ok()});
  Recorded rec;
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  Informer inf(kube, clock, opts, Recording(rec));
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return kube.WatchQueries().size() >= 2; }));
  EXPECT_NE(kube.WatchQueries()[1].find("resourceVersion=20"), std::string::npos);  // resumed, no relist
  EXPECT_EQ(inf.Size(), 2u);
  EXPECT_EQ((*inf.Get("a"))["metadata"]["labels"]["x"], "y");
  EXPECT_TRUE(rec.Has("add b"));
  EXPECT_TRUE(rec.Has("update a"));
  kube.PushWatch({{{"DELETED", Node("b", "21")}}, Status::Ok(), /*hang=*/true});
  ASSERT_TRUE(WaitFor([&] { return rec.Has("delete b"); }));
  EXPECT_FALSE(inf.Get("b").has_value());
  int lists = 0;
  for (auto& c : kube.Calls()) lists += c.rfind("GET /api/v1/nodes", 0) == 0;
  EXPECT_EQ(lists, 1);
  inf.Stop();
}

TEST(InformerTest, GoneRelistsAndDetectsDeletes) {
  FakeKube kube;
  FakeClock clock;
  auto pages = std::make_shared<std::vector<std::vector<nlohmann::json>>>(
      std::vector<std::vector<nlohmann::json>>{{Node("a", "1"), Node("b", "2"), Node("c", "3")}});
  ServeList(kube, pages, "10");
  Recorded rec;
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  Informer inf(kube, clock, opts, Recording(rec));
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  // While the watch was down: b deleted, c changed, d added; then the watch says 410.
  *pages = {{Node("a", "1"), Node("c", "30"), Node("d", "31")}};
  kube.PushWatch({{}, Status(StatusCode::kGone, "too old resource version")});
  ASSERT_TRUE(WaitFor([&] { return rec.Has("delete b") && rec.Has("update c") && rec.Has("add d"); }));
  EXPECT_FALSE(rec.Has("update a"));  // unchanged objects are not re-delivered
  EXPECT_EQ(inf.Size(), 3u);
  EXPECT_FALSE(inf.Get("b"));
  inf.Stop();
}

TEST(InformerTest, ExpiredContinueTokenFallsBackToAFullList) {
  FakeKube kube;
  FakeClock clock;
  std::atomic<int> full_lists{0};
  kube.SetHook([&](const std::string& verb, const std::string& path, const std::string& query,
                   const nlohmann::json&) -> std::optional<Result> {
    if (verb != "GET" || path != "/api/v1/nodes") return std::nullopt;
    if (query.find("continue=") != std::string::npos) return ErrorResult(410, "Expired", "continue token expired");
    if (query.find("limit=") != std::string::npos)
      return Ok({{"metadata", {{"resourceVersion", "5"}, {"continue", "t"}}}, {"items", {Node("a", "1")}}});
    ++full_lists;
    return Ok({{"metadata", {{"resourceVersion", "6"}}}, {"items", {Node("a", "1"), Node("b", "2")}}});
  });
  Recorded rec;
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  opts.page_size = 1;
  Informer inf(kube, clock, opts, Recording(rec));
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  EXPECT_EQ(full_lists.load(), 1);
  EXPECT_EQ(inf.Size(), 2u);
  inf.Stop();
}

TEST(InformerTest, TransformIsAppliedBeforeCaching) {
  FakeKube kube;
  FakeClock clock;
  auto pages = std::make_shared<std::vector<std::vector<nlohmann::json>>>(
      std::vector<std::vector<nlohmann::json>>{{Node("a", "1")}});
  ServeList(kube, pages, "10");
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  opts.transform = [](const nlohmann::json& o) {
    return nlohmann::json{{"metadata", {{"name", o["metadata"]["name"]}}}};
  };
  nlohmann::json added;
  InformerHandlers h;
  h.on_add = [&](const nlohmann::json& o) { added = o; };
  Informer inf(kube, clock, opts, h);
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  EXPECT_EQ(*inf.Get("a"), (nlohmann::json{{"metadata", {{"name", "a"}}}}));
  EXPECT_FALSE(added.contains("status"));
  inf.Stop();
}

TEST(InformerTest, ListErrorsAreRetriedWithBackoff) {
  FakeKube kube;
  FakeClock clock;
  std::atomic<int> attempts{0};
  kube.SetHook([&](const std::string& verb, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    if (verb != "GET") return std::nullopt;
    if (++attempts < 3) return ErrorResult(503, "ServiceUnavailable", "etcd down");
    return Ok({{"metadata", {{"resourceVersion", "1"}}}, {"items", nlohmann::json::array()}});
  });
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  Informer inf(kube, clock, opts, {});
  auto start = std::chrono::steady_clock::now();
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_GE(took, 250ms);  // two backoffs: >= 100 ms + 200 ms (jittered halves of 200/400)
  inf.Stop();
}

TEST(InformerTest, StopIsPromptWhileWatching) {
  FakeKube kube;
  FakeClock clock;
  auto pages = std::make_shared<std::vector<std::vector<nlohmann::json>>>(
      std::vector<std::vector<nlohmann::json>>{{Node("a", "1")}});
  ServeList(kube, pages, "10");
  kube.PushWatch({{}, Status::Ok(), /*hang=*/true});
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  Informer inf(kube, clock, opts, {});
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return !kube.WatchQueries().empty(); }));
  auto start = std::chrono::steady_clock::now();
  inf.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
}

TEST(InformerTest, OnlyAWatchEndingWithinASecondWithoutEventsBacksOff) {
  FakeKube kube;
  FakeClock clock;
  auto pages = std::make_shared<std::vector<std::vector<nlohmann::json>>>(
      std::vector<std::vector<nlohmann::json>>{{Node("a", "1")}});
  ServeList(kube, pages, "10");
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> ended;  // real time at the end of each watch
  const std::vector<std::chrono::milliseconds> lasted = {1000ms, 999ms, 0ms};
  kube.after_watch_events = [&] {
    std::lock_guard<std::mutex> lock(mu);
    if (ended.size() < lasted.size()) clock.Advance(lasted[ended.size()]);
    ended.push_back(std::chrono::steady_clock::now());
  };
  kube.PushWatch({{}, Status::Ok(), false});
  kube.PushWatch({{}, Status::Ok(), false});
  kube.PushWatch({{}, Status::Ok(), true});
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  Informer inf(kube, clock, opts, {});
  inf.Start();
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return ended.size() >= 3;
  }));
  inf.Stop();
  EXPECT_LT(ended[1] - ended[0], 100ms) << "a watch that lasted 1 s is renewed at once";
  EXPECT_GE(ended[2] - ended[1], 100ms) << "one that lasted 999 ms backs off (200 ms jittered to >= 100 ms)";
}

TEST(InformerTest, GarbageObjectsAreIgnored) {
  FakeKube kube;
  FakeClock clock;
  kube.SetHook([&](const std::string& verb, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    if (verb != "GET") return std::nullopt;
    return Ok({{"metadata", {{"resourceVersion", "1"}}},
               {"items", {1, "x", nlohmann::json::object(), {{"metadata", {{"name", 5}}}}, Node("ok", "1")}}});
  });
  kube.PushWatch({{{"ADDED", {{"metadata", nlohmann::json::object()}}}}, Status::Ok(), true});
  InformerOptions opts;
  opts.list_path = "/api/v1/nodes";
  Informer inf(kube, clock, opts, {});
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  EXPECT_EQ(inf.Size(), 1u);
  inf.Stop();
}

TEST(InformerTest, KeyOfUsesNamespaceWhenPresent) {
  EXPECT_EQ(Informer::KeyOf({{"metadata", {{"name", "n"}}}}), "n");
  EXPECT_EQ(Informer::KeyOf({{"metadata", {{"name", "n"}, {"namespace", "ns"}}}}), "ns/n");
  EXPECT_EQ(Informer::KeyOf(nlohmann::json::array()), "");
}

}  // namespace
}  // namespace kpc::kube
