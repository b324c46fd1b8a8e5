#pragma once
// `kubelet-policy-controller webhook`: the admission webhooks alone, in a process (and
// ServiceAccount) of their own, until SIGTERM or SIGINT. Flags: cli/webhook_flags.h.
//
// Every replica serves /validate-kubeletpolicy and /mutate-kubeletpolicy over HTTPS, with the
// conflict warnings read from its own KubeletPolicy informer, plus /healthz, /readyz (ready
// once the policies are listed and a serving certificate is loaded) and /metrics. With
// self-managed certificates, only the replica holding the Lease (--leader-elect-name, default
// kubelet-policy-controller-webhook) writes the Secret and the two webhook configurations, each
// write a full update that is safe to repeat, and records an Event on the Secret when it
// changes; with cert-manager certificates nothing is written and no Lease is taken.

#include <ostream>
#include <string>
#include <vector>

namespace kpc::cli {

// `args` are the words after "webhook". Prints help on `out`, usage errors on `err`; logs
// through spdlog once the flags are read. Returns the exit code: 0 after a signal (or for
// --help), 1 when a server cannot start, 2 for a usage error or an unusable kubeconfig.
// Installs the process's SIGTERM and SIGINT handlers: call it once, from main.
int RunWebhook(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace kpc::cli
