#include "agent/config_edit.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "policy/catalog.h"
#include "policy/effective_config.h"
#include "policy/text_match.h"
#include "policy/units.h"

namespace kpc::agent {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;
using policy::FieldPath;
using policy::ValueType;

std::string Quote(std::string_view s) { return json(std::string(s)).dump(); }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

ojson ToOrdered(const json& v) { return ojson::parse(v.dump()); }
json FromOrdered(const ojson& v) { return json::parse(v.dump()); }

// ---------------------------------------------------------------------------------------------
// YAML scalars.

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsDigitOrUnderscore(char c) { return IsDigit(c) || c == '_'; }
bool IsHexOrUnderscore(char c) {
  return IsDigitOrUnderscore(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Advances `i` over the characters `pred` accepts; returns how many.
template <typename Pred>
size_t Skip(std::string_view s, size_t& i, Pred pred) {
  const size_t start = i;
  while (i < s.size() && pred(s[i])) ++i;
  return i - start;
}

// ^[-+]?(\.[0-9]|[0-9])[0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?$
bool MatchesNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') {
    if (i + 1 >= s.size() || !IsDigit(s[i + 1])) return false;
    i += 2;
  } else if (i < s.size() && IsDigit(s[i])) {
    ++i;
  } else {
    return false;
  }
  Skip(s, i, IsDigitOrUnderscore);
  if (i < s.size() && s[i] == '.') {
    ++i;
    Skip(s, i, IsDigitOrUnderscore);
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (Skip(s, i, IsDigit) == 0) return false;
  }
  return i == s.size();
}

// ^[-+]?0[xXoObB][0-9a-fA-F_]+$
bool MatchesRadix(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i + 1 >= s.size() || s[i] != '0' ||
      std::string_view("xXoObB").find(s[i + 1]) == std::string_view::npos) {
    return false;
  }
  i += 2;
  return Skip(s, i, IsHexOrUnderscore) > 0 && i == s.size();
}

// ^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2} as a search: only the start is anchored, anything may follow.
bool StartsWithDate(std::string_view s) {
  size_t i = 0;
  if (Skip(s, i, IsDigit) != 4 || i >= s.size() || s[i] != '-') return false;
  ++i;
  const size_t month = Skip(s, i, IsDigit);
  if (month < 1 || month > 2 || i >= s.size() || s[i] != '-') return false;
  ++i;
  return i < s.size() && IsDigit(s[i]);
}

bool IsSpecialWord(std::string_view s) {
  static constexpr std::string_view kWords[] = {
      "y",    "Y",    "yes",   "Yes",   "YES",   "n",    "N",    "no",   "No",   "NO",  "true",
      "True", "TRUE", "false", "False", "FALSE", "on",   "On",   "ON",   "off",  "Off", "OFF",
      "null", "Null", "NULL",  "~",     ".inf",  ".Inf", ".INF", ".nan", ".NaN", ".NAN"};
  return std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords);
}

}  // namespace

bool LooksSpecialYaml(std::string_view s) {
  // A long value is quoted, which keeps any string a string.
  if (s.size() > 128) return true;
  return MatchesNumber(s) || MatchesRadix(s) || StartsWithDate(s) || IsSpecialWord(s);
}

namespace {

// Plain (unquoted) only for a conservative character set that no YAML version reads as anything
// but a string.
bool SafePlain(const std::string& s) {
  if (s.empty()) return false;
  unsigned char first = static_cast<unsigned char>(s[0]);
  if (!std::isalnum(first) && first != '/' && first != '_') return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '_' && c != '.' && c != '/' && c != '-' && c != '%' && c != '+') {
      return false;
    }
  }
  return !LooksSpecialYaml(s);
}

std::string FormatYamlKey(const std::string& k) { return SafePlain(k) ? k : Quote(k); }

// ---------------------------------------------------------------------------------------------
// Block YAML emission (new keys, and the full re-emit fallback).

void EmitValue(const std::string& key_text, const ojson& v, int indent, int unit,
               std::vector<std::string>& out);

void EmitMembers(const ojson& obj, int indent, int unit, std::vector<std::string>& out) {
  for (const auto& [k, v] : obj.items()) EmitValue(FormatYamlKey(k), v, indent, unit, out);
}

std::string Scalar(const ojson& v) {
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return FormatYamlScalar(FromOrdered(v));
}

void EmitValue(const std::string& key_text, const ojson& v, int indent, int unit,
               std::vector<std::string>& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object() && !v.empty()) {
    out.push_back(pad + key_text + ":");
    EmitMembers(v, indent + unit, unit, out);
    return;
  }
  if (v.is_array() && !v.empty()) {
    out.push_back(pad + key_text + ":");
    const std::string item_pad(static_cast<size_t>(indent + unit), ' ');
    for (const ojson& e : v) {
      // Nested collections inside lists are rare in a KubeletConfiguration: flow style (JSON).
      out.push_back(item_pad + "- " + (e.is_structured() && !e.empty() ? e.dump() : Scalar(e)));
    }
    return;
  }
  out.push_back(pad + key_text + ": " + Scalar(v));
}

std::string EmitDocument(const ojson& root, int unit, const std::string& nl) {
  std::vector<std::string> lines;
  EmitMembers(root, 0, unit, lines);
  std::string out;
  for (const auto& l : lines) out += l + nl;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ordered trees.

// The typed tree `typed` (from the project's YAML reader) in the key order of the document.
ojson Reorder(const json& typed, const YAML::Node& node) {
  if (typed.is_object()) {
    ojson out = ojson::object();
    if (node && node.IsMap()) {
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) continue;
        const std::string& key = kv.first.Scalar();
        auto it = typed.find(key);
        if (it != typed.end() && !out.contains(key)) out[key] = Reorder(*it, kv.second);
      }
    }
    for (const auto& [k, v] : typed.items()) {
      if (!out.contains(k)) out[k] = Reorder(v, YAML::Node());
    }
    return out;
  }
  if (typed.is_array()) {
    ojson out = ojson::array();
    for (size_t i = 0; i < typed.size(); ++i) {
      YAML::Node child;
      if (node && node.IsSequence() && i < node.size()) child = node[i];
      out.push_back(Reorder(typed[i], child));
    }
    return out;
  }
  return ToOrdered(typed);
}

ojson OrderedFromYaml(std::string_view content, const json& typed) {
  try {
    YAML::Node node = YAML::Load(std::string(content));
    return Reorder(typed, node);
  } catch (const std::exception&) {
    return ToOrdered(typed);
  }
}

void OrderedSet(ojson& root, const std::vector<std::string>& segs, const json& value) {
  ojson* cur = &root;
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    if (!cur->is_object()) *cur = ojson::object();
    cur = &(*cur)[segs[i]];
  }
  if (!cur->is_object()) *cur = ojson::object();
  (*cur)[segs.back()] = ToOrdered(value);
}

// ---------------------------------------------------------------------------------------------
// The targeted YAML editor.

struct Lines {
  std::vector<std::string> body;  // without the line terminator
  std::vector<std::string> eol;   // "\n", "\r\n" or "" (last line without one)
  std::string nl = "\n";

  static Lines Split(std::string_view text) {
    Lines l;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t n = text.find('\n', pos);
      if (n == std::string_view::npos) {
        l.body.emplace_back(text.substr(pos));
        l.eol.emplace_back("");
        break;
      }
      std::string_view line = text.substr(pos, n - pos);
      if (!line.empty() && line.back() == '\r') {
        l.body.emplace_back(line.substr(0, line.size() - 1));
        l.eol.emplace_back("\r\n");
        l.nl = "\r\n";
      } else {
        l.body.emplace_back(line);
        l.eol.emplace_back("\n");
      }
      pos = n + 1;
    }
    return l;
  }
  std::string Join() const {
    std::string out;
    for (size_t i = 0; i < body.size(); ++i) out += body[i] + eol[i];
    return out;
  }
  size_t size() const { return body.size(); }
  void Insert(size_t at, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    if (at > 0 && at == body.size() && eol[at - 1].empty()) {
      // Appending after a last line without a newline: that line gets one, the file keeps
      // ending without one.
      eol[at - 1] = nl;
      body.insert(body.end(), lines.begin(), lines.end());
      for (size_t i = 0; i < lines.size(); ++i) eol.push_back(i + 1 == lines.size() ? "" : nl);
      return;
    }
    body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), lines.begin(), lines.end());
    eol.insert(eol.begin() + static_cast<std::ptrdiff_t>(at), lines.size(), nl);
  }
  void Erase(size_t from, size_t to) {  // [from, to)
    if (from >= to) return;
    bool last_had_no_eol = to == body.size() && eol.back().empty();
    body.erase(body.begin() + static_cast<std::ptrdiff_t>(from),
               body.begin() + static_cast<std::ptrdiff_t>(to));
    eol.erase(eol.begin() + static_cast<std::ptrdiff_t>(from),
              eol.begin() + static_cast<std::ptrdiff_t>(to));
    if (last_had_no_eol && !eol.empty()) eol.back() = "";
  }
};

// -1 for a blank or comment-only line.
int IndentOf(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  if (i == line.size() || line[i] == '#') return -1;
  if (line[i] == '\t') {
    size_t j = i;
    while (j < line.size() && (line[j] == '\t' || line[j] == ' ')) ++j;
    if (j == line.size() || line[j] == '#') return -1;
  }
  return static_cast<int>(i);
}

bool IsSeqItem(const std::string& line, int indent) {
  size_t i = static_cast<size_t>(indent);
  return i < line.size() && line[i] == '-' && (i + 1 == line.size() || line[i + 1] == ' ');
}

struct KeyValue {
  std::string key;
  size_t colon = 0;        // index of ':' in the line
  size_t value_begin = 0;  // first byte of the value (== value_end when empty)
  size_t value_end = 0;    // one past the value; a trailing comment follows
  bool ok = false;
};

// A key and the index of the ':' after it.
struct Key {
  std::string text;
  size_t colon = 0;
};

// A quoted key ('...' or "..." without escapes) at `i`; nullopt when not a simple key.
std::optional<Key> ParseQuotedKey(const std::string& line, size_t i) {
  const char c = line[i];
  size_t j = i + 1;
  std::string key;
  bool closed = false;
  while (j < line.size()) {
    if (c == '"' && line[j] == '\\') return std::nullopt;  // escapes in keys: not worth the risk
    if (line[j] == c) {
      if (c == '\'' && j + 1 < line.size() && line[j + 1] == '\'') {
        key += '\'';
        j += 2;
        continue;
      }
      closed = true;
      break;
    }
    key += line[j++];
  }
  if (!closed) return std::nullopt;
  ++j;
  while (j < line.size() && line[j] == ' ') ++j;
  if (j >= line.size() || line[j] != ':') return std::nullopt;
  return Key{key, j};
}

// A plain key at `i`; nullopt for indicators that start something else (complex keys,
// sequences, flow collections, anchors, aliases, tags, block scalars, ...).
std::optional<Key> ParsePlainKey(const std::string& line, size_t i) {
  const char c = line[i];
  if (c == '?' || c == '-' || c == '[' || c == '{' || c == '&' || c == '*' || c == '!' ||
      c == '|' || c == '>' || c == '%' || c == '@' || c == '`') {
    return std::nullopt;
  }
  size_t j = i;
  while (j < line.size()) {
    if (line[j] == ':' && (j + 1 == line.size() || line[j + 1] == ' ')) break;
    if (line[j] == '#' && j > i && line[j - 1] == ' ') return std::nullopt;
    ++j;
  }
  if (j >= line.size()) return std::nullopt;
  std::string key = line.substr(i, j - i);
  while (!key.empty() && key.back() == ' ') key.pop_back();
  return Key{key, j};
}

// One past the quoted scalar at `v`; nullopt when it goes on past the line.
std::optional<size_t> QuotedValueEnd(const std::string& line, size_t v) {
  const char q = line[v];
  size_t j = v + 1;
  while (j < line.size()) {
    if (q == '"' && line[j] == '\\') {
      j += 2;
      continue;
    }
    if (line[j] == q) {
      if (q == '\'' && j + 1 < line.size() && line[j + 1] == '\'') {
        j += 2;
        continue;
      }
      return j + 1;
    }
    ++j;
  }
  return std::nullopt;
}

// One past the flow collection at `v`; nullopt when it goes on past the line.
std::optional<size_t> FlowValueEnd(const std::string& line, size_t v) {
  int depth = 0;
  size_t j = v;
  char in_quote = 0;
  for (; j < line.size(); ++j) {
    char ch = line[j];
    if (in_quote) {
      if (ch == in_quote) in_quote = 0;
      continue;
    }
    if (ch == '"' || ch == '\'') in_quote = ch;
    if (ch == '{' || ch == '[') ++depth;
    if (ch == '}' || ch == ']') {
      if (--depth == 0) break;
    }
  }
  if (depth != 0 || j >= line.size()) return std::nullopt;
  return j + 1;
}

// Parses "  key: value  # comment" (indent already known). ok=false when not a simple
// mapping entry.
KeyValue ParseKeyLine(const std::string& line, int indent) {
  KeyValue kv;
  size_t i = static_cast<size_t>(indent);
  if (i >= line.size()) return kv;
  const bool quoted_key = line[i] == '"' || line[i] == '\'';
  std::optional<Key> key = quoted_key ? ParseQuotedKey(line, i) : ParsePlainKey(line, i);
  if (!key) return kv;
  kv.key = key->text;
  kv.colon = key->colon;
  size_t v = kv.colon + 1;
  while (v < line.size() && line[v] == ' ') ++v;
  kv.value_begin = v;
  kv.value_end = v;
  if (v >= line.size() || line[v] == '#') {
    kv.ok = true;
    return kv;
  }
  const char q = line[v];
  if (q == '"' || q == '\'' || q == '{' || q == '[') {
    auto end = q == '"' || q == '\'' ? QuotedValueEnd(line, v) : FlowValueEnd(line, v);
    if (!end) return kv;  // a quoted scalar or flow collection spanning lines
    kv.value_end = *end;
  } else {
    size_t j = v;
    while (j < line.size() && !(line[j] == '#' && line[j - 1] == ' ')) ++j;
    while (j > v && line[j - 1] == ' ') --j;
    kv.value_end = j;
  }
  kv.ok = true;
  return kv;
}

// Constructs that a line-level edit cannot be sure about.
std::optional<std::string> UnsafeForLineEdit(const Lines& doc) {
  bool content_seen = false;
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::string& l = doc.body[i];
    if (l.rfind("---", 0) == 0 || l.rfind("...", 0) == 0) {
      if (content_seen) return "several YAML documents";
      continue;
    }
    if (l.rfind("%", 0) == 0) continue;  // a directive
    int ind = IndentOf(l);
    if (ind < 0) continue;
    if (l[static_cast<size_t>(ind)] == '\t' || l.find('\t') < static_cast<size_t>(ind))
      return "tabs in indentation";
    if (!content_seen) {
      content_seen = true;
      char c = l[static_cast<size_t>(ind)];
      if (c == '{' || c == '[') return "flow style";
      if (IsSeqItem(l, ind)) return "a top-level list";
    }
    std::string_view rest(l);
    rest.remove_prefix(static_cast<size_t>(ind));
    if (rest.rfind("? ", 0) == 0 || rest == "?") return "complex keys";
    if (rest.rfind("<<:", 0) == 0 || rest.find("<<:") != std::string_view::npos)
      return "merge keys";
    for (const char* marker : {": &", ": *", ": !", "- &", "- *", "- !"}) {
      if (rest.find(marker) != std::string_view::npos) return "anchors, aliases or tags";
    }
    if (rest[0] == '&' || rest[0] == '*' || rest[0] == '!') return "anchors, aliases or tags";
  }
  return std::nullopt;
}

class YamlEditor {
 public:
  YamlEditor(Lines doc, const json& original) : doc_(std::move(doc)), original_(original) {
    unit_ = DetectUnit();
  }

  // false: the structure is not what a line edit can handle (caller falls back).
  bool Set(const std::vector<std::string>& segs, const json& value) {
    size_t from = FirstBodyLine();
    size_t to = doc_.size();
    int parent_indent = -1;
    size_t parent_line = from;  // only meaningful once parent_indent >= 0
    for (size_t i = 0; i < segs.size(); ++i) {
      int ci = ChildIndent(from, to, parent_indent);
      std::vector<std::string> rest(segs.begin() + static_cast<std::ptrdiff_t>(i), segs.end());
      if (ci < 0) {
        int indent = parent_indent < 0 ? 0 : parent_indent + unit_;
        size_t at = parent_indent < 0 ? LastContent(from, to) + 1 : parent_line + 1;
        if (parent_indent < 0 && LastContent(from, to) == kNone) at = to;
        doc_.Insert(at, EmitNested(rest, value, indent));
        return true;
      }
      // The entries at this level must form a mapping.
      size_t found = kNone;
      bool seen_key = false;
      for (size_t l = from; l < to; ++l) {
        if (IndentOf(doc_.body[l]) != ci) continue;
        if (IsSeqItem(doc_.body[l], ci)) {
          if (!seen_key) return false;  // a list, not a mapping
          continue;                     // items of the previous key's list ("key:\n- a")
        }
        seen_key = true;
        KeyValue kv = ParseKeyLine(doc_.body[l], ci);
        if (!kv.ok) return false;
        if (kv.key == segs[i]) {
          found = l;
          break;
        }
      }
      if (found == kNone) {
        doc_.Insert(LastContent(from, to) + 1, EmitNested(rest, value, ci));
        return true;
      }
      KeyValue kv = ParseKeyLine(doc_.body[found], ci);
      size_t end = BlockEnd(found, ci, to);
      if (i + 1 == segs.size()) return Replace(found, kv, end, ToOrdered(value), ci);
      std::string_view inline_value =
          std::string_view(doc_.body[found]).substr(kv.value_begin, kv.value_end - kv.value_begin);
      if (inline_value.empty()) {
        from = found + 1;
        to = end;
        parent_indent = ci;
        parent_line = found;
        continue;
      }
      // An inline value on the way (`featureGates: {}`, a scalar, a flow mapping): the value of
      // this key is rewritten in block style.
      json sub = json::object();
      FieldPath prefix(std::vector<std::string>(segs.begin(),
                                                segs.begin() + static_cast<std::ptrdiff_t>(i) + 1));
      if (const json* cur = prefix.Find(original_); cur != nullptr && cur->is_object()) sub = *cur;
      FieldPath(
          std::vector<std::string>(segs.begin() + static_cast<std::ptrdiff_t>(i) + 1, segs.end()))
          .Set(sub, value);
      if (inline_value != "{}") {
        note_ = "the value of " + FieldPath(prefix).ToString() + " was rewritten in block style";
      }
      return Replace(found, kv, end, ToOrdered(sub), ci);
    }
    return false;
  }

  std::string Text() const { return doc_.Join(); }
  const std::string& note() const { return note_; }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);

  size_t FirstBodyLine() const {
    for (size_t i = 0; i < doc_.size(); ++i) {
      const std::string& l = doc_.body[i];
      if (l.rfind("---", 0) == 0) return i + 1;
      if (IndentOf(l) >= 0 && l.rfind("%", 0) != 0) return 0;
    }
    return 0;
  }

  int DetectUnit() const {
    int best = 0;
    int prev = -1;
    for (const std::string& l : doc_.body) {
      int ind = IndentOf(l);
      if (ind < 0) continue;
      if (prev >= 0 && ind > prev && (best == 0 || ind - prev < best)) best = ind - prev;
      prev = ind;
    }
    return best > 0 ? best : 2;
  }

  int ChildIndent(size_t from, size_t to, int parent_indent) const {
    for (size_t l = from; l < to; ++l) {
      int ind = IndentOf(doc_.body[l]);
      if (ind > parent_indent) return ind;
    }
    return -1;
  }

  size_t LastContent(size_t from, size_t to) const {
    size_t last = kNone;
    for (size_t l = from; l < to; ++l) {
      if (IndentOf(doc_.body[l]) >= 0) last = l;
    }
    return last;
  }

  // One past the last line of the entry at `line` (its continuation, nested block or list).
  size_t BlockEnd(size_t line, int indent, size_t to) const {
    for (size_t l = line + 1; l < to; ++l) {
      int ind = IndentOf(doc_.body[l]);
      if (ind < 0) continue;
      if (ind < indent || (ind == indent && !IsSeqItem(doc_.body[l], ind))) return l;
    }
    return to;
  }

  std::vector<std::string> EmitNested(const std::vector<std::string>& segs, const json& value,
                                      int indent) const {
    std::vector<std::string> out;
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      out.push_back(std::string(static_cast<size_t>(indent), ' ') + FormatYamlKey(segs[i]) + ":");
      indent += unit_;
    }
    EmitValue(FormatYamlKey(segs.back()), ToOrdered(value), indent, unit_, out);
    return out;
  }

  // Replaces the value of the entry at `line` (which ends before `end`).
  bool Replace(size_t line, const KeyValue& kv, size_t end, const ojson& value, int indent) {
    std::string& l = doc_.body[line];
    const std::string comment = l.substr(kv.value_end);  // "  # ..." or ""
    size_t last = LastContent(line + 1, end);
    std::vector<std::string> block;
    std::string head = l.substr(0, kv.colon + 1);
    std::string c = comment;
    if (!c.empty() && c[0] != ' ') c = " " + c;
    if (value.is_structured() && !value.empty()) {
      std::vector<std::string> emitted;
      EmitValue("k", value, indent, unit_, emitted);
      block.assign(emitted.begin() + 1, emitted.end());
      l = head + c;
    } else {
      l = head + " " + Scalar(value) + c;
    }
    if (last != kNone) doc_.Erase(line + 1, last + 1);
    doc_.Insert(line + 1, block);
    return true;
  }

  Lines doc_;
  const json& original_;
  int unit_ = 2;
  std::string note_;
};

std::string DetectJsonIndent(std::string_view content, int& width) {
  size_t nl = content.find('\n');
  width = -1;
  while (nl != std::string_view::npos) {
    size_t start = nl + 1;
    size_t i = start;
    while (i < content.size() && (content[i] == ' ' || content[i] == '\t')) ++i;
    if (i < content.size() && content[i] != '\n' && content[i] != '\r') {
      width = static_cast<int>(i - start);
      return width > 0 && content[start] == '\t' ? "\t" : " ";
    }
    nl = content.find('\n', start);
  }
  return " ";
}

// ---------------------------------------------------------------------------------------------
// The targeted JSON editor: the spans of every object member, so that one value can be replaced
// or one member inserted without touching any other byte.

struct JsonSpan {
  size_t begin = 0, end = 0;  // the value's bytes [begin, end)
  bool is_object = false;
  struct Member {
    std::string key;
    size_t key_begin = 0;
    std::unique_ptr<JsonSpan> value;
  };
  std::vector<Member> members;  // objects only, in text order
};

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text) : t_(text) {}
  // nullptr when the text is not what the scanner expects (the caller falls back).
  std::unique_ptr<JsonSpan> Scan() {
    auto v = Value(0);
    if (v == nullptr) return nullptr;
    Ws();
    return i_ == t_.size() ? std::move(v) : nullptr;
  }

 private:
  void Ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  bool String() {
    if (i_ >= t_.size() || t_[i_] != '"') return false;
    for (++i_; i_ < t_.size(); ++i_) {
      if (t_[i_] == '\\') {
        ++i_;
      } else if (t_[i_] == '"') {
        ++i_;
        return true;
      }
    }
    return false;
  }
  std::unique_ptr<JsonSpan> Value(int depth) {
    if (depth > 200) return nullptr;
    Ws();
    auto v = std::make_unique<JsonSpan>();
    v->begin = i_;
    if (i_ >= t_.size()) return nullptr;
    char c = t_[i_];
    if (c == '{') {
      v->is_object = true;
      ++i_;
      Ws();
      if (i_ < t_.size() && t_[i_] == '}') {
        ++i_;
      } else {
        for (;;) {
          Ws();
          JsonSpan::Member m;
          m.key_begin = i_;
          if (!String()) return nullptr;
          try {
            m.key = json::parse(t_.substr(m.key_begin, i_ - m.key_begin)).get<std::string>();
          } catch (const std::exception&) {
            return nullptr;
          }
          Ws();
          if (i_ >= t_.size() || t_[i_] != ':') return nullptr;
          ++i_;
          m.value = Value(depth + 1);
          if (m.value == nullptr) return nullptr;
          v->members.push_back(std::move(m));
          Ws();
          if (i_ < t_.size() && t_[i_] == ',') {
            ++i_;
            continue;
          }
          if (i_ < t_.size() && t_[i_] == '}') {
            ++i_;
            break;
          }
          return nullptr;
        }
      }
    } else if (c == '[') {
      ++i_;
      Ws();
      if (i_ < t_.size() && t_[i_] == ']') {
        ++i_;
      } else {
        for (;;) {
          if (Value(depth + 1) == nullptr) return nullptr;
          Ws();
          if (i_ < t_.size() && t_[i_] == ',') {
            ++i_;
            continue;
          }
          if (i_ < t_.size() && t_[i_] == ']') {
            ++i_;
            break;
          }
          return nullptr;
        }
      }
    } else if (c == '"') {
      if (!String()) return nullptr;
    } else {
      while (i_ < t_.size() &&
             std::string_view(",}] \t\r\n").find(t_[i_]) == std::string_view::npos)
        ++i_;
      if (i_ == v->begin) return nullptr;
    }
    v->end = i_;
    return v;
  }

  std::string_view t_;
  size_t i_ = 0;
};

// The whitespace that starts the line holding `pos`.
std::string LineIndent(std::string_view text, size_t pos) {
  size_t nl = text.rfind('\n', pos == 0 ? 0 : pos - 1);
  size_t start = nl == std::string_view::npos ? 0 : nl + 1;
  size_t i = start;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  return std::string(text.substr(start, i - start));
}

// `v` serialised in the file's style, its continuation lines indented by `indent`.
std::string JsonValueText(const ojson& v, int width, char ch, const std::string& indent) {
  std::string out = width < 0 ? v.dump() : v.dump(width, ch);
  std::string shifted;
  for (char c : out) {
    shifted += c;
    if (c == '\n') shifted += indent;
  }
  return shifted;
}

std::optional<std::string> TargetedJsonEdit(std::string_view content,
                                            const std::vector<std::string>& segs, const json& value,
                                            int width, char ch) {
  auto root = JsonScanner(content).Scan();
  if (root == nullptr || !root->is_object) return std::nullopt;
  const JsonSpan* node = root.get();
  std::string text(content);
  for (size_t i = 0; i < segs.size(); ++i) {
    const JsonSpan::Member* found = nullptr;
    for (const auto& m : node->members) {
      if (m.key == segs[i]) found = &m;  // the last duplicate wins, as when parsing
    }
    if (found != nullptr && i + 1 < segs.size()) {
      if (!found->value->is_object) return std::nullopt;
      node = found->value.get();
      continue;
    }
    if (found != nullptr) {  // replace the value
      std::string indent = LineIndent(content, found->key_begin);
      text.replace(found->value->begin, found->value->end - found->value->begin,
                   JsonValueText(ToOrdered(value), width, ch, indent));
      return text;
    }
    // Insert the member segs[i] (with nested objects for the rest) into `node`.
    json member_value = value;
    for (size_t k = segs.size() - 1; k > i; --k) member_value = json{{segs[k], member_value}};
    const std::string key = Quote(segs[i]);
    if (!node->members.empty()) {
      const auto& last = node->members.back();
      // Copy the separator in front of the last member: ",\n    " or ", ".
      size_t prev_end = node->members.size() > 1
                            ? node->members[node->members.size() - 2].value->end
                            : node->begin + 1;
      std::string sep(content.substr(prev_end, last.key_begin - prev_end));
      if (!sep.empty() && sep[0] == ',') sep.erase(0, 1);
      // After '{' of a one-line object there is often nothing; members are then set apart by
      // a blank, as a pretty-printer would.
      if (node->members.size() == 1 && sep.find('\n') == std::string::npos) sep = " ";
      std::string indent = LineIndent(content, last.key_begin);
      std::string colon(content.substr(last.key_begin, last.value->begin - last.key_begin));
      colon = colon.substr(colon.find('"', 1) + 1);  // ": " or ":" as the file writes it
      text.insert(last.value->end, "," + sep + key + colon +
                                       JsonValueText(ToOrdered(member_value), width, ch, indent));
      return text;
    }
    // An empty object: write it out with the member.
    std::string indent = LineIndent(content, node->begin);
    ojson obj = ojson::object();
    obj[segs[i]] = ToOrdered(member_value);
    text.replace(node->begin, node->end - node->begin, JsonValueText(obj, width, ch, indent));
    return text;
  }
  return std::nullopt;
}

StatusOr<ConfigEdit> SetJson(std::string_view content, std::string_view file_name,
                             const json& typed, const FieldPath& path, const json& value) {
  ConfigEdit e;
  json expect = typed;
  path.Set(expect, value);
  int width = -1;
  std::string ch = DetectJsonIndent(content, width);
  if (auto text = TargetedJsonEdit(content, path.segments(), value, width, ch[0])) {
    auto check = policy::ParseKubeletConfigFile(*text, file_name);
    if (check.ok() && *check == expect) {
      e.text = std::move(*text);
      e.changed = true;
      return e;
    }
  }
  ojson doc;
  try {
    doc = ojson::parse(content.begin(), content.end());
  } catch (const std::exception&) {
    return InvalidArgument(std::string(file_name) + ": not valid JSON");
  }
  OrderedSet(doc, path.segments(), value);
  std::string text = width < 0 ? doc.dump() : doc.dump(width, ch[0]);
  if (!content.empty() && content.back() == '\n') text += '\n';
  auto check = policy::ParseKubeletConfigFile(text, file_name);
  if (!check.ok() || *check != expect)
    return Internal(std::string(file_name) + ": the edited JSON did not verify");
  e.text = std::move(text);
  e.changed = true;
  e.note = "file re-serialised: its formatting was not kept";
  return e;
}

}  // namespace

std::string FormatYamlScalar(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      return SafePlain(s) ? s : Quote(s);
    }
    case json::value_t::object:
    case json::value_t::array:
      return v.dump();  // flow style; JSON is YAML
    default:
      return v.dump();
  }
}

ConfigFormat DetectConfigFormat(std::string_view content, std::string_view file_name) {
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos)
    return content[first] == '{' ? ConfigFormat::kJson : ConfigFormat::kYaml;
  return EndsWith(file_name, ".json") ? ConfigFormat::kJson : ConfigFormat::kYaml;
}

std::string NewConfigFileContent(ConfigFormat format) {
  if (format == ConfigFormat::kJson) {
    return "{\n  \"apiVersion\": \"kubelet.config.k8s.io/v1beta1\",\n  \"kind\": "
           "\"KubeletConfiguration\"\n}\n";
  }
  return "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
}

bool TypedEqual(const json& a, const json& b, ValueType type) {
  switch (type) {
    case ValueType::kDuration: {
      auto x = policy::DurationFromJson(a), y = policy::DurationFromJson(b);
      return x && y ? *x == *y : a == b;
    }
    case ValueType::kQuantity: {
      auto x = policy::QuantityFromJson(a), y = policy::QuantityFromJson(b);
      return x && y ? *x == *y : a == b;
    }
    case ValueType::kInt:
    case ValueType::kFloat:
      if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
      return a == b;
    default:
      return a == b;
  }
}

ValueType TypeOfPath(const FieldPath& path) {
  auto m = policy::LookupField(path);
  return m ? m->type : ValueType::kUnknown;
}

namespace {

StatusOr<json> TypeAs(ValueType type, const std::optional<json>& parsed, std::string_view raw,
                      const std::string& what) {
  const std::string text(raw);
  auto fail = [&](const std::string& want) {
    return InvalidArgument(what + " is " + want + "; got \"" + text + "\"");
  };
  switch (type) {
    case ValueType::kBool: {
      if (parsed && parsed->is_boolean()) return *parsed;
      std::string s = parsed && parsed->is_string() ? parsed->get<std::string>() : text;
      if (s == "true" || s == "True" || s == "TRUE") return json(true);
      if (s == "false" || s == "False" || s == "FALSE") return json(false);
      return fail("a boolean (true or false)");
    }
    case ValueType::kInt: {
      if (parsed && parsed->is_number_integer()) return *parsed;
      if (parsed && parsed->is_number_float()) {
        double d = parsed->get<double>();
        // In range before the cast (converting 1e21 to int64_t is undefined behaviour).
        if (d >= -0x1p63 && d < 0x1p63 && d == std::trunc(d)) return json(static_cast<int64_t>(d));
      }
      if (parsed && parsed->is_string()) {
        try {
          json n = json::parse(parsed->get<std::string>());
          if (n.is_number_integer()) return n;
        } catch (const std::exception&) {
        }
      }
      return fail("an integer");
    }
    case ValueType::kFloat:
      if (parsed && parsed->is_number()) return *parsed;
      return fail("a number");
    case ValueType::kDuration: {
      json v = parsed ? *parsed : json(text);
      auto ns = policy::DurationFromJson(v);
      if (!ns) return fail("a Go duration such as 4h0m0s or 90s");
      return json(policy::FormatGoDuration(*ns));
    }
    case ValueType::kQuantity: {
      std::string s = parsed && parsed->is_string() ? parsed->get<std::string>() : text;
      if (!policy::ParseQuantity(s)) return fail("a resource quantity such as 100Mi");
      return json(s);
    }
    case ValueType::kString:
      if (parsed && parsed->is_string()) return *parsed;
      return json(text);  // literal, whatever it looks like
    case ValueType::kStringList: {
      if (parsed && parsed->is_array()) {
        for (const json& e : *parsed) {
          if (!e.is_string()) return fail("a list of strings");
        }
        return *parsed;
      }
      std::string s = parsed && parsed->is_string() ? parsed->get<std::string>() : text;
      json list = json::array();
      size_t start = 0;
      while (!s.empty() && start <= s.size()) {
        size_t comma = s.find(',', start);
        list.push_back(
            s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      return list;
    }
    case ValueType::kMap:
    case ValueType::kObject:
      if (parsed && parsed->is_object()) return *parsed;
      return fail("an object (JSON, e.g. {\"key\": \"value\"})");
    case ValueType::kUnknown:
      break;
  }
  return parsed ? *parsed : json(text);
}

}  // namespace

StatusOr<json> TypeSetValue(const FieldPath& path, std::string_view raw) {
  // Values become JSON strings, which must be UTF-8 (dump() throws on anything else).
  if (!policy::IsValidUtf8(raw)) return InvalidArgument(path.ToString() + ": not UTF-8 text");
  std::optional<json> parsed;
  try {
    parsed = json::parse(raw.begin(), raw.end());
  } catch (const std::exception&) {
  }
  auto m = policy::LookupField(path);
  const std::string what = path.ToString();
  if (!m) return parsed ? *parsed : json(std::string(raw));
  auto v = TypeAs(m->type, parsed, raw, what);
  if (!v.ok()) return v.status();
  if (m->type == ValueType::kMap && !m->map_key) {
    json typed = json::object();
    for (const auto& [k, e] : v->items()) {
      std::string text = e.is_string() ? e.get<std::string>() : e.dump();
      auto t = TypeAs(m->field->element_type, e, text, what + "." + k);
      if (!t.ok()) return t.status();
      typed[k] = *t;
    }
    return typed;
  }
  return v;
}

StatusOr<ConfigEdit> SetConfigField(std::string_view content, std::string_view file_name,
                                    const FieldPath& path, const json& value, ValueType type) {
  if (path.empty()) return InvalidArgument("empty field path");
  auto typed = policy::ParseKubeletConfigFile(content, file_name);
  if (!typed.ok()) return typed.status();
  ConfigEdit e;
  if (const json* cur = path.Find(*typed); cur != nullptr) {
    e.from = *cur;
    if (TypedEqual(*cur, value, type)) {
      e.text = std::string(content);
      return e;
    }
  }
  if (DetectConfigFormat(content, file_name) == ConfigFormat::kJson) {
    auto j = SetJson(content, file_name, *typed, path, value);
    if (!j.ok()) return j.status();
    j->from = e.from;
    return j;
  }
  json expect = *typed;
  path.Set(expect, value);
  Lines doc = Lines::Split(content);
  std::optional<std::string> unsafe = UnsafeForLineEdit(doc);
  if (!unsafe) {
    YamlEditor editor(doc, *typed);
    if (editor.Set(path.segments(), value)) {
      std::string text = editor.Text();
      auto check = policy::ParseKubeletConfigFile(text, file_name);
      if (check.ok() && *check == expect) {
        e.text = std::move(text);
        e.changed = true;
        e.note = editor.note();
        return e;
      }
    }
    unsafe = "a structure the line editor does not handle";
  }
  // Full re-emit, in the document's key order.
  ojson ordered = OrderedFromYaml(content, *typed);
  OrderedSet(ordered, path.segments(), value);
  std::string text = EmitDocument(ordered, 2, doc.nl);
  auto check = policy::ParseKubeletConfigFile(text, file_name);
  if (!check.ok() || *check != expect) {
    return Internal(std::string(file_name) + ": could not set " + path.ToString() +
                    " without changing other fields; edit the file by hand");
  }
  e.text = std::move(text);
  e.changed = true;
  e.note = "file rewritten in full (" + *unsafe + "): comments and formatting were not kept";
  return e;
}

}  // namespace kpc::agent
