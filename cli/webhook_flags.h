#pragma once
// The flags of `kubelet-policy-controller webhook`: their values, how they are read (CLI11,
// the rules of cli/command_line.h), and the checks across flags. The connection, leader
// election, health/metrics and logging groups are cli/common_flags.h's, shared with `run`.
// Reading the environment is the only side effect: POD_NAMESPACE is the default of
// --leader-elect-namespace and --webhook-namespace. Not thread-safe (getenv).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/command_line.h"
#include "cli/common_flags.h"

namespace kpc::cli {

// The admission server and its certificates: the flags only `webhook` has.
struct WebhookServerFlags {
  std::string webhook_addr = ":9443";
  std::string webhook_cert_mode = "self-managed";  // or "cert-manager"
  std::string webhook_cert_dir = "/var/run/kubelet-policy-controller/webhook-certs";
  bool local_webhooks = false;
  std::string webhook_namespace = "kubelet-policy-system";
  std::string webhook_service = "kubelet-policy-controller-webhook";
  std::string webhook_secret = "kubelet-policy-controller-webhook-tls";
  std::string webhook_configuration = "kubelet-policy-controller";
  int64_t webhook_ca_validity_ns = 87600LL * 3600 * 1'000'000'000;
  int64_t webhook_cert_validity_ns = 8760LL * 3600 * 1'000'000'000;
  int64_t webhook_sync_period_ns = 10'000'000'000;
};

// Defaults are the documented ones (README "The admission webhooks: `webhook`",
// `webhook --help`).
struct WebhookFlags {
  ConnectionFlags connection;
  LeaderElectionFlags election{.lease_name = "kubelet-policy-controller-webhook"};
  ServingFlags serving;
  WebhookServerFlags server;
  LoggingFlags logging;
};

// The admission-server group alone, bound to `flags` (also how `run` learns which flags moved).
void AddWebhookServerFlags(CLI::App& app, WebhookServerFlags& flags);

// Adds every `webhook` flag to `app`, bound to the fields of `flags`.
void AddWebhookFlags(CLI::App& app, WebhookFlags& flags);

// The checks that involve more than one flag. Pure.
Status ValidateWebhookFlags(const WebhookFlags& flags);

// The port of --webhook-addr that --local-webhooks serves on 127.0.0.1: the digits after the
// last ':' (or the whole text without one); nullopt when that is not a fixed port. Pure.
std::optional<std::string> LocalWebhookPort(const std::string& webhook_addr);

// `args` are the words after "webhook". Returns the flags (checked), the help text, or an
// InvalidArgument status naming the flag.
StatusOr<CommandLine<WebhookFlags>> ParseWebhookFlags(const std::vector<std::string>& args);

}  // namespace kpc::cli
