#include "agent/flags_edit.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "agent/config_edit.h"
#include "policy/field_path.h"

namespace kpc::agent {
namespace {

using nlohmann::json;
using policy::FieldInfo;
using policy::FieldMatch;
using policy::KubeletFlag;

std::string Normalize(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

bool IsSystemdStyle(std::string_view content, std::string_view file_name) {
  if (EndsWith(file_name, ".service") || EndsWith(file_name, ".conf")) return true;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    std::string line =
        Trim(content.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    for (const char* p : {"[Service]", "[Unit]", "[Install]", "ExecStart=", "Environment="}) {
      if (line.rfind(p, 0) == 0) return true;
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

// A flag as written in the raw text.
struct Span {
  std::string name;  // normalised, without dashes
  size_t name_end = 0;
  bool has_value = false;
  size_t value_begin = 0, value_end = 0;
};

bool IsValueEnd(char c) {
  return c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\' || c == '\r' || c == '\n';
}

bool TakesValue(const std::string& name) {
  const FieldInfo* f = policy::FindFieldByFlag(name);
  return f != nullptr && f->type != policy::ValueType::kBool;
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The flag that starts at line[i] ("--name", "--name=value", "--name value" for a flag that
// takes one); nullopt when it cannot be located ("--foo!"). `pos` is the line's offset.
std::optional<Span> FlagAt(std::string_view line, size_t i, size_t pos) {
  size_t j = i + 2;
  while (j < line.size() &&
         (std::isalnum(static_cast<unsigned char>(line[j])) || line[j] == '-' || line[j] == '_'))
    ++j;
  if (j == i + 2) return std::nullopt;
  Span s;
  s.name = Normalize(line.substr(i + 2, j - i - 2));
  s.name_end = pos + j;
  if (j < line.size() && line[j] == '=') {
    size_t v = j + 1, e = v;
    while (e < line.size() && !IsValueEnd(line[e])) ++e;
    s.has_value = true;
    s.value_begin = pos + v;
    s.value_end = pos + e;
  } else if (j < line.size() && (line[j] == ' ' || line[j] == '\t') && TakesValue(s.name)) {
    size_t v = j;
    while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
    size_t e = v;
    while (e < line.size() && !IsValueEnd(line[e])) ++e;
    if (e > v) {
      s.has_value = true;
      s.value_begin = pos + v;
      s.value_end = pos + e;
    }
  } else if (j < line.size() && !IsValueEnd(line[j])) {
    return std::nullopt;
  }
  return s;
}

// How one line takes part: Environment= and ExecStart= lines of units (and their
// continuations), every non-comment line of env files.
struct LineRole {
  bool comment = false;
  bool active = false;       // it carries flags
  size_t start = 0;          // where they start
  bool assignments = false;  // it assigns variables (VAR=...), so only KUBELET_* ones count
};

LineRole ClassifyLine(std::string_view line, bool systemd, bool continued, bool& var_ok) {
  LineRole r;
  size_t first = line.find_first_not_of(" \t");
  if (first == std::string_view::npos) return r;
  r.comment = line[first] == '#' || (systemd && line[first] == ';');
  if (r.comment) return r;
  std::string_view rest = line.substr(first);
  const bool environment = rest.rfind("Environment=", 0) == 0;
  if (continued) {
    r.active = true;
  } else if (!systemd) {
    r.active = true;
    var_ok = true;
    r.start = first + (rest.rfind("export ", 0) == 0 ? 7 : 0);
  } else if (environment) {
    r.active = true;
    var_ok = true;
    r.start = first + 12;
  } else if (rest.rfind("ExecStart=", 0) == 0) {
    r.active = true;
    var_ok = true;
    r.start = first + 10;
  }
  r.assignments = !systemd || environment || continued;
  return r;
}

// The flags of one active line; `var_ok` says whether the assignment being scanned is a
// KUBELET_* variable (or none), and carries over to continuation lines.
void ScanLine(std::string_view line, size_t pos, const LineRole& role, bool& var_ok,
              std::vector<Span>& out) {
  for (size_t i = role.start; i < line.size(); ++i) {
    char prev = i == role.start ? ' ' : line[i - 1];
    bool boundary = prev == ' ' || prev == '\t' || prev == '"' || prev == '\'' || i == role.start;
    if (role.assignments && boundary && IsIdentStart(line[i])) {
      size_t j = i;
      while (j < line.size() && IsIdentChar(line[j])) ++j;
      if (j < line.size() && line[j] == '=') {
        var_ok = line.substr(i, j - i).rfind("KUBELET_", 0) == 0;
        i = j;  // the value starts after '='
        continue;
      }
    }
    if (line[i] != '-' || i + 2 >= line.size() || line[i + 1] != '-') continue;
    if (!(boundary || prev == '=')) continue;
    std::optional<Span> s = FlagAt(line, i, pos);
    if (!s) continue;
    if (s->has_value) i = s->value_end - pos - 1;
    if (var_ok) out.push_back(std::move(*s));
  }
}

// Flags as they appear in the raw text, in file order. Mirrors what ParseKubeletFlags counts.
std::vector<Span> ScanFlags(std::string_view content, bool systemd) {
  std::vector<Span> out;
  size_t pos = 0;
  bool continued = false;
  bool var_ok = true;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    size_t end = nl == std::string_view::npos ? content.size() : nl;
    std::string_view line = content.substr(pos, end - pos);
    LineRole role = ClassifyLine(line, systemd, continued, var_ok);
    if (role.active) ScanLine(line, pos, role, var_ok, out);
    bool ends_with_backslash =
        !line.empty() && (line.back() == '\\' || (line.size() > 1 && line.back() == '\r' &&
                                                  line[line.size() - 2] == '\\'));
    if (!role.comment) continued = role.active && ends_with_backslash;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

// Characters that mean the same unquoted in an env file, a shell and a unit's Environment= line.
// '%' is a specifier in unit files ("%%" there), so it is only written into env files.
bool SafeFlagText(const std::string& s, bool systemd) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '%' && !systemd) continue;
    if (!std::isalnum(u) && c != '.' && c != '_' && c != '-' && c != '/' && c != ':' && c != '=' &&
        c != ',' && c != '<' && c != '+' && c != '@') {
      return false;
    }
  }
  return true;
}

std::string ScalarText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

std::string JoinComma(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out;
}

// The value the map flag text gives `key`, or nullopt.
std::optional<std::string> MapValue(const std::string& text, const std::string& key, char sep) {
  std::optional<std::string> found;
  for (const std::string& item : SplitComma(text)) {
    size_t s = item.find(sep);
    if (s == std::string::npos) continue;
    if (Trim(std::string_view(item).substr(0, s)) == key)
      found = Trim(std::string_view(item).substr(s + 1));
  }
  return found;
}

// The refusal of an edit that cannot be made safely: the caller reports it, the user edits by
// hand.
struct Refuse {
  std::string flag, file;
  Status operator()(const std::string& why) const {
    return InvalidArgument("cannot rewrite --" + flag + " in " + file + " safely (" + why +
                           "); edit it by hand");
  }
};

// Where a file sets one flag: its occurrences as parsed (the semantics) and as scanned in the raw
// text (the positions), which agree one to one.
struct Located {
  std::vector<KubeletFlag> parsed;  // every flag of the file
  std::vector<KubeletFlag> mine;    // the occurrences of the flag, in order
  std::vector<Span> spans;          // their positions, in the same order
  bool systemd = false;
};

StatusOr<Located> LocateFlag(std::string_view content, std::string_view file_name,
                             const std::string& flag, const Refuse& refuse) {
  Located out;
  auto parsed = policy::ParseKubeletFlags(content, file_name);
  if (!parsed.ok()) return parsed.status();
  out.parsed = std::move(*parsed);
  for (const KubeletFlag& f : out.parsed) {
    if (Normalize(f.name) == flag) out.mine.push_back(f);
  }
  if (out.mine.empty()) return out;
  out.systemd = IsSystemdStyle(content, file_name);
  for (Span& s : ScanFlags(content, out.systemd)) {
    if (s.name == flag) out.spans.push_back(std::move(s));
  }
  if (out.spans.size() != out.mine.size()) {
    return refuse("its quoting or line continuations are not plain");
  }
  for (size_t i = 0; i < out.spans.size(); ++i) {
    const Span& span = out.spans[i];
    std::string raw = span.has_value ? std::string(content.substr(
                                           span.value_begin, span.value_end - span.value_begin))
                                     : std::string();
    if (span.has_value != out.mine[i].value.has_value() ||
        (span.has_value && raw != *out.mine[i].value)) {
      return refuse("its value is quoted or escaped");
    }
  }
  return out;
}

// A replacement of the raw text: erase `len` bytes at `at`, insert `text`.
struct Splice {
  size_t at, len;
  std::string text;
};

// Every occurrence of a scalar flag gets the value (a bare "--flag" gets "=value").
std::vector<Splice> ScalarSplices(const Located& found, const std::string& want,
                                  std::optional<std::string>& from) {
  std::vector<Splice> splices;
  for (size_t i = 0; i < found.spans.size(); ++i) {
    const Span& span = found.spans[i];
    from = found.mine[i].value.value_or("true");
    if (!span.has_value) {
      splices.push_back({span.name_end, 0, "=" + want});
    } else {
      splices.push_back({span.value_begin, span.value_end - span.value_begin, want});
    }
  }
  return splices;
}

// A map flag: the key's pair is replaced where it occurs; when it occurs nowhere it is added to
// the last occurrence (except for featureGates, where a missing gate keeps its default).
StatusOr<std::vector<Splice>> MapKeySplices(const Located& found, const FieldInfo& field,
                                            const std::string& key, const std::string& want,
                                            std::optional<std::string>& from,
                                            const Refuse& refuse) {
  const char sep = field.map_separator;
  std::vector<Splice> splices;
  for (size_t i = 0; i < found.spans.size(); ++i) {
    const std::string old = found.mine[i].value.value_or("");
    auto v = MapValue(old, key, sep);
    if (!v) continue;
    from = *v;
    std::vector<std::string> items = SplitComma(old);
    for (std::string& item : items) {
      size_t s = item.find(sep);
      if (s != std::string::npos && Trim(std::string_view(item).substr(0, s)) == key) {
        item = key + sep + want;
      }
    }
    const Span& span = found.spans[i];
    splices.push_back({span.value_begin, span.value_end - span.value_begin, JoinComma(items)});
  }
  if (!splices.empty() || field.path == "featureGates") return splices;
  const Span& last = found.spans.back();
  if (!last.has_value) return refuse("it has no value");
  std::string old = found.mine.back().value.value_or("");
  splices.push_back({last.value_begin, last.value_end - last.value_begin,
                     old.empty() ? key + sep + want : old + "," + key + sep + want});
  return splices;
}

std::string ApplySplices(std::string_view content, std::vector<Splice> splices) {
  std::sort(splices.begin(), splices.end(),
            [](const Splice& a, const Splice& b) { return a.at > b.at; });
  std::string text(content);
  for (const Splice& s : splices) text.replace(s.at, s.len, s.text);
  return text;
}

// The edited file must parse to the same flags in the same order, the others untouched, and the
// field must read back as the wanted value.
Status VerifyEdit(const std::string& text, std::string_view file_name, const Located& before,
                  const FieldMatch& match, const json& value, const Refuse& refuse) {
  const std::string& flag = match.field->flag;
  auto after = policy::ParseKubeletFlags(text, file_name);
  if (!after.ok() || after->size() != before.parsed.size()) {
    return refuse("the edited file parses differently");
  }
  std::vector<KubeletFlag> only_mine;
  for (size_t i = 0; i < after->size(); ++i) {
    const KubeletFlag& a = (*after)[i];
    const KubeletFlag& b = before.parsed[i];
    if (Normalize(a.name) != Normalize(b.name)) return refuse("the edited file parses differently");
    if (Normalize(a.name) != flag && a.value != b.value) return refuse("another flag would change");
    if (Normalize(a.name) == flag) only_mine.push_back(a);
  }
  auto eff = policy::ComputeEffectiveConfig(json::object(), only_mine);
  if (!eff.ok()) return refuse(eff.status().message());
  auto path = policy::FieldPath::Parse(match.field->path);
  if (!path.ok()) return Status::Ok();
  policy::FieldPath p = match.map_key ? path->Child(*match.map_key) : *path;
  const json* got = p.Find(eff->config);
  if (got == nullptr || !TypedEqual(*got, value, match.type)) {
    return refuse("the edited flag does not read back as the wanted value");
  }
  return Status::Ok();
}

}  // namespace

bool FlagsOverrideField(const std::vector<KubeletFlag>& flags, const FieldMatch& match) {
  if (match.field == nullptr || match.field->flag.empty()) return false;
  for (const KubeletFlag& f : flags) {
    if (Normalize(f.name) != match.field->flag) continue;
    if (match.map_key && match.field->path == "featureGates") {
      if (f.value && MapValue(*f.value, *match.map_key, match.field->map_separator)) return true;
      continue;
    }
    return true;
  }
  return false;
}

std::optional<json> FlagsValue(const std::vector<KubeletFlag>& flags, const FieldMatch& match) {
  if (!FlagsOverrideField(flags, match)) return std::nullopt;
  std::vector<KubeletFlag> mine;
  for (const KubeletFlag& f : flags) {
    if (Normalize(f.name) == match.field->flag) mine.push_back(f);
  }
  auto eff = policy::ComputeEffectiveConfig(json::object(), mine);
  auto path = policy::FieldPath::Parse(match.field->path);
  if (!eff.ok() || !path.ok()) return std::nullopt;
  const json* v = (match.map_key ? path->Child(*match.map_key) : *path).Find(eff->config);
  if (v == nullptr) return std::nullopt;
  return *v;
}

std::string FlagValueText(const json& value, const FieldInfo& field) {
  if (value.is_array()) {
    std::vector<std::string> items;
    for (const json& e : value) items.push_back(ScalarText(e));
    return JoinComma(items);
  }
  if (value.is_object()) {
    std::vector<std::string> items;
    for (const auto& [k, e] : value.items())
      items.push_back(k + field.map_separator + ScalarText(e));
    return JoinComma(items);
  }
  return ScalarText(value);
}

StatusOr<FlagsEdit> SetFlagInFile(std::string_view content, std::string_view file_name,
                                  const FieldMatch& match, const json& value) {
  FlagsEdit e;
  e.text = std::string(content);
  if (match.field == nullptr || match.field->flag.empty()) return e;
  const FieldInfo& field = *match.field;
  const Refuse refuse{field.flag, std::string(file_name)};
  auto found = LocateFlag(content, file_name, field.flag, refuse);
  if (!found.ok()) return found.status();
  if (found->spans.empty()) return e;

  const std::string want = match.map_key ? ScalarText(value) : FlagValueText(value, field);
  if (!SafeFlagText(want, found->systemd)) {
    return refuse("the value \"" + want + "\" would need quoting");
  }
  e.to = want;
  auto splices = match.map_key ? MapKeySplices(*found, field, *match.map_key, want, e.from, refuse)
                               : ScalarSplices(*found, want, e.from);
  if (!splices.ok()) return splices.status();
  std::string text = ApplySplices(content, std::move(*splices));
  if (text == content) return e;
  if (Status s = VerifyEdit(text, file_name, *found, match, value, refuse); !s.ok()) return s;
  e.text = std::move(text);
  e.changed = true;
  return e;
}

}  // namespace kpc::agent
