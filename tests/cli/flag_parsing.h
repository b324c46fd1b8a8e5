#pragma once
// Test helpers for a command's flags: parse them expecting success, or expecting the
// InvalidArgument error whose message is returned.

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "base/status.h"

namespace kpc::cli::flag_parsing {

// `parse` is a ParseXxxFlags function: args -> StatusOr<CommandLine<Flags>>.
template <typename Parse>
auto MustParseWith(Parse parse, const std::vector<std::string>& args)
    -> std::decay_t<decltype(parse(args)->flags)> {
  auto line = parse(args);
  EXPECT_TRUE(line.ok()) << line.status().message();
  if (!line.ok()) return {};
  EXPECT_FALSE(line->help);
  return line->flags;
}

template <typename Parse>
std::string ParseErrorWith(Parse parse, const std::vector<std::string>& args) {
  auto line = parse(args);
  if (line.ok()) return "<parsed>";
  EXPECT_EQ(line.status().code(), StatusCode::kInvalidArgument);
  return line.status().message();
}

inline std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace kpc::cli::flag_parsing
