#pragma once
// The flag groups `run` and `webhook` share: one definition of each flag (name, value rule,
// help text), bound to a plain struct, so the two commands cannot drift apart. Each Add*
// function opens its help group and reads the struct's current values as the defaults shown
// in --help (a command sets different defaults by setting the struct first). Reading the
// environment is the only side effect: POD_NAMESPACE is the default of
// --leader-elect-namespace. Not thread-safe (getenv, and CLI11 apps belong to one thread).

#include <cstdint>
#include <string>

#include "base/status.h"
#include "cli/command_line.h"

namespace kpc::cli {

struct ConnectionFlags {
  std::string kubeconfig;
  std::string context;
  bool allow_insecure = false;
  double qps = 50;
  int burst = 100;
};

struct LeaderElectionFlags {
  bool leader_elect = true;
  std::string lease_namespace = "kube-system";
  std::string lease_name;  // each command has its own Lease
  int64_t lease_duration_ns = 15'000'000'000;
  int64_t renew_deadline_ns = 10'000'000'000;
  int64_t retry_period_ns = 2'000'000'000;
};

struct ServingFlags {
  std::string health_addr = ":8081";
  std::string metrics_addr = ":8080";
};

struct LoggingFlags {
  std::string log_format = "text";
  std::string log_level = "info";
};

// --kubeconfig, --context, --insecure-skip-tls-verify, --kube-api-qps, --kube-api-burst.
void AddConnectionFlags(CLI::App& app, ConnectionFlags& flags);

// --leader-elect and --leader-elect-{namespace,name,lease-duration,renew-deadline,retry-period},
// under the heading `group` (which says what only the leader does).
void AddLeaderElectionFlags(CLI::App& app, LeaderElectionFlags& flags, const std::string& group);

// --health-addr, --metrics-addr.
void AddServingFlags(CLI::App& app, ServingFlags& flags);

// --log-format, --log-level.
void AddLoggingFlags(CLI::App& app, LoggingFlags& flags);

// The lease timings must nest: retry period < renew deadline < lease duration. Pure.
Status ValidateLeaderElectionFlags(const LeaderElectionFlags& flags);

}  // namespace kpc::cli
