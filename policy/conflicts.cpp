#include "policy/conflicts.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "policy/evaluate.h"

namespace kpc::policy {
namespace {

// One requirement on one label key (matchLabels k=v is In {v}).
struct Req {
  std::string op;
  std::set<std::string> values;
};

std::multimap<std::string, Req> Requirements(const LabelSelector& s) {
  std::multimap<std::string, Req> out;
  for (const auto& [k, v] : s.match_labels) out.emplace(k, Req{"In", {v}});
  for (const auto& e : s.match_expressions) {
    out.emplace(e.key, Req{e.op, std::set<std::string>(e.values.begin(), e.values.end())});
  }
  return out;
}

bool Excludes(const Req& a, const Req& b) {
  auto subset = [](const std::set<std::string>& x, const std::set<std::string>& y) {
    return std::includes(y.begin(), y.end(), x.begin(), x.end());
  };
  if (a.op == "In" && b.op == "In") {
    return std::none_of(a.values.begin(), a.values.end(),
                        [&](const std::string& v) { return b.values.count(v) > 0; });
  }
  if (a.op == "In" && b.op == "NotIn") return subset(a.values, b.values);
  if (a.op == "In" && b.op == "DoesNotExist") return true;
  if (a.op == "Exists" && b.op == "DoesNotExist") return true;
  return false;
}

}  // namespace

bool SelectorsMayOverlap(const LabelSelector& a, const LabelSelector& b) {
  auto ra = Requirements(a);
  auto rb = Requirements(b);
  for (const auto& [key, x] : ra) {
    auto [lo, hi] = rb.equal_range(key);
    for (auto it = lo; it != hi; ++it) {
      if (Excludes(x, it->second) || Excludes(it->second, x)) return false;
    }
  }
  return true;
}

std::vector<std::string> FindRemediationConflicts(const KubeletPolicy& candidate,
                                                  const std::vector<KubeletPolicy>& others) {
  std::vector<std::string> out;
  for (const auto& other : others) {
    if (other.name == candidate.name) continue;
    if (!SelectorsMayOverlap(candidate.node_selector, other.node_selector)) continue;
    for (size_t i = 0; i < candidate.rules.size(); ++i) {
      const auto& r = candidate.rules[i];
      if (!r.config || !r.remediation.value || !r.remediation.enabled) continue;
      for (const auto& o : other.rules) {
        if (!o.config || !o.remediation.value || !o.remediation.enabled) continue;
        if (!(o.config->path == r.config->path)) continue;
        Comparison eq =
            Compare(Operator::kEquals, r.config->type, *o.remediation.value, *r.remediation.value);
        bool same = eq.ok ? eq.matches : *o.remediation.value == *r.remediation.value;
        if (same) continue;
        out.push_back(
            "spec.rules[" + std::to_string(i) + "].remediation.value: rule \"" + r.id + "\" sets " +
            r.config->path.ToString() + " to " + DisplayValue(*r.remediation.value) +
            ", but rule \"" + o.id + "\" of KubeletPolicy \"" + other.name + "\" sets it to " +
            DisplayValue(*o.remediation.value) +
            " and the two node selectors may overlap: the policies would undo each other's "
            "remediation");
      }
    }
  }
  return out;
}

}  // namespace kpc::policy
