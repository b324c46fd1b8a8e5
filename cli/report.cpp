#include "cli/report.h"

#include <algorithm>
#include <map>
#include <set>

#include "policy/verdict.h"

namespace kpc::cli {

using policy::RuleResult;

namespace {

// Whether each node is compliant with every policy checked: policy::VerdictOf over all of the
// node's rule results (a Fail or an Error makes it not compliant).
std::map<std::string, bool> CompliantNodes(const std::vector<CheckRow>& rows) {
  std::map<std::string, std::vector<policy::RuleEvaluation>> by_node;
  for (const auto& r : rows) by_node[r.node].push_back(r.eval);
  std::map<std::string, bool> out;
  for (const auto& [node, evals] : by_node) out[node] = policy::VerdictOf(evals).verdict == policy::Verdict::kCompliant;
  return out;
}

}  // namespace

bool CheckReport::AnyFailure() const {
  auto nodes = CompliantNodes(rows);
  return std::any_of(nodes.begin(), nodes.end(), [](const auto& kv) { return !kv.second; });
}

nlohmann::json CheckReport::ToJson() const {
  nlohmann::json results = nlohmann::json::array();
  std::map<std::string, int> counts = {{"Pass", 0}, {"Fail", 0}, {"Exempt", 0}, {"NotApplicable", 0}, {"Error", 0}};
  for (const auto& r : rows) {
    std::string result(policy::RuleResultName(r.eval.result));
    counts[result]++;
    results.push_back({{"node", r.node},
                       {"policy", r.policy},
                       {"rule", r.rule},
                       {"severity", policy::SeverityName(r.severity)},
                       {"result", result},
                       {"observed", r.eval.observed},
                       {"source", r.eval.source ? nlohmann::json(policy::ValueSourceName(*r.eval.source)) : nlohmann::json()},
                       {"message", r.eval.message}});
  }
  const auto node_ok = CompliantNodes(rows);
  int compliant = static_cast<int>(std::count_if(node_ok.begin(), node_ok.end(), [](const auto& kv) { return kv.second; }));
  nlohmann::json summary = {{"nodes", nodes},
                            {"compliantNodes", compliant},
                            {"nonCompliantNodes", static_cast<int>(node_ok.size()) - compliant},
                            {"results", counts}};
  nlohmann::json out = {{"results", results}, {"summary", summary}};
  if (!notes.empty()) out["notes"] = notes;
  return out;
}

namespace {

const char* Colour(RuleResult r) {
  switch (r) {
    case RuleResult::kPass: return "\x1b[32m";
    case RuleResult::kFail: return "\x1b[31;1m";
    case RuleResult::kError: return "\x1b[35;1m";
    case RuleResult::kExempt: return "\x1b[36m";
    case RuleResult::kNotApplicable: return "\x1b[2m";
  }
  return "";
}

}  // namespace

void PrintTable(const CheckReport& report, std::ostream& out, bool color) {
  const std::vector<std::string> header = {"NODE", "POLICY", "RULE", "SEVERITY", "RESULT", "OBSERVED", "SOURCE"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : report.rows) {
    std::string observed = r.eval.observed.is_object() ? r.eval.observed.value("mode", "")
                           : r.eval.result == RuleResult::kNotApplicable ? "-"
                                                                         : policy::DisplayValue(r.eval.observed);
    cells.push_back({r.node, r.policy, r.rule, std::string(policy::SeverityName(r.severity)),
                     std::string(policy::RuleResultName(r.eval.result)), policy::TruncateMessage(observed, 40),
                     r.eval.source ? std::string(policy::ValueSourceName(*r.eval.source)) : "-"});
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : cells) width[c] = std::max(width[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row, const char* result_colour) {
    for (size_t c = 0; c < row.size(); ++c) {
      bool colour_cell = color && c == 4 && result_colour != nullptr;
      if (colour_cell) out << result_colour;
      out << row[c];
      if (colour_cell) out << "\x1b[0m";
      if (c + 1 < row.size()) out << std::string(width[c] - row[c].size() + 2, ' ');
    }
    out << "\n";
  };
  print_row(header, nullptr);
  for (size_t i = 0; i < cells.size(); ++i) print_row(cells[i], Colour(report.rows[i].eval.result));

  // Why each failure failed, once per (node, rule).
  bool any = false;
  for (const auto& r : report.rows) {
    if (r.eval.result != RuleResult::kFail && r.eval.result != RuleResult::kError) continue;
    if (!any) out << "\nFindings:\n";
    any = true;
    out << "  " << r.node << " " << r.rule << ": " << r.eval.message << "\n";
  }
  for (const auto& n : report.notes) out << "\nnote: " << n << "\n";

  const auto nodes = CompliantNodes(report.rows);
  const auto compliant = std::count_if(nodes.begin(), nodes.end(), [](const auto& kv) { return kv.second; });
  out << "\n" << compliant << "/" << nodes.size() << " nodes compliant";
  int fails = static_cast<int>(std::count_if(report.rows.begin(), report.rows.end(), [](const CheckRow& r) {
    return r.eval.result == RuleResult::kFail;
  }));
  out << ", " << fails << " failed rule checks\n";
}

}  // namespace kpc::cli
