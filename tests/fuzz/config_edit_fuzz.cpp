// Fuzz target: the agent's edits of a kubelet config file (agent/config_edit.h): one field of
// the catalog set to a value typed the way `agent remediate --set` types it.
// Properties: no crash, sanitizer report or escaping exception; content that is not a valid
// KubeletConfiguration is refused (InvalidArgument) and valid content is edited (an edit that
// cannot be verified is refused with Internal; with KPC_FUZZ_STRICT_EDIT=1 that is reported
// too, to find such files); an edit re-parses to the original configuration with only the
// target field set to the value (all other fields as they were); an unchanged edit returns the
// input byte for byte and the field already held the value; "from" is the old value; JSON
// stays JSON; editing the result again changes nothing.
// Input: the file content [NUL choices: file name, field, map key, value].

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/config_edit.h"
#include "policy/catalog.h"
#include "policy/effective_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace agent = kpc::agent;
namespace policy = kpc::policy;
using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const char* const kMapKeys[] = {"memory.available",
                                "nodefs.available",
                                "SeccompDefault",
                                "RotateKubeletServerCertificate",
                                "a b",
                                "x:y",
                                "k\"q"};

// Raw --set values: every type, and text YAML could read as something else.
const char* const kRawValues[] = {
    "true",
    "false",
    "0",
    "5",
    "-1",
    "10250",
    "2147483648",
    "0.5",
    "1e-7",
    "1e21",
    "0.1",
    "\"\"",
    "/etc/kubernetes/pki/ca.crt",
    "Webhook",
    "a b",
    "\"true\"",
    "\"0755\"",
    "\"1e3\"",
    "#x",
    ": x",
    "- x",
    "'q'",
    "\"x\\ny\"",
    "null",
    "~",
    "@at",
    "*star",
    "&anchor",
    "!tag",
    "%p",
    "yes",
    "0x1F",
    ".inf",
    "a: b",
    "a #b",
    " lead",
    "trail ",
    "\"tab\\t\"",
    "\"\\u00e9\"",
    "\\",
    "0s",
    "4h0m0s",
    "5m",
    "1h2m3.5s",
    "100Mi",
    "10%",
    "1Gi",
    "[]",
    "[\"a\",\"b c\"]",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
    "{}",
    "{\"memory.available\":\"100Mi\",\"nodefs.available\":\"10%\"}",
    "{\"enabled\":true}",
    "{\"SeccompDefault\":true}",
    "[1,{\"a\":[]}]",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const std::string file = in.Byte() % 2 == 0 ? "/var/lib/kubelet/config.yaml"
                                              : "/etc/kubernetes/kubelet/kubelet-config.json";
  const auto& catalog = policy::KubeletFieldCatalog();
  const policy::FieldInfo& field = catalog[in.Pick(catalog.size())];
  auto parsed_path = policy::FieldPath::Parse(field.path);
  FUZZ_CHECK(parsed_path.ok(), field.path);
  policy::FieldPath path = *parsed_path;
  const uint8_t key = in.Byte();
  if (field.type == policy::ValueType::kMap && key % 2 == 1) {
    path = path.Child(kMapKeys[key / 2 % (sizeof kMapKeys / sizeof *kMapKeys)]);
  }
  const uint8_t v = in.Byte();
  const std::string raw = v < sizeof kRawValues / sizeof *kRawValues
                              ? std::string(kRawValues[v])
                              : std::string(in.RestOfChoices());
  auto value = agent::TypeSetValue(path, raw);
  if (!value.ok()) return 0;
  const policy::ValueType type = agent::TypeOfPath(path);
  const std::string_view content = in.text();

  auto before = policy::ParseKubeletConfigFile(content, file);
  auto edit = agent::SetConfigField(content, file, path, *value, type);
  const std::string what = "set " + path.ToString() + " to " + Dump(*value);
  if (!before.ok()) {
    FUZZ_CHECK(!edit.ok() && edit.status().code() == kpc::StatusCode::kInvalidArgument,
               what + ": an invalid file was not refused");
    return 0;
  }
  if (!edit.ok()) {
    FUZZ_CHECK(edit.status().code() == kpc::StatusCode::kInternal,
               what + ": " + edit.status().message());
    static const bool strict = std::getenv("KPC_FUZZ_STRICT_EDIT") != nullptr;
    FUZZ_CHECK(!strict, what + ": refused: " + edit.status().message());
    return 0;
  }
  const json* old = path.Find(*before);
  FUZZ_CHECK(edit->from.has_value() == (old != nullptr) && (old == nullptr || *edit->from == *old),
             what + ": from");
  if (!edit->changed) {
    FUZZ_CHECK(edit->text == content, what + ": unchanged but the text differs");
    FUZZ_CHECK(old != nullptr && agent::TypedEqual(*old, *value, type), what + ": not changed");
    return 0;
  }
  auto after = policy::ParseKubeletConfigFile(edit->text, file);
  FUZZ_CHECK(after.ok(),
             what + ": the result does not parse: " + after.status().message() + "\n" + edit->text);
  json expect = *before;
  path.Set(expect, *value);
  FUZZ_CHECK(*after == expect, what + ":\n" + edit->text + "\nparses to\n" + Dump(*after) +
                                   "\nwant\n" + Dump(expect));
  FUZZ_CHECK(
      agent::DetectConfigFormat(content, file) == agent::DetectConfigFormat(edit->text, file),
      what + ": the format changed\n" + edit->text);
  auto again = agent::SetConfigField(edit->text, file, path, *value, type);
  FUZZ_CHECK(again.ok() && !again->changed && again->text == edit->text, what + ": not idempotent");
  return 0;
}
