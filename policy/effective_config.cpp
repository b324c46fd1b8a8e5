#include "policy/effective_config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "policy/catalog.h"
#include "policy/field_path.h"
#include "policy/units.h"
#include "policy/yaml_json.h"

namespace kpc::policy {
namespace {

using nlohmann::json;

constexpr size_t kSnippetChars = 200;

// Untrusted input quoted back in a message: bounded, and with control bytes made visible.
std::string Snippet(std::string_view text, size_t max = kSnippetChars) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max) out += "... (" + std::to_string(text.size()) + " bytes in all)";
  return out;
}

std::string Received(std::string_view body) {
  if (body.empty()) return "an empty body";
  // Appended piecewise: GCC 12's -Wrestrict misfires on "\"" + std::string at -O2.
  std::string out = "\"";
  out += Snippet(body);
  out += '"';
  return out;
}

std::string JsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

// nlohmann's parse errors quote the token read so far, which for hostile input can be the whole
// body; keep only a bounded prefix.
StatusOr<json> ParseJsonText(std::string_view text, const std::string& what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return InvalidArgument(what + " is not valid JSON (" + Snippet(e.what()) + "); received " +
                           Received(text));
  }
}

// ---------------------------------------------------------------------------------------------
// Flag classification beyond the catalog.

// Kubelet flags that do not set a KubeletConfiguration field (KubeletFlags, container runtime
// options, global flags), from cmd/kubelet/app/options. Value: whether the flag is boolean, which
// decides whether `--flag word` consumes `word`.
const std::map<std::string, bool, std::less<>>& NonConfigFlags() {
  static const auto* flags = new std::map<std::string, bool, std::less<>>{
      {"config", false}, {"config-dir", false}, {"kubeconfig", false},
      {"bootstrap-kubeconfig", false}, {"hostname-override", false}, {"node-ip", false},
      {"cert-dir", false}, {"cloud-provider", false}, {"cloud-config", false},
      {"root-dir", false}, {"node-labels", false}, {"lock-file", false},
      {"exit-on-lock-contention", true}, {"minimum-container-ttl-duration", false},
      {"maximum-dead-containers-per-container", false}, {"maximum-dead-containers", false},
      {"register-schedulable", true}, {"keep-terminated-pod-volumes", true},
      {"experimental-mounter-path", false}, {"experimental-allocatable-ignore-eviction", true},
      {"runtime-cgroups", false}, {"pod-infra-container-image", false},
      {"image-credential-provider-config", false}, {"image-credential-provider-bin-dir", false},
      {"windows-service", true}, {"windows-priorityclass", false}, {"help", true},
      {"version", true},
  };
  return *flags;
}

// Flags that do set a KubeletConfiguration field, but one the catalog does not model (its value
// is structured). Value: the field, for the warning.
const std::map<std::string, std::string, std::less<>>& UnmodeledConfigFlags() {
  static const auto* flags = new std::map<std::string, std::string, std::less<>>{
      {"manifest-url-header", "staticPodURLHeader"},
      {"reserved-memory", "reservedMemory"},
      {"register-with-taints", "registerWithTaints"},
      {"vmodule", "logging.vmodule"},
      {"log-json-info-buffer-size", "logging.options.json.infoBufferSize"},
      {"log-text-info-buffer-size", "logging.options.text.infoBufferSize"},
      {"log-json-split-stream", "logging.options.json.splitStream"},
      {"log-text-split-stream", "logging.options.text.splitStream"},
  };
  return *flags;
}

bool IsUnmodeledBoolFlag(std::string_view name) {
  return name == "log-json-split-stream" || name == "log-text-split-stream";
}

// Flags that older kubelets had and current ones reject (pflag fails on an unknown flag, so such
// a kubelet does not start). Seen in real node images; named so the warning can say why.
const std::set<std::string, std::less<>>& RemovedFlags() {
  static const auto* flags = new std::set<std::string, std::less<>>{
      "container-runtime", "network-plugin", "network-plugin-mtu", "cni-bin-dir", "cni-conf-dir",
      "cni-cache-dir", "docker-endpoint", "experimental-dockershim", "dynamic-config-dir",
      "azure-container-registry-config", "non-masquerade-cidr", "master-service-namespace",
      "image-pull-progress-deadline",
  };
  return *flags;
}

// pflag's normalisation for the kubelet (cliflag.WordSepNormalizeFunc): '_' means '-'.
std::string NormalizeFlagName(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

enum class FlagArity { kBool, kValue, kUnknown };

FlagArity ArityOf(std::string_view name) {
  if (const FieldInfo* f = FindFieldByFlag(name)) {
    return f->type == ValueType::kBool ? FlagArity::kBool : FlagArity::kValue;
  }
  auto it = NonConfigFlags().find(name);
  if (it != NonConfigFlags().end()) return it->second ? FlagArity::kBool : FlagArity::kValue;
  if (UnmodeledConfigFlags().count(name) > 0) {
    return IsUnmodeledBoolFlag(name) ? FlagArity::kBool : FlagArity::kValue;
  }
  return FlagArity::kUnknown;
}

// ---------------------------------------------------------------------------------------------
// Flags files. Text keeps, for every character, the 1-based line it came from, so that flags
// found after line continuations and unquoting still report where they were written.

struct Text {
  std::string s;
  std::vector<int> line;
  void Push(char c, int l) {
    s.push_back(c);
    line.push_back(l);
  }
  bool empty() const { return s.empty(); }
  int LineAt(size_t i) const { return line.empty() ? 0 : line[std::min(i, line.size() - 1)]; }
  Text Sub(size_t pos, size_t n = std::string::npos) const {
    Text t;
    pos = std::min(pos, s.size());
    n = std::min(n, s.size() - pos);
    t.s = s.substr(pos, n);
    t.line.assign(line.begin() + static_cast<std::ptrdiff_t>(pos),
                  line.begin() + static_cast<std::ptrdiff_t>(pos + n));
    return t;
  }
};

enum class FileStyle { kSystemd, kEnvOrPlain };

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

FileStyle DetectStyle(std::string_view content, std::string_view file_name) {
  if (EndsWith(file_name, ".service") || EndsWith(file_name, ".conf")) return FileStyle::kSystemd;
  size_t pos = 0;
  while (pos <= content.size()) {
    size_t nl = content.find('\n', pos);
    std::string_view line = TrimLeft(content.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    if (line.rfind("[Service]", 0) == 0 || line.rfind("[Unit]", 0) == 0 ||
        line.rfind("[Install]", 0) == 0 || line.rfind("ExecStart=", 0) == 0 ||
        line.rfind("Environment=", 0) == 0) {
      return FileStyle::kSystemd;
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return FileStyle::kEnvOrPlain;
}

// Joins physical lines into logical ones: a backslash before the newline continues the line (as
// systemd and sh do), and in env files a quoted value may span lines (sh and systemd's
// EnvironmentFile= allow it; unit file quoting does not). Comment lines are dropped here so that
// an apostrophe in a comment cannot open a quote.
std::vector<Text> LogicalLines(std::string_view content, FileStyle style) {
  std::vector<Text> out;
  Text cur;
  int ln = 1;
  bool in_single = false, in_double = false;
  bool only_space = true;  // nothing but blanks so far on this logical line
  auto flush = [&] {
    out.push_back(std::move(cur));
    cur = Text{};
    only_space = true;
    in_single = in_double = false;
  };
  auto skip_to_eol = [&](size_t& i) {
    while (i < content.size() && content[i] != '\n') ++i;
    --i;  // the loop's ++i lands on the newline, which is handled normally
  };
  for (size_t i = 0; i < content.size(); ++i) {
    char c = content[i];
    if (c == '\r' && i + 1 < content.size() && content[i + 1] == '\n') continue;
    bool quoted = in_single || in_double;
    if (!quoted && only_space && (c == '#' || (style == FileStyle::kSystemd && c == ';'))) {
      skip_to_eol(i);
      continue;
    }
    if (c == '\\') {
      // Continuation wins even inside quotes: systemd joins lines before it looks at quoting
      // (the EKS drop-in continues a single-quoted Environment= value this way).
      size_t next = i + 1;
      if (next < content.size() && content[next] == '\r') ++next;
      if (next < content.size() && content[next] == '\n') {
        cur.Push(' ', ln);
        ++ln;
        i = next;
        continue;
      }
      cur.Push(c, ln);
      if (in_single) continue;  // literal inside '...': the next character is not escaped
      if (i + 1 < content.size() && content[i + 1] != '\n') cur.Push(content[++i], ln);
      only_space = false;
      continue;
    }
    if (c == '\n') {
      bool spans = style == FileStyle::kEnvOrPlain && quoted;
      if (spans) {
        cur.Push('\n', ln);
      } else {
        flush();
      }
      ++ln;
      continue;
    }
    // A quote opens only where a quoted word or value can start, so that an apostrophe inside an
    // unquoted value (team=bob's) cannot swallow the following lines.
    char prev = cur.s.empty() ? ' ' : cur.s.back();
    bool can_open = prev == ' ' || prev == '\t' || prev == '=' || prev == '\n';
    if (c == '\'' && !in_double && (in_single || can_open)) in_single = !in_single;
    if (c == '"' && !in_single && (in_double || can_open)) in_double = !in_double;
    if (c != ' ' && c != '\t') only_space = false;
    cur.Push(c, ln);
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Shell-like word splitting with quote removal: '...' literal, "..." with \" \\ \$ \` escapes,
// backslash outside quotes escapes the next character. With `comments`, an unquoted word that
// starts with '#' ends the line (sh); unit files have no inline comments.
StatusOr<std::vector<Text>> Tokenize(const Text& in, bool comments, std::string_view file_name) {
  std::vector<Text> words;
  Text word;
  bool in_word = false;
  const std::string& s = in.s;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    int l = in.LineAt(i);
    if (IsBlank(c)) {
      if (in_word) words.push_back(std::move(word));
      word = Text{};
      in_word = false;
      continue;
    }
    if (!in_word && comments && c == '#') break;
    in_word = true;
    if (c == '\'') {
      size_t end = s.find('\'', i + 1);
      if (end == std::string::npos) {
        return InvalidArgument(std::string(file_name) + ":" + std::to_string(l) +
                               ": unterminated single quote");
      }
      for (size_t k = i + 1; k < end; ++k) word.Push(s[k], in.LineAt(k));
      i = end;
      continue;
    }
    if (c == '"') {
      size_t k = i + 1;
      bool closed = false;
      for (; k < s.size(); ++k) {
        if (s[k] == '\\' && k + 1 < s.size() &&
            (s[k + 1] == '"' || s[k + 1] == '\\' || s[k + 1] == '$' || s[k + 1] == '`')) {
          word.Push(s[k + 1], in.LineAt(k + 1));
          ++k;
          continue;
        }
        if (s[k] == '"') {
          closed = true;
          break;
        }
        word.Push(s[k], in.LineAt(k));
      }
      if (!closed) {
        return InvalidArgument(std::string(file_name) + ":" + std::to_string(l) +
                               ": unterminated double quote");
      }
      i = k;
      continue;
    }
    if (c == '\\' && i + 1 < s.size()) {
      word.Push(s[i + 1], in.LineAt(i + 1));
      ++i;
      continue;
    }
    word.Push(c, l);
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

// systemd's $VAR expansion in ExecStart= and sh's unquoted $VAR both split a variable's value on
// blanks without further quote removal, so the value of KUBELET_ARGS is split that way.
std::vector<Text> SplitBlanks(const Text& in) {
  std::vector<Text> words;
  size_t i = 0;
  while (i < in.s.size()) {
    while (i < in.s.size() && IsBlank(in.s[i])) ++i;
    size_t start = i;
    while (i < in.s.size() && !IsBlank(in.s[i])) ++i;
    if (i > start) words.push_back(in.Sub(start, i - start));
  }
  return words;
}

bool IsIdentifierStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentifierChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// "NAME=VALUE" with a shell identifier as NAME; returns the position of '=' or npos.
size_t AssignmentEq(const std::string& word) {
  if (word.empty() || !IsIdentifierStart(word[0])) return std::string::npos;
  size_t i = 1;
  while (i < word.size() && IsIdentifierChar(word[i])) ++i;
  return i < word.size() && word[i] == '=' ? i : std::string::npos;
}

void ParseFlagWords(const std::vector<Text>& words, size_t first, std::string_view file_name,
                    std::vector<KubeletFlag>& out) {
  for (size_t i = first; i < words.size(); ++i) {
    const std::string& w = words[i].s;
    if (w.empty() || w[0] == '$') continue;  // an unexpanded variable: its flags live elsewhere
    if (w == "--") break;                    // pflag: everything after is a positional argument
    if (w.size() < 2 || w[0] != '-') continue;
    size_t dashes = w[1] == '-' ? 2 : 1;
    std::string body = w.substr(dashes);
    if (body.empty() || body[0] == '=') continue;  // "--=x": no name (pflag refuses it)
    KubeletFlag flag;
    flag.origin = std::string(file_name) + ":" + std::to_string(words[i].LineAt(0));
    size_t eq = body.find('=');
    flag.name = NormalizeFlagName(body.substr(0, eq));
    if (eq != std::string::npos) {
      flag.value = body.substr(eq + 1);
    } else {
      // pflag takes the next argument as the value of a non-boolean flag whatever it looks like
      // (`--oom-score-adj -999`); a boolean flag never takes one. For flags we do not know, the
      // kubelet takes no positional arguments, so a following non-flag word must be a value.
      FlagArity arity = ArityOf(flag.name);
      bool next_exists = i + 1 < words.size();
      if (next_exists && (arity == FlagArity::kValue ||
                          (arity == FlagArity::kUnknown && !words[i + 1].s.empty() &&
                           words[i + 1].s[0] != '-'))) {
        flag.value = words[++i].s;
      }
    }
    out.push_back(std::move(flag));
  }
}

// A variable assignment from an Environment= line or an env file.
void HandleAssignment(const Text& word, size_t eq, std::string_view file_name,
                      std::vector<KubeletFlag>& out) {
  std::string name = word.s.substr(0, eq);
  if (name.rfind("KUBELET_", 0) != 0) return;
  std::vector<Text> values = SplitBlanks(word.Sub(eq + 1));
  // KUBELET_NODE_LABELS=a=b,c=d and KUBELET_REGISTER_SCHEDULABLE=true hold values, not flags.
  if (values.empty() || values.front().s.empty() || values.front().s[0] != '-') return;
  ParseFlagWords(values, 0, file_name, out);
}

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

Status ParseSystemdLine(const Text& line, std::string_view file_name, std::vector<KubeletFlag>& out) {
  size_t start = 0;
  while (start < line.s.size() && IsBlank(line.s[start])) ++start;
  if (start >= line.s.size() || line.s[start] == '[') return Status::Ok();
  size_t eq = line.s.find('=', start);
  if (eq == std::string::npos) return Status::Ok();
  std::string key = line.s.substr(start, eq - start);
  while (!key.empty() && IsBlank(key.back())) key.pop_back();
  if (key != "Environment" && key != "ExecStart") return Status::Ok();
  auto words = Tokenize(line.Sub(eq + 1), /*comments=*/false, file_name);
  if (!words.ok()) return words.status();
  if (key == "Environment") {
    for (const Text& w : *words) {
      size_t weq = AssignmentEq(w.s);
      if (weq != std::string::npos) HandleAssignment(w, weq, file_name, out);
    }
    return Status::Ok();
  }
  // ExecStart=[-@+!:]/usr/bin/kubelet $KUBELET_ARGS --flag=value ...: skip the program.
  if (words->empty()) return Status::Ok();
  ParseFlagWords(*words, 1, file_name, out);
  return Status::Ok();
}

// An env file line NAME=VALUE. These files are read by systemd's EnvironmentFile= (AKS's
// /etc/default/kubelet has `KUBELET_FLAGS=--a=b --c=d` unquoted, which only systemd accepts) or
// sourced by a shell: a quoted value is unquoted like sh does, an unquoted one runs to the end of
// the line (without a trailing " # comment").
StatusOr<Text> EnvValue(const Text& value, std::string_view file_name) {
  size_t first = 0;
  while (first < value.s.size() && IsBlank(value.s[first])) ++first;
  if (first < value.s.size() && (value.s[first] == '"' || value.s[first] == '\'')) {
    auto words = Tokenize(value, /*comments=*/true, file_name);
    if (!words.ok()) return words.status();
    return words->empty() ? Text{} : words->front();
  }
  size_t end = value.s.size();
  for (size_t i = first; i < value.s.size(); ++i) {
    if (value.s[i] == '#' && (i == 0 || IsBlank(value.s[i - 1]))) {
      end = i;
      break;
    }
  }
  return value.Sub(first, end - first);
}

Status ParseEnvOrPlainLine(const Text& line, std::string_view file_name,
                           std::vector<KubeletFlag>& out) {
  size_t start = 0;
  while (start < line.s.size() && IsBlank(line.s[start])) ++start;
  Text rest = line.Sub(start);
  if (rest.s.rfind("export", 0) == 0 && rest.s.size() > 6 && IsBlank(rest.s[6])) {
    size_t k = 6;
    while (k < rest.s.size() && IsBlank(rest.s[k])) ++k;
    rest = rest.Sub(k);
  }
  if (size_t eq = AssignmentEq(rest.s.substr(0, rest.s.find_first_of(" \t\n"))); eq != std::string::npos) {
    auto value = EnvValue(rest.Sub(eq + 1), file_name);
    if (!value.ok()) return value.status();
    Text assignment = rest.Sub(0, eq + 1);
    assignment.s += value->s;
    assignment.line.insert(assignment.line.end(), value->line.begin(), value->line.end());
    HandleAssignment(assignment, eq, file_name, out);
    return Status::Ok();
  }
  auto words = Tokenize(rest, /*comments=*/true, file_name);
  if (!words.ok()) return words.status();
  const std::vector<Text>& w = *words;
  if (w.empty()) return Status::Ok();
  if (!w[0].s.empty() && w[0].s[0] == '-') {
    ParseFlagWords(w, 0, file_name, out);
  } else if (Basename(w[0].s) == "kubelet") {
    ParseFlagWords(w, 1, file_name, out);  // a command line: kubelet --flag ...
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Typed flag values, parsed the way pflag's Set does.

std::optional<bool> ParseGoBool(std::string_view s) {
  // strconv.ParseBool
  if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
  return std::nullopt;
}

// strconv.ParseInt(s, 0, bits): optional sign, 0x/0o/0b or leading-0 octal prefix, '_' between
// digits when a prefix is present.
std::optional<int64_t> ParseGoInt(std::string_view s, int bits) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  unsigned base = 10;
  if (s.size() > 1 && s[0] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
    size_t skip = 2;
    if (p == 'x') {
      base = 16;
    } else if (p == 'b') {
      base = 2;
    } else if (p == 'o') {
      base = 8;
    } else {
      base = 8;
      skip = 1;
    }
    s.remove_prefix(skip);
    if (s.empty()) return std::nullopt;
  }
  const bool underscores_ok = base != 10;
  const uint64_t limit = uint64_t{1} << (bits - 1);  // |min|; max is limit - 1
  uint64_t magnitude = 0;
  char prev = 0;
  for (char c : s) {
    if (c == '_') {
      if (!underscores_ok || prev == 0 || prev == '_') return std::nullopt;
      prev = c;
      continue;
    }
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    if (magnitude > (limit - d) / base) return std::nullopt;  // would pass |min|
    magnitude = magnitude * base + d;
    prev = c;
  }
  if (prev == 0 || prev == '_') return std::nullopt;
  if (neg) {
    return magnitude == limit ? std::numeric_limits<int64_t>::min() >> (64 - bits)
                              : -static_cast<int64_t>(magnitude);
  }
  if (magnitude > limit - 1) return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

std::optional<double> ParseGoFloat(const std::string& s) {
  if (s.empty() || IsBlank(s.front()) || IsBlank(s.back())) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}

int IntBits(const FieldInfo& f) {
  // int64 in types.go; every other integer field of KubeletConfiguration is int32.
  return (f.path == "podPidsLimit" || f.path == "maxOpenFiles") ? 64 : 32;
}

bool IsZeroValue(const json& v, ValueType t) {
  switch (t) {
    case ValueType::kBool: return v.is_boolean() && !v.get<bool>();
    case ValueType::kInt:
    case ValueType::kFloat: return v.is_number() && v.get<double>() == 0;
    case ValueType::kString:
    case ValueType::kQuantity: return v.is_string() && v.get_ref<const std::string&>().empty();
    case ValueType::kDuration: {
      auto d = DurationFromJson(v);
      return d.has_value() && *d == 0;
    }
    case ValueType::kStringList: return v.is_array() && v.empty();
    case ValueType::kMap:
    case ValueType::kObject: return v.is_object() && v.empty();
    case ValueType::kUnknown: break;
  }
  return false;
}

// What a kubelet's strict decoding would accept for the field; used for warnings only.
bool ShapeMatches(const json& v, const FieldInfo& f) {
  switch (f.type) {
    case ValueType::kBool: return v.is_boolean();
    case ValueType::kInt: return v.is_number_integer();
    case ValueType::kFloat: return v.is_number();
    case ValueType::kString:
    case ValueType::kQuantity: return v.is_string();
    case ValueType::kDuration: return v.is_string() && ParseGoDuration(v.get_ref<const std::string&>());
    case ValueType::kStringList:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
    case ValueType::kMap:
      if (!v.is_object()) return false;
      for (const auto& [k, e] : v.items()) {
        (void)k;
        if (f.element_type == ValueType::kBool ? !e.is_boolean() : !e.is_string()) return false;
      }
      return true;
    case ValueType::kObject: return v.is_object();
    case ValueType::kUnknown: break;
  }
  return true;
}

std::string Canonical(const FieldPath& p) { return p.ToString(); }

FieldPath PathOf(const FieldInfo& f) {
  auto p = FieldPath::Parse(f.path);
  return p.ok() ? *p : FieldPath();
}

void ApplyDefaults(EffectiveConfig& ec, bool legacy) {
  json& cfg = ec.config;
  // Defaults that depend on other fields of the same file (SetDefaults_KubeletConfiguration).
  std::map<std::string, json> computed;
  {
    const json* report = cfg.contains("nodeStatusReportFrequency") ? &cfg["nodeStatusReportFrequency"] : nullptr;
    const json* update = cfg.contains("nodeStatusUpdateFrequency") ? &cfg["nodeStatusUpdateFrequency"] : nullptr;
    bool report_unset = report == nullptr || report->is_null() || IsZeroValue(*report, ValueType::kDuration);
    bool update_set = update != nullptr && !update->is_null() && !IsZeroValue(*update, ValueType::kDuration);
    if (report_unset && update_set) computed["nodeStatusReportFrequency"] = *update;

    const json* parallel = cfg.contains("maxParallelImagePulls") ? &cfg["maxParallelImagePulls"] : nullptr;
    if (parallel != nullptr && parallel->is_number() && parallel->get<double>() >= 2) {
      computed["serializeImagePulls"] = false;
    }
    const json* pids = cfg.contains("podPidsLimit") ? &cfg["podPidsLimit"] : nullptr;
    if (pids != nullptr && pids->is_number() && pids->get<double>() < 0 && *pids != json(-1)) {
      cfg["podPidsLimit"] = -1;  // "default nil or negative value to -1"
      ec.sources["podPidsLimit"] = ValueSource::kDefault;
    }
  }
  for (const FieldInfo& f : KubeletFieldCatalog()) {
    json def = legacy ? f.flag_default : f.file_default;
    if (auto it = computed.find(f.path); it != computed.end()) def = it->second;
    if (def.is_null()) continue;
    FieldPath path = PathOf(f);
    const json* v = path.Find(cfg);
    bool absent = v == nullptr || v->is_null();
    if (!absent && !(f.zero_is_defaulted && IsZeroValue(*v, f.type))) continue;
    // Rules name map entries (evictionHard["memory.available"]), so each defaulted key is
    // attributed too.
    if (def.is_object()) {
      for (const auto& [key, value] : def.items()) {
        (void)value;
        ec.sources[Canonical(path.Child(key))] = ValueSource::kDefault;
      }
    }
    path.Set(cfg, def);
    ec.sources[Canonical(path)] = ValueSource::kDefault;
  }
}

void WarnAboutShapes(const json& file, EffectiveConfig& ec) {
  for (const FieldInfo& f : KubeletFieldCatalog()) {
    const json* v = PathOf(f).Find(file);
    if (v == nullptr || v->is_null() || ShapeMatches(*v, f)) continue;
    ec.warnings.push_back("config file: " + f.path + " is " + Snippet(v->dump(), 80) + ", not a valid " +
                          std::string(ValueTypeName(f.type)) + "; a kubelet would reject this file");
  }
}

std::string FlagLabel(const KubeletFlag& f, const std::string& name) {
  return "--" + name + (f.origin.empty() ? "" : " (" + f.origin + ")");
}

Status BadFlag(const KubeletFlag& f, const std::string& name, const std::string& why) {
  return InvalidArgument("invalid value \"" + Snippet(f.value.value_or(""), 120) + "\" for kubelet flag " +
                         FlagLabel(f, name) + ": " + why);
}

StatusOr<json> ParseScalar(const FieldInfo& field, const KubeletFlag& f, const std::string& name) {
  if (field.type == ValueType::kBool) {
    if (!f.value) return json(true);  // a bare boolean flag means true
    auto b = ParseGoBool(*f.value);
    if (!b) return BadFlag(f, name, "expected a boolean (true, false, 1, 0, t, f)");
    return json(*b);
  }
  if (!f.value) return InvalidArgument("kubelet flag " + FlagLabel(f, name) + " needs a value");
  const std::string& s = *f.value;
  switch (field.type) {
    case ValueType::kInt: {
      auto n = ParseGoInt(s, IntBits(field));
      if (!n) return BadFlag(f, name, "expected an integer (" + std::to_string(IntBits(field)) + "-bit)");
      return json(*n);
    }
    case ValueType::kFloat: {
      auto d = ParseGoFloat(s);
      if (!d) return BadFlag(f, name, "expected a number");
      return json(*d);
    }
    case ValueType::kDuration:
      // Kept as written ("4h"): comparisons are typed, and a message should show what the node says.
      if (!ParseGoDuration(s)) return BadFlag(f, name, "expected a Go duration such as 4h0m0s or 90s");
      return json(s);
    case ValueType::kQuantity:
      if (!ParseQuantity(s)) return BadFlag(f, name, "expected a resource quantity such as 10Mi");
      return json(s);
    default:
      return json(s);
  }
}

// pflag's StringSlice reads its value as one CSV record.
std::vector<std::string> SplitCsv(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty()) {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

std::string TrimSpace(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// The key/value pairs of a map flag. cpu/topology manager policy options are "NoSplit" maps
// (one pair per occurrence, commas belong to the value).
StatusOr<std::vector<std::pair<std::string, json>>> ParseMapFlag(const FieldInfo& field,
                                                                 const KubeletFlag& f,
                                                                 const std::string& name) {
  if (!f.value) return InvalidArgument("kubelet flag " + FlagLabel(f, name) + " needs a value");
  bool no_split = name == "cpu-manager-policy-options" || name == "topology-manager-policy-options";
  std::vector<std::string> items;
  if (no_split) {
    items.push_back(*f.value);
  } else {
    size_t start = 0;
    const std::string& v = *f.value;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      items.push_back(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  std::vector<std::pair<std::string, json>> pairs;
  for (const std::string& item : items) {
    if (item.empty()) continue;
    size_t sep = item.find(field.map_separator);
    if (sep == std::string::npos) {
      return BadFlag(f, name, std::string("malformed pair \"") + Snippet(item, 80) + "\", expected key" +
                                  field.map_separator + "value");
    }
    std::string key = TrimSpace(std::string_view(item).substr(0, sep));
    std::string val = TrimSpace(std::string_view(item).substr(sep + 1));
    if (field.element_type == ValueType::kBool) {
      auto b = ParseGoBool(val);
      if (!b) return BadFlag(f, name, "value of \"" + Snippet(key, 80) + "\" is not a boolean");
      pairs.emplace_back(key, *b);
    } else {
      pairs.emplace_back(key, val);
    }
  }
  return pairs;
}

void Record(EffectiveConfig& ec, const std::string& path, const std::string& origin) {
  ec.sources[path] = ValueSource::kFlag;
  ec.origins[path] = origin;
}

Status ApplyFlags(EffectiveConfig& ec, const std::vector<KubeletFlag>& flags) {
  // pflag's slice and map values drop their previous content on the first Set only; later
  // occurrences of the same flag accumulate.
  std::set<std::string> seen;
  for (const KubeletFlag& f : flags) {
    const std::string name = NormalizeFlagName(f.name);
    const std::string origin = f.origin.empty() ? "flag --" + name : f.origin;
    const FieldInfo* field = FindFieldByFlag(name);
    if (field == nullptr) {
      if (NonConfigFlags().count(name) > 0) continue;
      if (auto it = UnmodeledConfigFlags().find(name); it != UnmodeledConfigFlags().end()) {
        ec.warnings.push_back("kubelet flag --" + name + " (" + origin + ") sets " + it->second +
                              ", which the field catalog does not model; its effect is not shown");
      } else if (RemovedFlags().count(name) > 0) {
        ec.warnings.push_back("kubelet flag --" + name + " (" + origin +
                              ") was removed from the kubelet; a kubelet that does not know a flag "
                              "refuses to start");
      } else {
        ec.warnings.push_back("unknown kubelet flag --" + Snippet(name, 80) + " (" + origin +
                              ") ignored: it is not in the field catalog");
      }
      continue;
    }
    const FieldPath path = PathOf(*field);
    const std::string canonical = Canonical(path);
    switch (field->flag_syntax) {
      case FlagSyntax::kNone:
      case FlagSyntax::kScalar: {
        auto v = ParseScalar(*field, f, name);
        if (!v.ok()) return v.status();
        // --seccomp-default is KubeletFlags.SeccompDefault, ORed with the config field when the
        // kubelet starts (server.go), so =false cannot turn off a file's true.
        if (name == "seccomp-default" && !v->get<bool>()) break;
        path.Set(ec.config, *v);
        Record(ec, canonical, origin);
        break;
      }
      case FlagSyntax::kStringList: {
        if (!f.value) return InvalidArgument("kubelet flag " + FlagLabel(f, name) + " needs a value");
        json list = json::array();
        const json* cur = path.Find(ec.config);
        if (seen.count(name) > 0 && cur != nullptr && cur->is_array()) list = *cur;
        for (auto& item : SplitCsv(*f.value)) list.push_back(std::move(item));
        path.Set(ec.config, std::move(list));
        Record(ec, canonical, origin);
        break;
      }
      case FlagSyntax::kMap: {
        auto pairs = ParseMapFlag(*field, f, name);
        if (!pairs.ok()) return pairs.status();
        const json* cur = path.Find(ec.config);
        json map = json::object();
        // Only feature gates are merged over the file's map: kubeletConfigFlagPrecedence adds
        // back the file's gates that the flags did not set. Any other map flag replaces the map
        // (defaults included), as cliflag's map Set clears it on first use.
        bool merge = field->path == "featureGates" || seen.count(name) > 0;
        if (merge && cur != nullptr && cur->is_object()) {
          map = *cur;
        } else if (cur != nullptr && cur->is_object()) {
          for (const auto& [key, value] : cur->items()) {  // entries the flag drops
            (void)value;
            ec.sources.erase(Canonical(path.Child(key)));
            ec.origins.erase(Canonical(path.Child(key)));
          }
        }
        for (auto& [k, v] : *pairs) map[k] = v;
        path.Set(ec.config, std::move(map));
        if (field->path != "featureGates") Record(ec, canonical, origin);
        for (auto& [k, v] : *pairs) Record(ec, Canonical(path.Child(k)), origin);
        break;
      }
    }
    seen.insert(name);
  }
  return Status::Ok();
}

}  // namespace

std::string_view ValueSourceName(ValueSource s) {
  switch (s) {
    case ValueSource::kConfigz: return "configz";
    case ValueSource::kZeroValue: return "zero-value";
    case ValueSource::kDefault: return "default";
    case ValueSource::kConfigFile: return "config-file";
    case ValueSource::kFlag: return "flag";
    case ValueSource::kRuleDefault: return "rule-default";
  }
  return "unknown";
}

StatusOr<EffectiveConfig> EffectiveConfigFromConfigz(std::string_view body, ShapeLimits limits) {
  // A kubelet's /configz is a few KiB; anything far larger or deeper is not one.
  if (auto refused = CheckJsonShape(body, limits, "the /configz response")) {
    return InvalidArgument(refused->message + "; received " + Received(body));
  }
  auto parsed = ParseJsonText(body, "the /configz response");
  if (!parsed.ok()) return parsed.status();
  json& j = *parsed;
  if (!j.is_object()) {
    return InvalidArgument("the /configz response is " + JsonTypeName(j) +
                           ", expected an object {\"kubeletconfig\": {...}}; received " + Received(body));
  }
  auto it = j.find("kubeletconfig");
  if (it == j.end()) {
    return InvalidArgument("the /configz response has no \"kubeletconfig\" key; received " + Received(body));
  }
  if (!it->is_object()) {
    return InvalidArgument("\"kubeletconfig\" in the /configz response is " + JsonTypeName(*it) +
                           ", expected an object; received " + Received(body));
  }
  EffectiveConfig ec;
  ec.config = std::move(*it);
  ec.live = true;
  return ec;
}

StatusOr<std::vector<KubeletFlag>> ParseKubeletFlags(std::string_view content, std::string_view file_name) {
  FileStyle style = DetectStyle(content, file_name);
  std::vector<KubeletFlag> flags;
  for (const Text& line : LogicalLines(content, style)) {
    Status s = style == FileStyle::kSystemd ? ParseSystemdLine(line, file_name, flags)
                                            : ParseEnvOrPlainLine(line, file_name, flags);
    if (!s.ok()) return s;
  }
  return flags;
}

StatusOr<json> ParseKubeletConfigFile(std::string_view content, std::string_view file_name) {
  const std::string name(file_name);
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return InvalidArgument(name + ": the kubelet config file is empty");
  json cfg;
  YamlDocument doc;
  bool is_yaml = content[first] != '{';
  if (!is_yaml) {
    if (auto refused = CheckJsonShape(content, kKubeletConfigFileLimits, name))
      return RefusalStatus(*refused);
    // JSON is YAML too, but nlohmann's errors point at the byte.
    auto parsed = ParseJsonText(content, name);
    if (!parsed.ok()) return parsed.status();
    cfg = std::move(*parsed);
  } else {
    auto parsed = ParseYamlDocument(content, kKubeletConfigFileLimits);
    if (!parsed.ok()) return InvalidArgument(name + ": " + parsed.status().message());
    doc = std::move(*parsed);
    cfg = doc.value;
  }
  auto where = [&](const std::string& pointer) {
    if (!is_yaml) return name;
    int line = LineOf(doc, pointer);
    return line > 0 ? name + ":" + std::to_string(line) : name;
  };
  if (!cfg.is_object()) {
    return InvalidArgument(where("") + ": a KubeletConfiguration must be an object, got " + JsonTypeName(cfg));
  }
  if (auto kind = cfg.find("kind"); kind != cfg.end()) {
    if (!kind->is_string() || *kind != "KubeletConfiguration") {
      return InvalidArgument(where("/kind") + ": kind is " + Snippet(kind->dump(), 80) +
                             ", expected KubeletConfiguration");
    }
  }
  if (auto api = cfg.find("apiVersion"); api != cfg.end()) {
    if (!api->is_string() || *api != "kubelet.config.k8s.io/v1beta1") {
      return InvalidArgument(where("/apiVersion") + ": apiVersion is " + Snippet(api->dump(), 80) +
                             ", expected kubelet.config.k8s.io/v1beta1");
    }
  }
  return cfg;
}

StatusOr<EffectiveConfig> ComputeEffectiveConfig(const std::optional<json>& config_file,
                                                 const std::vector<KubeletFlag>& flags) {
  EffectiveConfig ec;
  ec.live = false;
  const bool legacy = !config_file.has_value();
  if (config_file) {
    if (!config_file->is_object()) {
      return InvalidArgument("the kubelet config file must be an object, got " + JsonTypeName(*config_file));
    }
    ec.config = *config_file;
    // TypeMeta is not configuration (and /configz does not show it).
    ec.config.erase("kind");
    ec.config.erase("apiVersion");
    WarnAboutShapes(ec.config, ec);
  }
  ApplyDefaults(ec, legacy);
  Status s = ApplyFlags(ec, flags);
  if (!s.ok()) return s;
  return ec;
}

}  // namespace kpc::policy
