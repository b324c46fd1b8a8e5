#include "policy/limits.h"

#include <vector>

namespace kpc::policy {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Whether a byte can stand outside strings in some JSON document: structure, whitespace,
// numbers and the letters of true, false and null.
bool MayBeJson(char c) {
  switch (c) {
    case '{':
    case '}':
    case '[':
    case ']':
    case ':':
    case ',':
    case '"':
    case ' ':
    case '\t':
    case '\n':
    case '\r':
    case '-':
    case '+':
    case '.':
    case 'e':
    case 'E':
    case 't':
    case 'r':
    case 'u':
    case 'f':
    case 'a':
    case 'l':
    case 's':
    case 'n':
      return true;
    default:
      return c >= '0' && c <= '9';
  }
}
bool IsFlowIndicator(char c) { return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'; }

std::optional<Refusal> CheckSize(std::string_view text, size_t max_bytes, std::string_view what) {
  if (text.size() <= max_bytes) return std::nullopt;
  return Refusal{InputLimit::kBytes, std::string(what) + " is " + std::to_string(text.size()) +
                                         " bytes, over the " + FormatByteSize(max_bytes) +
                                         " limit"};
}

Refusal TooDeep(std::string_view what, size_t max_depth, const std::string& where) {
  return {InputLimit::kDepth, std::string(what) + " nests deeper than " +
                                  std::to_string(max_depth) + " levels (" + where + ")"};
}

// An upper bound of a YAML stream's nesting depth (see limits.h): one pass, each byte looked
// at a bounded number of times. Block collections are tracked by the indentation of the lines
// (and of compact "- " / "? " entries) that open them; flow collections by their brackets.
class YamlDepthScanner {
 public:
  YamlDepthScanner(std::string_view text, size_t max_depth) : t_(text), max_(max_depth) {}

  // The 1-based line where the bound first passes max_depth; 0 when it never does.
  size_t Run() {
    while (i_ < t_.size() && failed_line_ == 0) ScanLine();
    return failed_line_;
  }

 private:
  char At(size_t i) const { return i < t_.size() ? t_[i] : '\n'; }
  bool AtLineEnd() const { return i_ >= t_.size() || t_[i_] == '\n'; }
  size_t Column() const { return i_ - line_begin_; }
  void Check() {
    if (block_.size() + flow_ > max_ && failed_line_ == 0) failed_line_ = line_;
  }
  void NextLine() {
    if (i_ < t_.size()) ++i_;  // the '\n'
    ++line_;
    line_begin_ = i_;
  }
  void SkipToLineEnd() {
    while (!AtLineEnd()) ++i_;
  }

  void ScanLine() {
    line_begin_ = i_;
    while (i_ < t_.size() && t_[i_] == ' ') ++i_;
    const size_t indent = Column();
    while (i_ < t_.size() && IsBlank(t_[i_])) ++i_;
    if (AtLineEnd() || t_[i_] == '#') {  // blank or comment-only lines carry no structure
      SkipToLineEnd();
      NextLine();
      return;
    }
    if (flow_ == 0 && in_block_scalar_) {
      if (indent > block_scalar_indent_) {  // block scalar content: text, not structure
        SkipToLineEnd();
        NextLine();
        return;
      }
      in_block_scalar_ = false;
    }
    if (indent == 0 && (t_.substr(i_, 3) == "---" || t_.substr(i_, 3) == "...") &&
        (AtLineEnd() || IsBlank(At(i_ + 3)) || At(i_ + 3) == '\n')) {
      block_.clear();  // a new document
      flow_ = 0;
      i_ += 3;
    } else if (flow_ == 0) {
      if (t_[i_] == '%' && indent == 0) {  // a directive
        SkipToLineEnd();
        NextLine();
        return;
      }
      while (!block_.empty() && block_.back() >= indent) block_.pop_back();
      // A collection at this indentation, if the line turns out to hold a key or an entry.
      pending_indent_ = indent;
    }
    ScanTokens();
    pending_indent_.reset();
    NextLine();
  }

  // The line holds a block key or entry: its indentation opens a collection (unless one is open
  // there already).
  void OpenPending() {
    if (!pending_indent_) return;
    if (block_.empty() || *pending_indent_ > block_.back()) {
      block_.push_back(*pending_indent_);
      Check();
    }
    pending_indent_.reset();
  }

  // The tokens of one line (a quoted scalar may run on over more lines).
  void ScanTokens() {
    bool first = true;
    while (failed_line_ == 0) {
      while (!AtLineEnd() && IsBlank(t_[i_])) ++i_;
      if (AtLineEnd()) return;
      const char c = t_[i_];
      const bool starts_line = first;
      first = false;
      if (c == '#') {
        SkipToLineEnd();
        return;
      }
      if (c == '[' || c == '{') {
        ++flow_;
        ++i_;
        Check();
      } else if (c == ']' || c == '}') {
        if (flow_ > 0) --flow_;
        ++i_;
      } else if (c == ',' && flow_ > 0) {
        ++i_;
      } else if (c == '\'' || c == '"') {
        ScanQuoted(c);
      } else if ((c == '-' || c == '?' || c == ':') &&
                 (IsBlank(At(i_ + 1)) || At(i_ + 1) == '\n' ||
                  (flow_ > 0 && IsFlowIndicator(At(i_ + 1))))) {
        ++i_;
        if (flow_ == 0) OpenPending();
        // "- - x", "- key: v", "? - x": a block collection that opens on the same line.
        if (flow_ == 0 && (c != ':' || starts_line)) {
          while (!AtLineEnd() && IsBlank(t_[i_])) ++i_;
          if (!AtLineEnd() && t_[i_] != '#' && (block_.empty() || Column() > block_.back())) {
            block_.push_back(Column());
            Check();
          }
          first = true;
        }
      } else if ((c == '|' || c == '>') && flow_ == 0) {
        // A block scalar: its content lines are those indented more than the collection
        // it belongs to.
        in_block_scalar_ = true;
        block_scalar_indent_ = block_.empty() ? 0 : block_.back();
        SkipToLineEnd();
        return;
      } else if (c == '&' || c == '!' || c == '*') {  // anchor, tag, alias
        while (!AtLineEnd() && !IsBlank(t_[i_]) && !(flow_ > 0 && IsFlowIndicator(t_[i_]))) ++i_;
      } else {
        ScanPlain();
      }
    }
  }

  // 'single' ('' is a quote) or "double" (backslash escapes); may span lines.
  void ScanQuoted(char quote) {
    ++i_;
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '\n') {
        NextLine();
        continue;
      }
      if (quote == '"' && c == '\\') {
        ++i_;
        if (i_ < t_.size() && t_[i_] == '\n') {
          NextLine();
        } else if (i_ < t_.size()) {
          ++i_;
        }
        continue;
      }
      ++i_;
      if (c == quote) {
        if (quote == '\'' && i_ < t_.size() && t_[i_] == '\'') {
          ++i_;
          continue;
        }
        return;
      }
    }
  }

  // A plain scalar up to the end of the line, a comment, ": " or (in flow) a flow indicator.
  void ScanPlain() {
    ++i_;
    while (!AtLineEnd()) {
      const char c = t_[i_];
      if (c == ':' && (IsBlank(At(i_ + 1)) || At(i_ + 1) == '\n' ||
                       (flow_ > 0 && IsFlowIndicator(At(i_ + 1))))) {
        return;
      }
      if (c == '#' && IsBlank(t_[i_ - 1])) return;
      if (flow_ > 0 && IsFlowIndicator(c)) return;
      ++i_;
    }
  }

  const std::string_view t_;
  const size_t max_;
  size_t i_ = 0;
  size_t line_ = 1;
  size_t line_begin_ = 0;
  std::vector<size_t> block_;             // indentation of the open block collections
  std::optional<size_t> pending_indent_;  // this line's, until it shows a key or an entry
  size_t flow_ = 0;                       // open flow collections
  bool in_block_scalar_ = false;
  size_t block_scalar_indent_ = 0;
  size_t failed_line_ = 0;
};

void AppendEscaped(std::string& out, std::string_view text) {
  static const char* kHex = "0123456789abcdef";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
}

// The first `max` bytes of `text`, not splitting a UTF-8 sequence.
std::string_view Prefix(std::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

}  // namespace

std::string_view InputLimitName(InputLimit limit) {
  return limit == InputLimit::kDepth ? "depth" : "bytes";
}

Status RefusalStatus(const Refusal& refusal) { return InvalidArgument(refusal.message); }

std::optional<Refusal> CheckJsonShape(std::string_view text, ShapeLimits limits,
                                      std::string_view what) {
  if (auto r = CheckSize(text, limits.max_bytes, what)) return r;
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  // nlohmann's parser skips a UTF-8 byte order mark at the start: so must the scan, or the
  // mark would end it and let any nesting through.
  const size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  for (size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (!MayBeJson(c)) {
      // Not JSON: nlohmann's parser (which does not recurse) refuses it at this byte, before
      // anything past it could nest, so the rest needs no scan.
      return std::nullopt;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth)
        return TooDeep(what, limits.max_depth, "at byte " + std::to_string(i + 1));
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

std::optional<Refusal> CheckYamlShape(std::string_view text, ShapeLimits limits,
                                      std::string_view what) {
  if (auto r = CheckSize(text, limits.max_bytes, what)) return r;
  const size_t line = YamlDepthScanner(text, limits.max_depth).Run();
  if (line == 0) return std::nullopt;
  return TooDeep(what, limits.max_depth, "at line " + std::to_string(line));
}

bool NestsDeeperThan(const nlohmann::json& value, size_t max_depth) {
  std::vector<const nlohmann::json*> level;
  if (value.is_structured()) level.push_back(&value);
  for (size_t depth = 1; !level.empty(); ++depth) {
    if (depth > max_depth) return true;
    std::vector<const nlohmann::json*> next;
    for (const auto* v : level) {
      for (const auto& child : *v) {
        if (child.is_structured()) next.push_back(&child);
      }
    }
    level.swap(next);
  }
  return false;
}

std::string Shortened(std::string_view text, size_t max) {
  std::string out;
  const std::string_view head = Prefix(text, max);
  AppendEscaped(out, head);
  if (head.size() < text.size()) out += "… (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string Quoted(std::string_view text, size_t max) {
  std::string out = "\"";
  const std::string_view head = Prefix(text, max);
  AppendEscaped(out, head);
  if (head.size() < text.size()) {
    out += "…\" (" + std::to_string(text.size()) + " bytes)";
  } else {
    out += '"';
  }
  return out;
}

std::string FormatByteSize(size_t bytes) {
  constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

}  // namespace kpc::policy
