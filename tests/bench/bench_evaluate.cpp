// Benchmark (not a test): rule evaluations per second for a policy against a configz document.
//   bench_evaluate POLICY.yaml CONFIGZ.json [seconds]
// Prints one line: rules, evaluations, seconds, evaluations/s; and parse throughput.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "policy/effective_config.h"
#include "policy/evaluate.h"
#include "policy/model.h"

namespace {
std::string Read(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_evaluate POLICY.yaml CONFIGZ.json [seconds]\n";
    return 2;
  }
  double seconds = argc > 3 ? std::stod(argv[3]) : 3.0;
  auto policies = kpc::policy::ParsePolicies(Read(argv[1]), argv[1]);
  if (!policies.ok()) {
    std::cerr << policies.status().message() << "\n";
    return 2;
  }
  const std::string configz = Read(argv[2]);
  auto cfg = kpc::policy::EffectiveConfigFromConfigz(configz);
  if (!cfg.ok()) {
    std::cerr << cfg.status().message() << "\n";
    return 2;
  }
  const auto& policy = (*policies)[0].policy;
  kpc::policy::NodeFacts node;
  node.name = "bench";
  using Clock = std::chrono::steady_clock;

  // 1. evaluation only (the reconciler's inner loop)
  size_t evals = 0, fails = 0;
  auto start = Clock::now();
  std::chrono::duration<double> elapsed{};
  while (elapsed.count() < seconds) {
    for (int i = 0; i < 1000; ++i) {
      auto ev = kpc::policy::EvaluateNode(policy, node, *cfg, 0);
      evals += ev.rules.size();
      fails += ev.FailedRules().size();
    }
    elapsed = Clock::now() - start;
  }
  std::cout << "policy=" << policy.name << " rules=" << policy.rules.size() << " evaluations=" << evals
            << " seconds=" << elapsed.count() << " rule_evaluations_per_second="
            << static_cast<long long>(evals / elapsed.count()) << " (fails seen " << fails << ")\n";

  // 2. configz parse + evaluation (a full node check as the controller does it)
  size_t nodes = 0;
  start = Clock::now();
  elapsed = {};
  while (elapsed.count() < seconds) {
    for (int i = 0; i < 100; ++i) {
      auto c = kpc::policy::EffectiveConfigFromConfigz(configz);
      auto ev = kpc::policy::EvaluateNode(policy, node, *c, 0);
      nodes += ev.rules.empty() ? 0 : 1;
    }
    elapsed = Clock::now() - start;
  }
  std::cout << "configz_bytes=" << configz.size() << " node_checks_per_second(parse+evaluate)="
            << static_cast<long long>(nodes / elapsed.count()) << "\n";
  return 0;
}
