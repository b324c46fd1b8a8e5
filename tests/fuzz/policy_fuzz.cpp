// Fuzz target: policy documents (policy/model.h, policy/yaml_json.h) and the shape checks
// that guard every parser of untrusted text (policy/limits.h).
// Properties: no crash, sanitizer report or escaping exception on any text, for
//  * ParsePolicies (YAML or JSON text: one policy, a stream, a List), and each policy it
//    returns has rules whose config path re-parses to itself;
//  * ParsePolicy on the text parsed as JSON (the API server's form);
//  * CheckJsonShape is exact on JSON: text it passes parses (when it parses) to a value no
//    deeper than the limit, and text it refuses for depth is deeper than the limit;
//  * ParseYamlStream never returns a document deeper than its depth limit, nor one that
//    cannot be dumped as JSON (strings that are not UTF-8);
//  * FieldPath::Parse(p.ToString()) == p for every path that parses;
//  * Quoted/Shortened: no control byte in the result, bounded by the cut.
// Input: policy text [NUL choices: depth limit, cut for Quoted].

#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/field_path.h"
#include "policy/limits.h"
#include "policy/model.h"
#include "policy/yaml_json.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace policy = kpc::policy;
using nlohmann::json;

void CheckPathRoundTrip(std::string_view text) {
  auto p = policy::FieldPath::Parse(text);
  if (!p.ok()) return;
  const std::string canonical = p->ToString();
  auto again = policy::FieldPath::Parse(canonical);
  FUZZ_CHECK(
      again.ok() && *again == *p,
      "path " + policy::Quoted(text) + " -> " + policy::Quoted(canonical) +
          (again.ok() ? " parses differently" : " does not parse: " + again.status().message()));
}

void CheckQuoted(std::string_view text, size_t max) {
  for (const std::string& q : {policy::Quoted(text, max), policy::Shortened(text, max)}) {
    for (unsigned char c : q) FUZZ_CHECK(c >= 0x20 && c != 0x7f, q);
    // Each byte escapes to at most 4 ("\x01"), plus quotes and "… (N bytes)".
    FUZZ_CHECK(q.size() <= 4 * max + 40, std::to_string(q.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const size_t depth = in.Byte() % 12 + 1;
  const size_t cut = in.Byte() % 80;
  const std::string_view text = in.text();

  auto policies = policy::ParsePolicies(text, "fuzz.yaml");
  if (policies.ok()) {
    for (const auto& sp : *policies) {
      for (const auto& rule : sp.policy.rules) {
        if (rule.config) CheckPathRoundTrip(rule.config->path_text);
      }
    }
  }

  // JSON: the shape check is exact.
  const policy::ShapeLimits limits{policy::kPolicyTextLimits.max_bytes, depth};
  auto refusal = policy::CheckJsonShape(text, limits, "fuzz");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    if (!refusal) {
      FUZZ_CHECK(!policy::NestsDeeperThan(j, depth),
                 "CheckJsonShape passed JSON deeper than " + std::to_string(depth));
      (void)policy::ParsePolicy(j);
    } else {
      FUZZ_CHECK(
          policy::NestsDeeperThan(j, depth),
          "CheckJsonShape refused JSON within " + std::to_string(depth) + ": " + refusal->message);
    }
  }

  // YAML: what the converter returns is within its depth limit.
  auto docs = policy::ParseYamlStream(text, limits);
  if (docs.ok()) {
    for (const auto& d : *docs) {
      FUZZ_CHECK(!policy::NestsDeeperThan(d.value, depth),
                 "ParseYamlStream returned a document deeper than " + std::to_string(depth));
      (void)d.value.dump();  // throws (and so fails) on a string that is not UTF-8
    }
  }

  CheckPathRoundTrip(text.substr(0, text.find('\n')));
  CheckQuoted(text, cut);
  return 0;
}
