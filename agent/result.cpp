#include "agent/result.h"

#include <algorithm>
#include <set>
#include <utility>

namespace kpc::agent {
namespace {

using nlohmann::json;

constexpr const char* kApiVersion = "kubeletpolicy.io/v1alpha1";
constexpr const char* kKind = "AgentResult";

json FactsToJson(const policy::FileFacts& f) {
  if (!f.error.empty()) return json{{"error", f.error}};
  if (!f.exists) return json{{"exists", false}};
  json j{{"exists", true}, {"mode", FormatMode(f.mode)}, {"uid", f.uid}, {"gid", f.gid}};
  if (!f.owner.empty()) j["owner"] = f.owner;
  if (!f.group.empty()) j["group"] = f.group;
  return j;
}

json ChangeToJson(const Change& c) {
  json j{{"kind", c.kind}};
  if (!c.field.empty()) j["field"] = c.field;
  if (!c.flag.empty()) j["flag"] = c.flag;
  if (!c.file.empty()) j["file"] = c.file;
  if (!c.path.empty()) j["path"] = c.path;
  if (c.from) j["from"] = *c.from;
  j["to"] = c.to;
  j["changed"] = c.changed;
  if (!c.note.empty()) j["note"] = c.note;
  return j;
}

json KubeletToJson(const KubeletFiles& k) {
  json j = json::object();
  if (!k.config_file.empty()) j["configFile"] = k.config_file;
  if (!k.kubeconfig.empty()) j["kubeconfig"] = k.kubeconfig;
  if (!k.flags_files.empty()) j["flagsFiles"] = k.flags_files;
  if (!k.service_files.empty()) j["serviceFiles"] = k.service_files;
  return j;
}

// Strict field readers: an absent key leaves the target alone, a key of the wrong type is an
// error naming it.
Status Bad(const std::string& where, const std::string& want) {
  return InvalidArgument("AgentResult: \"" + where + "\" must be " + want);
}

Status ReadString(const json& obj, const char* key, const std::string& where, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Bad(where + key, "a string");
  out = it->get<std::string>();
  return Status::Ok();
}

Status ReadBool(const json& obj, const char* key, const std::string& where, bool& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return Bad(where + key, "a boolean");
  out = it->get<bool>();
  return Status::Ok();
}

Status ReadStrings(const json& obj, const char* key, const std::string& where,
                   std::vector<std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Bad(where + key, "a list of strings");
  for (const json& e : *it) {
    if (!e.is_string()) return Bad(where + key, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return Status::Ok();
}

Status ReadId(const json& obj, const char* key, const std::string& where, uint32_t& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    return Bad(where + key, "a non-negative integer");
  }
  uint64_t v = it->get<uint64_t>();
  if (v > 0xffffffffULL) return Bad(where + key, "a 32-bit id");
  out = static_cast<uint32_t>(v);
  return Status::Ok();
}

#define KPC_RETURN_IF_ERROR(expr) \
  do {                            \
    Status _s = (expr);           \
    if (!_s.ok()) return _s;      \
  } while (0)

StatusOr<policy::FileFacts> FactsFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where, "an object");
  policy::FileFacts f;
  KPC_RETURN_IF_ERROR(ReadBool(j, "exists", where + ".", f.exists));
  KPC_RETURN_IF_ERROR(ReadString(j, "error", where + ".", f.error));
  std::string mode;
  KPC_RETURN_IF_ERROR(ReadString(j, "mode", where + ".", mode));
  if (!mode.empty()) {
    auto m = ParseMode(mode);
    if (!m) return Bad(where + ".mode", "an octal mode such as \"0600\"");
    f.mode = *m;
  }
  KPC_RETURN_IF_ERROR(ReadId(j, "uid", where + ".", f.uid));
  KPC_RETURN_IF_ERROR(ReadId(j, "gid", where + ".", f.gid));
  KPC_RETURN_IF_ERROR(ReadString(j, "owner", where + ".", f.owner));
  KPC_RETURN_IF_ERROR(ReadString(j, "group", where + ".", f.group));
  return f;
}

StatusOr<Change> ChangeFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where, "an object");
  Change c;
  KPC_RETURN_IF_ERROR(ReadString(j, "kind", where + ".", c.kind));
  KPC_RETURN_IF_ERROR(ReadString(j, "field", where + ".", c.field));
  KPC_RETURN_IF_ERROR(ReadString(j, "flag", where + ".", c.flag));
  KPC_RETURN_IF_ERROR(ReadString(j, "file", where + ".", c.file));
  KPC_RETURN_IF_ERROR(ReadString(j, "path", where + ".", c.path));
  if (auto it = j.find("from"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return Bad(where + ".from", "a string");
    c.from = it->get<std::string>();
  }
  KPC_RETURN_IF_ERROR(ReadString(j, "to", where + ".", c.to));
  KPC_RETURN_IF_ERROR(ReadBool(j, "changed", where + ".", c.changed));
  KPC_RETURN_IF_ERROR(ReadString(j, "note", where + ".", c.note));
  return c;
}

std::string Shorten(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  if (max <= 3) return s.substr(0, max);
  // Cut on a UTF-8 boundary so that the JSON stays valid.
  size_t cut = max - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

size_t DumpSize(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace).size();
}
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Keeps the largest prefix of the array/object `container` (by erasing from the back) for which
// `whole` fits in `limit`; binary search so that large results cost O(log n) dumps.
template <typename EraseFrom>
void KeepPrefixThatFits(json& whole, size_t count, size_t limit, EraseFrom erase_from) {
  // erase_from(whole, n): keep the first n entries.
  size_t lo = 0, hi = count;  // invariant: keeping lo fits (checked by caller), hi may not
  json probe;
  while (lo < hi) {
    size_t mid = lo + (hi - lo + 1) / 2;
    probe = whole;
    erase_from(probe, mid);
    if (DumpSize(probe) <= limit) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  erase_from(whole, lo);
}

// The steps of FitToLimit. Each shrinks `j` and returns whether it now fits in `limit`.

// 1. "files" entries that no change names (as many put back as fit).
bool DropUnnamedFiles(json& j, const AgentResult& r, size_t limit) {
  std::set<std::string> named;
  for (const Change& c : r.changes) {
    if (!c.file.empty()) named.insert(c.file);
    if (!c.path.empty()) named.insert(c.path);
  }
  json kept = json::object();
  json dropped = json::object();
  for (auto& [path, facts] : j["files"].items()) {
    (named.count(path) > 0 ? kept : dropped)[path] = facts;
  }
  j["files"] = kept;
  if (DumpSize(j) > limit) return false;
  std::vector<std::pair<std::string, json>> extra;
  for (auto& [path, facts] : dropped.items()) extra.emplace_back(path, facts);
  json base = j;
  KeepPrefixThatFits(j, extra.size(), limit, [&](json& w, size_t n) {
    w = base;
    for (size_t i = 0; i < n; ++i) w["files"][extra[i].first] = extra[i].second;
  });
  return true;
}

// 2. Changes that changed nothing.
bool DropUnchangedChanges(json& j, size_t limit) {
  json kept = json::array();
  for (const json& c : j["changes"]) {
    if (c.value("changed", false)) kept.push_back(c);
  }
  j["changes"] = kept;
  return DumpSize(j) <= limit;
}

// 3. Errors after the first (as many kept as fit).
bool KeepFirstErrors(json& j, size_t limit) {
  if (j["errors"].size() <= 1) return false;
  json rest = j["errors"];
  j["errors"] = json::array({rest[0]});
  if (DumpSize(j) > limit) return false;
  KeepPrefixThatFits(j, rest.size(), limit, [&](json& w, size_t m) {
    json a = json::array();
    for (size_t i = 0; i < std::max<size_t>(m, 1); ++i) a.push_back(rest[i]);
    w["errors"] = std::move(a);
  });
  return true;
}

// 4. The rest of the details: the kubelet's files, "files", changes (as many kept as fit),
// apiVersion and kind.
bool DropDetails(json& j, size_t limit) {
  if (j.contains("kubelet")) {
    j["kubelet"].erase("serviceFiles");
    j["kubelet"].erase("flagsFiles");
    if (DumpSize(j) <= limit) return true;
  }
  j["files"] = json::object();
  if (DumpSize(j) <= limit) return true;
  json changes = j["changes"];
  j["changes"] = json::array();
  if (DumpSize(j) <= limit) {
    KeepPrefixThatFits(j, changes.size(), limit, [&](json& w, size_t m) {
      json a = json::array();
      for (size_t i = 0; i < m; ++i) a.push_back(changes[i]);
      w["changes"] = std::move(a);
    });
    return true;
  }
  j.erase("kubelet");
  j.erase("apiVersion");
  j.erase("kind");
  return DumpSize(j) <= limit;
}

// 5. Only the essentials are left; shorten their strings.
bool ShortenEssentials(json& j, const AgentResult& r, size_t limit) {
  for (size_t budget = 1024; budget >= 16; budget /= 2) {
    if (!j["errors"].empty()) {
      j["errors"] = json::array({Shorten(r.errors.front(), budget)});
    }
    if (r.blocked) {
      j["blocked"]["message"] = Shorten(r.blocked->message, budget);
      j["blocked"]["reason"] = Shorten(r.blocked->reason, 64);
    }
    j["command"] = Shorten(r.command, 64);
    if (DumpSize(j) <= limit) return true;
  }
  return false;
}

}  // namespace

std::string FormatMode(uint32_t mode) {
  std::string out;
  mode &= 07777;
  do {
    out.insert(out.begin(), static_cast<char>('0' + (mode & 7)));
    mode >>= 3;
  } while (mode != 0);
  while (out.size() < 4) out.insert(out.begin(), '0');
  return out;
}

std::optional<uint32_t> ParseMode(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    v = v * 8 + static_cast<uint32_t>(c - '0');
  }
  if (v > 07777) return std::nullopt;
  return v;
}

int ExitCodeOf(const AgentResult& r) {
  if (r.blocked) return kExitBlocked;
  if (!r.errors.empty() || !r.ok) return kExitFailed;
  return kExitOk;
}

json ToJson(const AgentResult& r) {
  json j{{"apiVersion", kApiVersion}, {"kind", kKind}, {"command", r.command}, {"ok", r.ok}};
  if (r.blocked)
    j["blocked"] = json{{"reason", r.blocked->reason}, {"message", r.blocked->message}};
  json k = KubeletToJson(r.kubelet);
  if (!k.empty()) j["kubelet"] = std::move(k);
  j["changes"] = json::array();
  for (const Change& c : r.changes) j["changes"].push_back(ChangeToJson(c));
  j["files"] = json::object();
  for (const auto& [path, facts] : r.files) j["files"][path] = FactsToJson(facts);
  j["restarted"] = r.restarted;
  j["errors"] = r.errors;
  j["truncated"] = r.truncated;
  return j;
}

StatusOr<AgentResult> AgentResultFromJson(const json& j) {
  if (!j.is_object()) return InvalidArgument("AgentResult: expected a JSON object");
  AgentResult r;
  if (auto kind = j.find("kind"); kind != j.end() && (!kind->is_string() || *kind != kKind)) {
    return Bad("kind", std::string("\"") + kKind + "\"");
  }
  auto cmd = j.find("command");
  if (cmd == j.end() || !cmd->is_string())
    return Bad("command", "a string (remediate, audit-files)");
  r.command = cmd->get<std::string>();
  KPC_RETURN_IF_ERROR(ReadBool(j, "ok", "", r.ok));
  if (auto it = j.find("blocked"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("blocked", "an object");
    Blocked b;
    KPC_RETURN_IF_ERROR(ReadString(*it, "reason", "blocked.", b.reason));
    KPC_RETURN_IF_ERROR(ReadString(*it, "message", "blocked.", b.message));
    r.blocked = std::move(b);
  }
  if (auto it = j.find("kubelet"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("kubelet", "an object");
    KPC_RETURN_IF_ERROR(ReadString(*it, "configFile", "kubelet.", r.kubelet.config_file));
    KPC_RETURN_IF_ERROR(ReadString(*it, "kubeconfig", "kubelet.", r.kubelet.kubeconfig));
    KPC_RETURN_IF_ERROR(ReadStrings(*it, "flagsFiles", "kubelet.", r.kubelet.flags_files));
    KPC_RETURN_IF_ERROR(ReadStrings(*it, "serviceFiles", "kubelet.", r.kubelet.service_files));
  }
  if (auto it = j.find("changes"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Bad("changes", "a list");
    for (size_t i = 0; i < it->size(); ++i) {
      auto c = ChangeFromJson((*it)[i], "changes[" + std::to_string(i) + "]");
      if (!c.ok()) return c.status();
      r.changes.push_back(std::move(*c));
    }
  }
  if (auto it = j.find("files"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("files", "an object");
    for (const auto& [path, facts] : it->items()) {
      auto f = FactsFromJson(facts, "files[" + policy::Shortened(path) + "]");
      if (!f.ok()) return f.status();
      r.files[path] = std::move(*f);
    }
  }
  KPC_RETURN_IF_ERROR(ReadBool(j, "restarted", "", r.restarted));
  KPC_RETURN_IF_ERROR(ReadStrings(j, "errors", "", r.errors));
  KPC_RETURN_IF_ERROR(ReadBool(j, "truncated", "", r.truncated));
  return r;
}

StatusOr<AgentResult> ParseAgentResult(const std::string& text, policy::ShapeLimits limits) {
  if (auto refused = policy::CheckJsonShape(text, limits, "the agent result")) {
    return policy::RefusalStatus(*refused);
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("AgentResult is not valid JSON: ") + Shorten(e.what(), 200));
  }
  return AgentResultFromJson(j);
}

std::string FitToLimit(const AgentResult& r, std::size_t limit) {
  json j = ToJson(r);
  if (DumpSize(j) <= limit) return Dump(j);
  j["truncated"] = true;
  // Each step drops more; the first after which the result fits ends it.
  if (DropUnnamedFiles(j, r, limit) || DropUnchangedChanges(j, limit) ||
      KeepFirstErrors(j, limit) || DropDetails(j, limit) || ShortenEssentials(j, r, limit)) {
    return Dump(j);
  }
  // A limit too small for even the essentials: the smallest valid AgentResult we can make.
  json tiny{{"command", Shorten(r.command, 32)}, {"ok", r.ok}, {"truncated", true}};
  if (r.blocked) tiny["blocked"] = json{{"reason", Shorten(r.blocked->reason, 32)}};
  return Dump(tiny);
}

}  // namespace kpc::agent
