#include "base/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace kpc {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(MetricsFormatTest, Values) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1500000), "1500000");
  EXPECT_EQ(FormatMetricValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");
  EXPECT_EQ(FormatMetricValue(0.005), "0.005");
  EXPECT_EQ(FormatMetricValue(2.5), "2.5");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(0.0001), "0.0001");
  EXPECT_EQ(FormatMetricValue(0.00001), "1e-05");
  EXPECT_EQ(FormatMetricValue(1234567.5), "1.2345675e+06");
  EXPECT_EQ(FormatMetricValue(123456.5), "123456.5");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsTest, CounterRender) {
  Registry r;
  auto& reconciles = r.AddCounter("kpc_reconciles_total", "Reconciles by result.", {"result"});
  reconciles.WithLabels({"success"}).Inc();
  reconciles.WithLabels({"success"}).Inc(2);
  reconciles.WithLabels({"error"}).Inc(0.5);
  r.AddCounter("kpc_restarts_total", "Restarts.");  // unlabelled: exported at 0 before any Inc
  EXPECT_EQ(r.Render(),
            "# HELP kpc_reconciles_total Reconciles by result.\n"
            "# TYPE kpc_reconciles_total counter\n"
            "kpc_reconciles_total{result=\"error\"} 0.5\n"
            "kpc_reconciles_total{result=\"success\"} 3\n"
            "# HELP kpc_restarts_total Restarts.\n"
            "# TYPE kpc_restarts_total counter\n"
            "kpc_restarts_total 0\n");
  EXPECT_THROW(reconciles.WithLabels({"success"}).Inc(-1), std::invalid_argument);
}

TEST(MetricsTest, GaugeRender) {
  Registry r;
  auto& g = r.AddGauge("kpc_policy_nodes", "Nodes a policy selects.", {"policy", "result"});
  g.WithLabels({"cis", "pass"}).Set(7);
  g.WithLabels({"cis", "fail"}).Set(2);
  g.WithLabels({"cis", "fail"}).Dec();
  g.WithLabels({"cis", "fail"}).Inc(0.25);
  auto& up = r.AddGauge("kpc_leader", "1 while this replica leads.");
  up.WithLabels({}).Set(-1.5);
  EXPECT_EQ(r.Render(),
            "# HELP kpc_leader 1 while this replica leads.\n"
            "# TYPE kpc_leader gauge\n"
            "kpc_leader -1.5\n"
            "# HELP kpc_policy_nodes Nodes a policy selects.\n"
            "# TYPE kpc_policy_nodes gauge\n"
            "kpc_policy_nodes{policy=\"cis\",result=\"fail\"} 1.25\n"
            "kpc_policy_nodes{policy=\"cis\",result=\"pass\"} 7\n");
}

TEST(MetricsTest, LabelledFamilyWithoutChildrenIsOmitted) {
  Registry r;
  r.AddGauge("kpc_rule_status", "Per rule.", {"rule"});
  EXPECT_EQ(r.Render(), "");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h =
      r.AddHistogram("kpc_reconcile_duration_seconds", "Reconcile latency.", {"kind"}, {0.1, 1, 5});
  auto& p = h.WithLabels({"policy"});
  p.Observe(0.05);
  p.Observe(0.1);  // le is inclusive
  p.Observe(0.5);
  p.Observe(3);
  p.Observe(100);  // only +Inf
  EXPECT_EQ(r.Render(),
            "# HELP kpc_reconcile_duration_seconds Reconcile latency.\n"
            "# TYPE kpc_reconcile_duration_seconds histogram\n"
            "kpc_reconcile_duration_seconds_bucket{kind=\"policy\",le=\"0.1\"} 2\n"
            "kpc_reconcile_duration_seconds_bucket{kind=\"policy\",le=\"1\"} 3\n"
            "kpc_reconcile_duration_seconds_bucket{kind=\"policy\",le=\"5\"} 4\n"
            "kpc_reconcile_duration_seconds_bucket{kind=\"policy\",le=\"+Inf\"} 5\n"
            "kpc_reconcile_duration_seconds_sum{kind=\"policy\"} 103.65\n"
            "kpc_reconcile_duration_seconds_count{kind=\"policy\"} 5\n");
}

TEST(MetricsTest, HistogramUnlabelledDefaultBucketsAndNaN) {
  Registry r;
  auto& h = r.AddHistogram("kpc_scrape_seconds", "Scrape time.").WithLabels({});
  h.Observe(0.003);
  h.Observe(std::nan(""));  // counts in +Inf only, poisons the sum (as in the Go client)
  std::vector<std::string> lines = Lines(r.Render());
  ASSERT_EQ(lines.size(), 2 + DefaultBuckets().size() + 1 + 2);
  EXPECT_EQ(lines[2], "kpc_scrape_seconds_bucket{le=\"0.005\"} 1");
  EXPECT_EQ(lines[12], "kpc_scrape_seconds_bucket{le=\"10\"} 1");
  EXPECT_EQ(lines[13], "kpc_scrape_seconds_bucket{le=\"+Inf\"} 2");
  EXPECT_EQ(lines[14], "kpc_scrape_seconds_sum NaN");
  EXPECT_EQ(lines[15], "kpc_scrape_seconds_count 2");
}

TEST(MetricsTest, HistogramBucketValidation) {
  Registry r;
  EXPECT_THROW(r.AddHistogram("a", "h", {}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("b", "h", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("c", "h", {}, {std::nan("")}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("d", "h", {"le"}, {1}), std::invalid_argument);
  // A trailing +Inf is implicit anyway, so it is accepted and not rendered twice.
  r.AddHistogram("e", "h", {}, {1, std::numeric_limits<double>::infinity()})
      .WithLabels({})
      .Observe(2);
  EXPECT_EQ(r.Render(),
            "# HELP e h\n# TYPE e histogram\n"
            "e_bucket{le=\"1\"} 0\ne_bucket{le=\"+Inf\"} 1\ne_sum 2\ne_count 1\n");
}

TEST(MetricsTest, Escaping) {
  Registry r;
  auto& g = r.AddGauge("kpc_escape", "Help with \\ backslash,\nnewline and \"quotes\".", {"path"});
  g.WithLabels({"C:\\dir \"x\"\nnext"}).Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP kpc_escape Help with \\\\ backslash,\\nnewline and \"quotes\".\n"
            "# TYPE kpc_escape gauge\n"
            "kpc_escape{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
}

TEST(MetricsTest, RemoveDropsChild) {
  Registry r;
  auto& g = r.AddGauge("kpc_rule_failing", "Failing rules.", {"policy", "rule"});
  g.WithLabels({"cis", "a"}).Set(1);
  g.WithLabels({"cis", "b"}).Set(1);
  EXPECT_TRUE(g.Remove({"cis", "a"}));
  EXPECT_FALSE(g.Remove({"cis", "a"}));
  EXPECT_EQ(g.Size(), 1u);
  std::string out = r.Render();
  EXPECT_EQ(out.find("rule=\"a\""), std::string::npos);
  EXPECT_NE(out.find("kpc_rule_failing{policy=\"cis\",rule=\"b\"} 1\n"), std::string::npos);
  // Recreated children start again from zero.
  EXPECT_EQ(g.WithLabels({"cis", "a"}).Value(), 0);
  EXPECT_TRUE(g.Remove({"cis", "a"}));
  EXPECT_TRUE(g.Remove({"cis", "b"}));
  EXPECT_EQ(r.Render(), "");  // the family disappears with its last child
}

TEST(MetricsTest, StableOrdering) {
  Registry r;
  r.AddGauge("kpc_z", "z").WithLabels({}).Set(1);
  auto& m = r.AddCounter("kpc_m", "m", {"node"});
  for (const char* n : {"worker-2", "worker-10", "worker-1", "control-plane"})
    m.WithLabels({n}).Inc();
  r.AddGauge("kpc_a", "a").WithLabels({}).Set(1);
  std::string first = r.Render();
  std::vector<std::string> samples;
  for (const auto& l : Lines(first))
    if (l[0] != '#') samples.push_back(l);
  EXPECT_EQ(samples, (std::vector<std::string>{
                         "kpc_a 1",
                         "kpc_m{node=\"control-plane\"} 1",
                         "kpc_m{node=\"worker-1\"} 1",
                         "kpc_m{node=\"worker-10\"} 1",
                         "kpc_m{node=\"worker-2\"} 1",
                         "kpc_z 1",
                     }));
  EXPECT_EQ(r.Render(), first);
}

TEST(MetricsTest, Registration) {
  Registry r;
  auto& a = r.AddCounter("kpc_events_total", "Events.", {"reason"});
  EXPECT_EQ(&r.AddCounter("kpc_events_total", "Events.", {"reason"}),
            &a);  // shared, not duplicated
  EXPECT_THROW(r.AddCounter("kpc_events_total", "Other help.", {"reason"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("kpc_events_total", "Events.", {"kind"}), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("kpc_events_total", "Events.", {"reason"}), std::invalid_argument);
  auto& h = r.AddHistogram("kpc_lat", "L.", {}, {1, 2});
  EXPECT_EQ(&r.AddHistogram("kpc_lat", "L.", {}, {1, 2}), &h);
  EXPECT_THROW(r.AddHistogram("kpc_lat", "L.", {}, {1, 3}), std::invalid_argument);
  // Sample-name clashes with a histogram's series, in both orders.
  EXPECT_THROW(r.AddCounter("kpc_lat_count", "c"), std::invalid_argument);
  r.AddGauge("kpc_q_sum", "g");
  EXPECT_THROW(r.AddHistogram("kpc_q", "h"), std::invalid_argument);
  // Invalid names.
  EXPECT_THROW(r.AddCounter("1abc", "x"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("a-b", "x"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok", "x", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok", "x", {"a", "a"}), std::invalid_argument);
  // Wrong number of label values.
  EXPECT_THROW(a.WithLabels({}), std::invalid_argument);
  EXPECT_THROW(a.WithLabels({"x", "y"}), std::invalid_argument);
  // A callback gauge cannot be registered twice (the second callback would be ignored).
  r.AddCallbackGauge("kpc_cb", "cb", [] { return 1.0; });
  EXPECT_THROW(r.AddCallbackGauge("kpc_cb", "cb", [] { return 2.0; }), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("kpc_cb", "cb"), std::invalid_argument);
}

TEST(MetricsTest, CallbackGaugeEvaluatedAtRender) {
  Registry r;
  std::atomic<int> depth{3};
  r.AddCallbackGauge("kpc_workqueue_depth", "Items waiting in the work queue.",
                     [&] { return double(depth); });
  EXPECT_EQ(r.Render(),
            "# HELP kpc_workqueue_depth Items waiting in the work queue.\n"
            "# TYPE kpc_workqueue_depth gauge\n"
            "kpc_workqueue_depth 3\n");
  depth = 12;
  EXPECT_NE(r.Render().find("kpc_workqueue_depth 12\n"), std::string::npos);
  // The callback runs without registry locks, so it may itself touch the registry.
  r.AddCallbackGauge("kpc_families", "Registered families.",
                     [&] { return r.AddGauge("kpc_x", "x").WithLabels({}).Value(); });
  EXPECT_NO_THROW(r.Render());
}

TEST(MetricsTest, ConcurrentUpdatesAreExact) {
  Registry r;
  auto& c = r.AddCounter("kpc_c_total", "c", {"worker"});
  auto& g = r.AddGauge("kpc_g", "g");
  auto& h = r.AddHistogram("kpc_h", "h", {"k"}, {0.25, 1});
  constexpr int kThreads = 8;
  constexpr int kIters = 50000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {  // renders while children are created and updated
    while (!done) ASSERT_FALSE(r.Render().empty());
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& shared = c.WithLabels({"shared"});
      for (int i = 0; i < kIters; ++i) {
        shared.Inc();
        c.WithLabels({"shared"}).Inc(0.5);                  // looked up every time
        c.WithLabels({"t" + std::to_string(t % 4)}).Inc();  // created by racing threads
        g.WithLabels({}).Inc();
        h.WithLabels({"x"}).Observe(0.5);
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  scraper.join();
  EXPECT_EQ(c.WithLabels({"shared"}).Value(), 1.5 * kThreads * kIters);
  for (int t = 0; t < 4; ++t)
    EXPECT_EQ(c.WithLabels({"t" + std::to_string(t)}).Value(), 2.0 * kIters);
  EXPECT_EQ(c.Size(), 5u);
  EXPECT_EQ(g.WithLabels({}).Value(), double(kThreads) * kIters);
  Histogram::Snapshot s = h.WithLabels({"x"}).Snap();
  EXPECT_EQ(s.count, uint64_t(kThreads) * kIters);
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, s.count, s.count}));
  EXPECT_EQ(s.sum, 0.5 * kThreads * kIters);
  EXPECT_NE(r.Render().find("kpc_c_total{worker=\"shared\"} 600000\n"), std::string::npos);
}

// Checks text against the 0.0.4 exposition grammar, line by line, plus the structure around
// it: HELP then TYPE per family, each family once, samples named after the current family
// (with _bucket/_sum/_count for histograms), histogram buckets cumulative and ending in +Inf
// with _count equal to it. Returns the problems found.
std::vector<std::string> ExpositionProblems(const std::string& text) {
  const std::string name = R"([a-zA-Z_:][a-zA-Z0-9_:]*)";
  const std::string label = R"([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")";
  const std::string value = R"((?:[+-]Inf|NaN|-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]{2,3})?))";
  const std::regex help_re("# HELP (" + name + R"() ((?:[^\\\n]|\\[\\n])*))");
  const std::regex type_re("# TYPE (" + name + ") (counter|gauge|histogram|summary|untyped)");
  const std::regex sample_re("(" + name + R"()(?:\{()" + label + "(?:," + label + R"()*)\})? )" +
                             value);
  const std::regex le_re(R"re((?:^|,)le="([^"]*)"$)re");

  std::vector<std::string> problems;
  if (!text.empty() && text.back() != '\n') problems.push_back("no trailing newline");
  std::set<std::string> families;
  std::string family, type, pending_help;
  std::map<std::string, std::vector<std::pair<std::string, double>>>
      buckets;  // series -> (le, count)
  std::map<std::string, double> counts;
  int n = 0;
  for (const std::string& line : Lines(text)) {
    ++n;
    std::smatch m;
    auto bad = [&](const std::string& why) {
      problems.push_back("line " + std::to_string(n) + " (" + why + "): " + line);
    };
    if (std::regex_match(line, m, help_re)) {
      if (!families.insert(m[1]).second) bad("family repeated");
      pending_help = m[1];
      family.clear();
    } else if (std::regex_match(line, m, type_re)) {
      if (m[1] != pending_help) bad("TYPE without its HELP");
      family = m[1];
      type = m[2];
      pending_help.clear();
    } else if (std::regex_match(line, m, sample_re)) {
      std::string sample = m[1], labels = m[2];
      double v = std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
      if (line.ends_with(" +Inf")) v = INFINITY;
      if (family.empty()) {
        bad("sample outside a family");
        continue;
      }
      std::smatch le;
      bool has_le = std::regex_search(labels, le, le_re);
      if (type == "histogram") {
        std::string base = labels;
        if (has_le) base.erase(le.position(0));
        if (sample == family + "_bucket" && has_le)
          buckets[base].push_back({le[1], v});
        else if (sample == family + "_count" && !has_le)
          counts[base] = v;
        else if (!(sample == family + "_sum" && !has_le))
          bad("not a histogram series");
      } else if (sample != family) {
        bad("sample name differs from family");
      }
    } else {
      bad("no grammar rule matches");
    }
  }
  for (const auto& [series, bs] : buckets) {
    if (bs.empty() || bs.back().first != "+Inf")
      problems.push_back(series + ": last bucket is not +Inf");
    for (size_t i = 1; i < bs.size(); ++i) {
      double prev = bs[i - 1].first == "+Inf" ? INFINITY : std::stod(bs[i - 1].first);
      double cur = bs[i].first == "+Inf" ? INFINITY : std::stod(bs[i].first);
      if (!(prev < cur)) problems.push_back(series + ": le not increasing");
      if (bs[i].second < bs[i - 1].second) problems.push_back(series + ": counts not cumulative");
    }
    if (!counts.count(series) || counts[series] != bs.back().second)
      problems.push_back(series + ": _count differs from +Inf bucket");
  }
  return problems;
}

TEST(MetricsTest, GrammarCheckerRejectsBadText) {
  EXPECT_FALSE(ExpositionProblems("# HELP a x\n# TYPE a gauge\na{b=\"unterminated} 1\n").empty());
  EXPECT_FALSE(ExpositionProblems("# HELP a x\n# TYPE a gauge\na 1 2 3\n").empty());
  EXPECT_FALSE(ExpositionProblems("# HELP a x\n# TYPE a gauge\nb 1\n").empty());
  EXPECT_FALSE(
      ExpositionProblems("# HELP a x\n# TYPE a histogram\n"
                         "a_bucket{le=\"1\"} 2\na_bucket{le=\"+Inf\"} 1\na_sum 1\na_count 1\n")
          .empty());
  EXPECT_TRUE(
      ExpositionProblems("# HELP a x\n# TYPE a histogram\n"
                         "a_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 1\na_sum 1\na_count 1\n")
          .empty());
}

TEST(MetricsTest, RenderedTextMatchesExpositionGrammar) {
  Registry r;
  auto& c = r.AddCounter("kpc_reconciles_total", "Reconciles \\ by \"result\"\nand kind.",
                         {"kind", "result"});
  c.WithLabels({"policy", "success"}).Inc(17);
  c.WithLabels({"exception", "error"}).Inc(1e-7);
  c.WithLabels({"we\"ird\\", "multi\nline"}).Inc(1e21);
  auto& g = r.AddGauge("kpc_node_compliant", "", {"node"});
  g.WithLabels({"worker-1"}).Set(std::nan(""));
  g.WithLabels({"worker-2"}).Set(-std::numeric_limits<double>::infinity());
  g.WithLabels({"ünïcode"}).Set(-0.000125);
  auto& h = r.AddHistogram("kpc_apply_seconds", "Apply latency.", {"verb"});
  for (double v : {0.001, 0.02, 0.3, 4.0, 60.0}) {
    h.WithLabels({"patch"}).Observe(v);
    h.WithLabels({"get"}).Observe(v / 10);
  }
  r.AddHistogram("kpc_empty_seconds", "Never observed.", {}, {0.5});
  r.AddCallbackGauge("kpc:workqueue_depth", "Depth.", [] { return 4.0; });
  std::string text = r.Render();
  EXPECT_EQ(ExpositionProblems(text), std::vector<std::string>{}) << text;
  EXPECT_EQ(Lines(text).size(), 2 + 3 + 2 + 3 + 2 + 2 * (12 + 2) + 2 + 4 + 2 + 1u);
}

}  // namespace
}  // namespace kpc
