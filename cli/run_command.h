#pragma once
// `kubelet-policy-controller run`: the operator (and, later, the admission webhooks).
#include <string>
#include <vector>

namespace kpc::cli {

int RunOperator(const std::vector<std::string>& args);
std::string RunUsage();

}  // namespace kpc::cli
