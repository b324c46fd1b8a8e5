#pragma once
// How `run` reaches the kubelets: the operator's ConfigzAccess, from the flags and the API
// client's configuration. Reads the --kubelet-certificate-authority file and $POD_NAMESPACE;
// logs the choices (and a warning for --kubelet-insecure-tls). Not thread-safe (getenv).

#include <string>
#include <string_view>
#include <utility>

#include "base/clock.h"
#include "base/status.h"
#include "cli/run_flags.h"
#include "controller/operator.h"
#include "kube/client.h"

namespace kpc::cli {

// `client` and `clock` must outlive what is returned (its token source uses them).
StatusOr<controller::ConfigzAccess> KubeletAccessFrom(const RunFlags& flags,
                                                      const kube::ClientConfig& api,
                                                      kube::Client& client, const Clock& clock);

// "[NS/]NAME" → {namespace, name}; NS defaults to `default_ns`. Both must be DNS labels. Pure.
StatusOr<std::pair<std::string, std::string>> ParseServiceAccountRef(std::string_view ref,
                                                                     std::string_view default_ns);

}  // namespace kpc::cli
