// Fuzz target: the agent's edits of files that carry kubelet flags (agent/flags_edit.h): one
// catalog field with a flag set to a value typed the way `agent remediate --set` types it.
// Properties: no crash, sanitizer report or escaping exception; a file that does not parse is
// refused; a refusal is InvalidArgument; an unchanged edit returns the input byte for byte; a
// changed file parses to the same flags in the same order, every other flag with its value as
// before, and the field's flags read back as the value (for a map key: the map's other keys
// as before); editing the result again changes nothing.
// Input: the file content [NUL choices: file name, field, map key, value].

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/config_edit.h"
#include "agent/flags_edit.h"
#include "policy/catalog.h"
#include "policy/effective_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace agent = kpc::agent;
namespace policy = kpc::policy;
using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const char* const kFileNames[] = {
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/default/kubelet",
    "/var/snap/microk8s/current/args/kubelet",
};
const char* const kMapKeys[] = {"memory.available",
                                "nodefs.available",
                                "imagefs.available",
                                "SeccompDefault",
                                "RotateKubeletServerCertificate",
                                "cpu",
                                "a b"};
const char* const kRawValues[] = {
    "true",
    "false",
    "0",
    "5",
    "-1",
    "10250",
    "0.5",
    "1e-7",
    "/etc/kubernetes/pki/ca.crt",
    "Webhook",
    "Webhook,Node",
    "a b",
    "$HOME",
    "'q'",
    "\"",
    "x\\y",
    "10%",
    "100Mi",
    "0s",
    "4h0m0s",
    "5m",
    "[]",
    "[\"a\",\"b\"]",
    "{}",
    "{\"memory.available\":\"100Mi\"}",
    "{\"SeccompDefault\":true}",
    "x=y",
    "a,b",
    "<1",
    "@x",
    "+1",
    ":",
    "",
};

std::vector<policy::KubeletFlag> Only(const std::vector<policy::KubeletFlag>& flags,
                                      const std::string& name) {
  std::vector<policy::KubeletFlag> out;
  for (const auto& f : flags) {
    std::string n = f.name;
    for (char& c : n) c = c == '_' ? '-' : c;
    if (n == name) out.push_back(f);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const std::string file = kFileNames[in.Byte() % 4];
  static const std::vector<const policy::FieldInfo*> with_flags = [] {
    std::vector<const policy::FieldInfo*> out;
    for (const auto& f : policy::KubeletFieldCatalog()) {
      if (!f.flag.empty()) out.push_back(&f);
    }
    return out;
  }();
  const policy::FieldInfo& field = *with_flags[in.Pick(with_flags.size())];
  auto parsed_path = policy::FieldPath::Parse(field.path);
  FUZZ_CHECK(parsed_path.ok(), field.path);
  policy::FieldPath path = *parsed_path;
  const uint8_t key = in.Byte();
  if (field.type == policy::ValueType::kMap && key % 4 != 0) {
    path = path.Child(kMapKeys[key / 4 % (sizeof kMapKeys / sizeof *kMapKeys)]);
  }
  auto match = policy::LookupField(path);
  FUZZ_CHECK(match.has_value(), path.ToString());
  const uint8_t v = in.Byte();
  const std::string raw = v < sizeof kRawValues / sizeof *kRawValues
                              ? std::string(kRawValues[v])
                              : std::string(in.RestOfChoices());
  auto value = agent::TypeSetValue(path, raw);
  if (!value.ok()) return 0;
  const std::string_view content = in.text();
  const std::string what = "set " + path.ToString() + " (--" + field.flag + ") to " + Dump(*value);

  auto before = policy::ParseKubeletFlags(content, file);
  auto edit = agent::SetFlagInFile(content, file, *match, *value);
  if (!before.ok()) {
    FUZZ_CHECK(!edit.ok(), what + ": a file that does not parse was edited");
    return 0;
  }
  if (!edit.ok()) {
    FUZZ_CHECK(edit.status().code() == kpc::StatusCode::kInvalidArgument,
               what + ": " + edit.status().message());
    return 0;
  }
  if (!edit->changed) {
    FUZZ_CHECK(edit->text == content, what + ": unchanged but the text differs");
    return 0;
  }
  auto after = policy::ParseKubeletFlags(edit->text, file);
  FUZZ_CHECK(after.ok() && after->size() == before->size(),
             what + ": the result parses differently\n" + edit->text);
  for (size_t i = 0; i < after->size(); ++i) {
    const auto& a = (*after)[i];
    const auto& b = (*before)[i];
    FUZZ_CHECK(a.name == b.name, what + ": flag " + std::to_string(i) + " is now " + a.name);
    if (Only({a}, field.flag).empty()) {
      FUZZ_CHECK(a.value == b.value, what + ": --" + a.name + " changed\n" + edit->text);
    }
  }
  // The field's flags alone, before and after: only the target changed.
  auto eff_after = policy::ComputeEffectiveConfig(json::object(), Only(*after, field.flag));
  FUZZ_CHECK(eff_after.ok(), what + ": " + eff_after.status().message() + "\n" + edit->text);
  const json* got = path.Find(eff_after->config);
  FUZZ_CHECK(got != nullptr && agent::TypedEqual(*got, *value, match->type),
             what + ": reads back as " + (got ? Dump(*got) : "nothing") + "\n" + edit->text);
  auto eff_before = policy::ComputeEffectiveConfig(json::object(), Only(*before, field.flag));
  if (eff_before.ok() && match->map_key) {
    json x = eff_before->config, y = eff_after->config;
    path.Erase(x);
    path.Erase(y);
    FUZZ_CHECK(x == y, what + ": other keys changed: " + Dump(x) + " -> " + Dump(y));
  }
  auto again = agent::SetFlagInFile(edit->text, file, *match, *value);
  FUZZ_CHECK(again.ok() && !again->changed && again->text == edit->text,
             what + ": not idempotent\n" + edit->text);
  return 0;
}
