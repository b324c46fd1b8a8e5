#pragma once
// Rendering of check results: the table a person reads and the JSON a pipeline reads.

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/evaluate.h"
#include "policy/model.h"

namespace kpc::cli {

struct CheckRow {
  std::string node;
  std::string policy;
  std::string rule;
  policy::Severity severity = policy::Severity::kMedium;
  policy::RuleEvaluation eval;
};

struct CheckReport {
  std::vector<CheckRow> rows;
  std::vector<std::string> notes;  // e.g. policies that select no node
  int nodes = 0;

  bool AnyFailure() const;  // a Fail or an Error
  nlohmann::json ToJson() const;
};

// `color`: wrap results in ANSI colours (a terminal).
void PrintTable(const CheckReport& report, std::ostream& out, bool color);

}  // namespace kpc::cli
