#pragma once
// spdlog set-up: plain text, or one JSON object per line (--log-format=json).
#include <string>

#include "base/status.h"

namespace kpc {

// format: "text" or "json"; level: trace, debug, info, warn, error.
Status SetUpLogging(const std::string& format, const std::string& level);

}  // namespace kpc
