#pragma once
// Prometheus metrics for the controller's /metrics endpoint: a registry of counter, gauge and
// histogram families, rendered in the text exposition format 0.0.4.
//
// Threading: everything here may be called from any thread. Inc/Set/Observe on a child are
// lock-free atomics. WithLabels takes the family's lock (shared when the child exists), so a hot
// path should look its child up once and keep the reference. Families live as long as the
// Registry; a child lives until Remove() — do not keep a child reference across a Remove of
// the same labels.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kpc {

// The Content-Type of Registry::Render() output, for the /metrics handler.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
 public:
  // Throws std::invalid_argument on a negative delta: rate() reads any decrease as a restart.
  void Inc(double delta = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double delta = 1) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Dec(double delta = 1) { value_.fetch_sub(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `upper_bounds`: strictly increasing and finite (the registry validates); +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per upper bound, then the +Inf bucket
    uint64_t count = 0;                // == cumulative.back()
    double sum = 0;
  };
  // Not atomic across fields: `sum` may include an observation still missing from the buckets
  // (or the reverse). `count` is derived from the buckets so _count always equals le="+Inf".
  Snapshot Snap() const;
  const std::vector<double>& UpperBounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// The Prometheus client default buckets (seconds), suited to request/reconcile latencies.
std::vector<double> DefaultBuckets();

enum class MetricType { kCounter, kGauge, kHistogram };

class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& Name() const { return name_; }
  const std::string& Help() const { return help_; }
  const std::vector<std::string>& LabelNames() const { return label_names_; }
  MetricType Type() const { return type_; }

 protected:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names,
             MetricType type)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        type_(type) {}

 private:
  friend class Registry;
  // Appends HELP, TYPE and the samples; appends nothing when there are no samples (as the Go
  // client does), so a labelled family shows up only once it has a child.
  virtual void Render(std::string& out) const = 0;

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  MetricType type_;
};

// A metric family: one child per distinct set of label values. Instantiated for Counter, Gauge
// and Histogram only (see metrics.cpp).
template <typename Metric>
class Family final : public FamilyBase {
 public:
  // The child for these label values, created (at zero) on first use. Throws
  // std::invalid_argument when the number of values differs from the number of label names.
  Metric& WithLabels(const LabelValues& values);

  // Drops the child (e.g. the gauge of a deleted policy) so it stops being exported. Returns
  // whether it existed.
  bool Remove(const LabelValues& values);

  size_t Size() const;

 private:
  friend class Registry;
  // A family without labels gets its single child up front so it exports 0 from the start.
  Family(std::string name, std::string help, std::vector<std::string> label_names, MetricType type,
         std::vector<double> buckets);
  void Render(std::string& out) const override;

  std::vector<double> buckets_;  // histograms only
  mutable std::shared_mutex mu_;
  // std::map keeps children sorted by label values, which gives stable output.
  std::map<LabelValues, std::unique_ptr<Metric>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registering a name again with the same type, help, label names (and buckets) returns the
  // existing family, so independent components can share one; anything else throws
  // std::invalid_argument, as do invalid metric/label names and sample-name clashes (a
  // histogram "x" owns "x_bucket", "x_sum" and "x_count").
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  // `buckets`: strictly increasing upper bounds; a trailing +Inf is accepted and dropped.
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names = {},
                                std::vector<double> buckets = DefaultBuckets());

  // An unlabelled gauge whose value is `fn()` at render time, for values another component
  // already keeps (e.g. work queue depth) so nobody has to mirror them into a Gauge. `fn` runs
  // on the scraping thread without registry locks held; it must be thread-safe and not throw.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<double()> fn);

  // The whole registry in text format 0.0.4: families sorted by name, children by label values.
  std::string Render() const;

 private:
  FamilyBase& Add(std::unique_ptr<FamilyBase> family, const std::vector<double>* buckets);

  mutable std::mutex mu_;
  // Families are never removed, so references handed out stay valid for the Registry's life.
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
  std::set<std::string> sample_names_;  // every sample name the families above emit
};

// Sample-value formatting as the Go client does it (shortest round-trip, exponent below 1e-4 and
// from 1e6), except that integers exactly representable in a double print without an exponent,
// so a counter reads 1500000 rather than 1.5e+06. +Inf, -Inf and NaN as the format spells them.
std::string FormatMetricValue(double value);

}  // namespace kpc
