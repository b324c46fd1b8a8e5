#include "base/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <typeinfo>

namespace kpc {
namespace {

bool IsMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Label names may not contain ':' and names starting with "__" are reserved for Prometheus.
bool IsLabelName(std::string_view s) {
  if (s.empty() || s.starts_with("__")) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// HELP text escapes only backslash and newline; label values also escape the double quote.
void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += quote ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void AppendHeader(std::string& out, const FamilyBase& f) {
  out += "# HELP ";
  out += f.Name();
  out += ' ';
  AppendEscaped(out, f.Help(), /*quote=*/false);
  out += "\n# TYPE ";
  out += f.Name();
  out += ' ';
  out += TypeName(f.Type());
  out += '\n';
}

// `a="x",b="y"` for one child; the caller adds braces (and `le` for buckets).
std::string LabelPairs(const std::vector<std::string>& names, const LabelValues& values) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ',';
    s += names[i];
    s += "=\"";
    AppendEscaped(s, values[i], /*quote=*/true);
    s += '"';
  }
  return s;
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  std::string_view labels, double value) {
  out += name;
  out += suffix;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += FormatMetricValue(value);
  out += '\n';
}

void AppendChild(std::string& out, const FamilyBase& f, const std::string& labels,
                 const Counter& c) {
  AppendSample(out, f.Name(), "", labels, c.Value());
}

void AppendChild(std::string& out, const FamilyBase& f, const std::string& labels, const Gauge& g) {
  AppendSample(out, f.Name(), "", labels, g.Value());
}

void AppendChild(std::string& out, const FamilyBase& f, const std::string& labels,
                 const Histogram& h) {
  Histogram::Snapshot snap = h.Snap();
  const std::vector<double>& bounds = h.UpperBounds();
  std::string prefix = labels.empty() ? std::string() : labels + ",";
  for (size_t i = 0; i <= bounds.size(); ++i) {
    std::string le = prefix + "le=\"" +
                     (i < bounds.size() ? FormatMetricValue(bounds[i]) : std::string("+Inf")) +
                     "\"";
    AppendSample(out, f.Name(), "_bucket", le, static_cast<double>(snap.cumulative[i]));
  }
  AppendSample(out, f.Name(), "_sum", labels, snap.sum);
  AppendSample(out, f.Name(), "_count", labels, static_cast<double>(snap.count));
}

// Rejects unsorted, duplicate or non-finite bounds; drops a trailing +Inf (it is implicit).
std::vector<double> ValidBuckets(std::vector<double> buckets) {
  if (!buckets.empty() && buckets.back() == INFINITY) buckets.pop_back();
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]))
      throw std::invalid_argument("histogram bucket bounds must be finite");
    if (i > 0 && !(buckets[i - 1] < buckets[i]))
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
  }
  return buckets;
}

class CallbackGaugeFamily final : public FamilyBase {
 public:
  CallbackGaugeFamily(std::string name, std::string help, std::function<double()> fn)
      : FamilyBase(std::move(name), std::move(help), {}, MetricType::kGauge), fn_(std::move(fn)) {}

 private:
  void Render(std::string& out) const override {
    AppendHeader(out, *this);
    AppendSample(out, Name(), "", "", fn_());
  }

  std::function<double()> fn_;
};

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Every integer up to 2^53 is exact in a double, so it prints as one (no exponent, no ".0").
  if (std::trunc(value) == value && std::fabs(value) <= 9007199254740992.0)
    return std::to_string(static_cast<int64_t>(value));
  // Otherwise Go's strconv 'g' with shortest precision: scientific when the decimal exponent
  // is < -4 or >= 6 (so bucket bounds like 0.005 match the le labels of Go-instrumented
  // components), else fixed. to_chars gives the shortest round-trip digits either way.
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view s(buf, sci.ptr - buf);
  int exponent = std::atoi(std::string(s.substr(s.find('e') + 1)).c_str());
  if (exponent < -4 || exponent >= 6) return std::string(s);
  auto fixed = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

void Counter::Inc(double delta) {
  if (delta < 0) throw std::invalid_argument("counter cannot decrease");
  value_.fetch_add(delta, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1) {}

void Histogram::Observe(double value) {
  // `le` semantics: the first bucket whose bound is >= value. NaN compares false with every
  // bound and lands in +Inf, as in the Go client.
  size_t i = std::isnan(value)
                 ? bounds_.size()
                 : std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot snap;
  snap.cumulative.reserve(counts_.size());
  uint64_t total = 0;
  for (const auto& c : counts_) {
    total += c.load(std::memory_order_relaxed);
    snap.cumulative.push_back(total);
  }
  snap.count = total;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

template <typename Metric>
Family<Metric>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                       MetricType type, std::vector<double> buckets)
    : FamilyBase(std::move(name), std::move(help), std::move(label_names), type),
      buckets_(std::move(buckets)) {
  if (LabelNames().empty()) WithLabels({});
}

template <typename Metric>
Metric& Family<Metric>::WithLabels(const LabelValues& values) {
  if (values.size() != LabelNames().size())
    throw std::invalid_argument(Name() + ": expected " + std::to_string(LabelNames().size()) +
                                " label values, got " + std::to_string(values.size()));
  {
    std::shared_lock lock(mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& child = children_[values];  // another thread may have created it since the shared lock
  if (!child) {
    if constexpr (std::is_same_v<Metric, Histogram>)
      child = std::make_unique<Histogram>(buckets_);
    else
      child = std::make_unique<Metric>();
  }
  return *child;
}

template <typename Metric>
bool Family<Metric>::Remove(const LabelValues& values) {
  std::unique_lock lock(mu_);
  return children_.erase(values) > 0;
}

template <typename Metric>
size_t Family<Metric>::Size() const {
  std::shared_lock lock(mu_);
  return children_.size();
}

template <typename Metric>
void Family<Metric>::Render(std::string& out) const {
  std::shared_lock lock(mu_);
  if (children_.empty()) return;
  AppendHeader(out, *this);
  for (const auto& [values, child] : children_)
    AppendChild(out, *this, LabelPairs(LabelNames(), values), *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry() = default;
Registry::~Registry() = default;

FamilyBase& Registry::Add(std::unique_ptr<FamilyBase> family, const std::vector<double>* buckets) {
  const std::string& name = family->Name();
  if (!IsMetricName(name)) throw std::invalid_argument("invalid metric name: \"" + name + "\"");
  std::set<std::string> seen;
  for (const auto& l : family->LabelNames()) {
    if (!IsLabelName(l)) throw std::invalid_argument(name + ": invalid label name \"" + l + "\"");
    if (family->Type() == MetricType::kHistogram && l == "le")
      throw std::invalid_argument(name + ": \"le\" is reserved in histograms");
    if (!seen.insert(l).second)
      throw std::invalid_argument(name + ": duplicate label \"" + l + "\"");
  }
  std::vector<std::string> samples = {name};
  if (family->Type() == MetricType::kHistogram)
    samples = {name + "_bucket", name + "_sum", name + "_count"};

  const FamilyBase& added = *family;
  std::lock_guard lock(mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    FamilyBase& existing = *it->second;
    // A callback gauge is never "the same": the second callback would be silently ignored.
    bool same =
        typeid(existing) == typeid(added) && typeid(existing) != typeid(CallbackGaugeFamily) &&
        existing.Help() == family->Help() && existing.LabelNames() == family->LabelNames() &&
        (!buckets || static_cast<HistogramFamily&>(existing).buckets_ == *buckets);
    if (!same) throw std::invalid_argument(name + ": already registered differently");
    return existing;
  }
  // Counter "x_sum" next to histogram "x" (either order) would emit the same series twice.
  for (const auto& s : samples)
    if (sample_names_.count(s))
      throw std::invalid_argument(name + ": sample name " + s + " already in use");
  sample_names_.insert(samples.begin(), samples.end());
  FamilyBase& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  std::unique_ptr<FamilyBase> f(
      new CounterFamily(name, help, std::move(label_names), MetricType::kCounter, {}));
  return static_cast<CounterFamily&>(Add(std::move(f), nullptr));
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names) {
  std::unique_ptr<FamilyBase> f(
      new GaugeFamily(name, help, std::move(label_names), MetricType::kGauge, {}));
  return static_cast<GaugeFamily&>(Add(std::move(f), nullptr));
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> buckets) {
  buckets = ValidBuckets(std::move(buckets));
  std::unique_ptr<FamilyBase> f(
      new HistogramFamily(name, help, std::move(label_names), MetricType::kHistogram, buckets));
  return static_cast<HistogramFamily&>(Add(std::move(f), &buckets));
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<double()> fn) {
  if (!fn) throw std::invalid_argument(name + ": empty callback");
  Add(std::make_unique<CallbackGaugeFamily>(name, help, std::move(fn)), nullptr);
}

std::string Registry::Render() const {
  // Collect the families under the registry lock, render without it: callbacks may take their
  // own locks (the work queue's) and must not be able to deadlock against registration.
  std::vector<const FamilyBase*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, f] : families_) families.push_back(f.get());
  }
  std::string out;
  for (const FamilyBase* f : families) f->Render(out);
  return out;
}

}  // namespace kpc
