// Fuzz target: the agent's result as the controller reads it back from a Job's termination
// message or output (agent/result.h).
// Properties: no crash, sanitizer report or escaping exception; a result that parses
// survives ToJson -> AgentResultFromJson unchanged; FitToLimit's output parses again, keeps
// "command" (or its start), "ok" and whether it is blocked, and fits the kubelet's 4096 bytes
// (smaller limits may keep only the essentials); ParseMode(FormatMode(m)) == m.
// Input: a result's JSON text [NUL choices: limits, FitToLimit's limit].

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/result.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace agent = kpc::agent;
using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const auto limits = in.Byte() % 2 == 0 ? agent::kTerminationMessageLimits : agent::kResultLimits;
  static constexpr size_t kFits[] = {4096, 4096, 1024, 300, 64, 0};
  const size_t fit_limit = kFits[in.Byte() % 6];
  const std::string text(in.text());

  if (auto mode = agent::ParseMode(text)) {
    FUZZ_CHECK(*mode <= 07777 && agent::ParseMode(agent::FormatMode(*mode)) == *mode, text);
  }

  auto r = agent::ParseAgentResult(text, limits);
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == kpc::StatusCode::kInvalidArgument, r.status().message());
    return 0;
  }
  const json j = agent::ToJson(*r);
  auto again = agent::AgentResultFromJson(j);
  FUZZ_CHECK(again.ok(), again.status().message() + "\n" + Dump(j));
  FUZZ_CHECK(agent::ToJson(*again) == j, Dump(j) + "\n" + Dump(agent::ToJson(*again)));
  FUZZ_CHECK(agent::ExitCodeOf(*again) == agent::ExitCodeOf(*r), Dump(j));

  const std::string fit = agent::FitToLimit(*r, fit_limit);
  if (fit_limit >= 4096)
    FUZZ_CHECK(fit.size() <= fit_limit, std::to_string(fit.size()) + " " + fit);
  auto back = agent::ParseAgentResult(fit, agent::kResultLimits);
  FUZZ_CHECK(back.ok(), back.status().message() + "\n" + fit);
  FUZZ_CHECK(back->ok == r->ok && back->blocked.has_value() == r->blocked.has_value(), fit);
  FUZZ_CHECK(back->command == r->command ||
                 (back->command.size() < r->command.size() && back->command.size() >= 3 &&
                  r->command.rfind(back->command.substr(0, back->command.size() - 3), 0) == 0),
             fit);
  return 0;
}
