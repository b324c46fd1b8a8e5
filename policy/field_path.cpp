#include "policy/field_path.h"

#include <cctype>

#include "policy/limits.h"

namespace kpc::policy {
namespace {

// Segments made of these characters need no brackets.
bool IsPlainSegment(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '/')) {
      return false;
    }
  }
  return true;
}

std::string Quote(const std::string& s) {
  std::string out = "[\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += "\"]";
  return out;
}

}  // namespace

StatusOr<FieldPath> FieldPath::Parse(std::string_view text) {
  auto err = [&](size_t pos, const std::string& what) {
    return InvalidArgument("invalid field path " + Quoted(text, 128) + " at character " +
                           std::to_string(pos + 1) + ": " + what);
  };
  if (text.empty()) return InvalidArgument("invalid field path: empty");
  std::vector<std::string> segments;
  size_t i = 0;
  bool expect_segment = true;  // at start or after '.'
  while (i < text.size()) {
    char c = text[i];
    if (c == '[') {
      // ["quoted segment"]
      if (i + 1 >= text.size() || text[i + 1] != '"') {
        return err(i, "expected [\"...\"] (a bracketed segment must be a double-quoted string)");
      }
      std::string seg;
      size_t j = i + 2;
      bool closed = false;
      while (j < text.size()) {
        if (text[j] == '\\' && j + 1 < text.size()) {
          seg += text[j + 1];
          j += 2;
          continue;
        }
        if (text[j] == '"') {
          closed = true;
          break;
        }
        seg += text[j++];
      }
      if (!closed) return err(i, "unterminated quoted segment");
      if (j + 1 >= text.size() || text[j + 1] != ']') return err(j, "expected ] after quoted segment");
      if (seg.empty()) return err(i, "empty segment");
      segments.push_back(std::move(seg));
      i = j + 2;
      expect_segment = false;
      if (i < text.size()) {
        if (text[i] == '.') {
          ++i;
          expect_segment = true;
          if (i >= text.size()) return err(i - 1, "path ends with '.'");
        } else if (text[i] != '[') {
          return err(i, "expected '.' or '[' after ]");
        }
      }
      continue;
    }
    if (!expect_segment) return err(i, "expected '.' or '['");
    std::string seg;
    while (i < text.size() && text[i] != '.' && text[i] != '[') {
      char d = text[i];
      if (d == ']' || d == '"' || std::isspace(static_cast<unsigned char>(d))) {
        return err(i, std::string("unexpected character '") + d + "'");
      }
      seg += d;
      ++i;
    }
    if (seg.empty()) return err(i, "empty segment");
    segments.push_back(std::move(seg));
    expect_segment = false;
    if (i < text.size() && text[i] == '.') {
      ++i;
      expect_segment = true;
      if (i >= text.size()) return err(i - 1, "path ends with '.'");
    }
  }
  return FieldPath(std::move(segments));
}

std::string FieldPath::ToString() const {
  std::string out;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const auto& s = segments_[i];
    if (IsPlainSegment(s)) {
      if (i > 0) out += '.';
      out += s;
    } else {
      out += Quote(s);
    }
  }
  return out;
}

FieldPath FieldPath::Prefix(size_t n) const {
  n = std::min(n, segments_.size());
  return FieldPath(std::vector<std::string>(segments_.begin(), segments_.begin() + n));
}

FieldPath FieldPath::Child(std::string segment) const {
  auto s = segments_;
  s.push_back(std::move(segment));
  return FieldPath(std::move(s));
}

const nlohmann::json* FieldPath::Find(const nlohmann::json& root) const {
  const nlohmann::json* cur = &root;
  for (const auto& s : segments_) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(s);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void FieldPath::Set(nlohmann::json& root, nlohmann::json value) const {
  if (segments_.empty()) {
    root = std::move(value);
    return;
  }
  nlohmann::json* cur = &root;
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {
    if (!cur->is_object()) *cur = nlohmann::json::object();
    cur = &(*cur)[segments_[i]];
  }
  if (!cur->is_object()) *cur = nlohmann::json::object();
  (*cur)[segments_.back()] = std::move(value);
}

bool FieldPath::Erase(nlohmann::json& root) const {
  if (segments_.empty()) return false;
  nlohmann::json* parent = const_cast<nlohmann::json*>(Prefix(segments_.size() - 1).Find(root));
  if (parent == nullptr || !parent->is_object()) return false;
  return parent->erase(segments_.back()) > 0;
}

}  // namespace kpc::policy
