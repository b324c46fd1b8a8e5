#include "policy/text_match.h"

#include <algorithm>

namespace kpc::policy {
namespace {

bool LowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool Digit(char c) { return c >= '0' && c <= '9'; }
bool Octal(char c) { return c >= '0' && c <= '7'; }
bool Hex(char c) { return Digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

template <typename Pred>
bool All(std::string_view s, Pred p) {
  return std::all_of(s.begin(), s.end(), p);
}

std::string_view SkipSign(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return s;
}

}  // namespace

bool MatchesDnsLabelShape(std::string_view s) {
  return !s.empty() && LowerAlnum(s.front()) && LowerAlnum(s.back()) &&
         All(s, [](char c) { return LowerAlnum(c) || c == '-'; });
}

bool MatchesDnsSubdomainShape(std::string_view s) {
  while (true) {
    const size_t dot = s.find('.');
    if (!MatchesDnsLabelShape(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

bool MatchesOctalMode(std::string_view s) {
  if (s.size() == 5 && s[0] == '0') s.remove_prefix(1);
  return (s.size() == 3 || s.size() == 4) && All(s, Octal);
}

bool MatchesUserOrGroup(std::string_view s) {
  if (s.empty()) return false;
  if (All(s, Digit)) return true;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  if (s.size() > 1 && s.back() == '$') s.remove_suffix(1);
  return All(s.substr(1), [](char c) { return LowerAlnum(c) || c == '_' || c == '-'; });
}

std::optional<int> MatchPercent(std::string_view s) {
  if (s.size() < 2 || s.size() > 4 || s.back() != '%') return std::nullopt;
  s.remove_suffix(1);
  if (!All(s, Digit)) return std::nullopt;
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

bool MatchesRulePathShape(std::string_view s) {
  auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || Digit(c) || c == '_' || c == '-';
  };
  size_t i = 0;
  auto plain_segment = [&] {
    const size_t start = i;
    while (i < s.size() && plain(s[i])) ++i;
    return i > start;
  };
  if (!plain_segment()) return false;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
      if (!plain_segment()) return false;
      continue;
    }
    if (s[i] != '[' || i + 1 >= s.size() || s[i + 1] != '"') return false;
    i += 2;
    size_t chars = 0;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        if (i + 1 >= s.size() || s[i + 1] == '\n') return false;
        ++i;
      }
      ++i;
      ++chars;
    }
    if (chars == 0 || i + 1 >= s.size() || s[i + 1] != ']') return false;
    i += 2;
  }
  return true;
}

bool MatchesFilePathShape(std::string_view s) {
  return s.size() >= 2 && s[0] == '/' && All(s, [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || Digit(c) || c == '-' ||
                  c == '.' || c == '_' || c == '@' || c == '+' || c == '=' || c == ',' ||
                  c == ':' || c == '/';
         });
}

bool MatchesDurationShape(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && Digit(s[i])) ++i;
    return i > start;
  };
  auto eat = [&](std::string_view unit) {
    if (s.substr(i, unit.size()) != unit) return false;
    i += unit.size();
    return true;
  };
  if (s.empty()) return false;
  while (i < s.size()) {
    if (!digits()) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      if (!digits()) return false;
    }
    // "ms" before "m": an "s" right after "m" can only belong to it (a unit follows digits).
    if (!(eat("ns") || eat("us") || eat("\xC2\xB5s") || eat("ms") || eat("s") || eat("m") ||
          eat("h"))) {
      return false;
    }
  }
  return true;
}

bool MatchesPercentShape(std::string_view s) {
  auto p = MatchPercent(s);
  return p && *p >= 1 && *p <= 100 && s[0] != '0';
}

bool MatchesQualifiedNameShape(std::string_view s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || Digit(c); };
  return !s.empty() && alnum(s.front()) && alnum(s.back()) &&
         All(s, [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

size_t CharCount(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // not a continuation byte
  }));
}

bool MatchesYamlDecimal(std::string_view s) {
  s = SkipSign(s);
  return !s.empty() && Digit(s[0]) && All(s, [](char c) { return Digit(c) || c == '_'; });
}

bool MatchesYamlHex(std::string_view s) {
  s = SkipSign(s);
  if (s.size() < 3 || s[0] != '0' || s[1] != 'x') return false;
  return All(s.substr(2), [](char c) { return Hex(c) || c == '_'; });
}

bool MatchesYamlOctal(std::string_view s) {
  s = SkipSign(s);
  if (s.empty() || s[0] != '0') return false;
  s.remove_prefix(1);
  auto octal_or_underscore = [](char c) { return Octal(c) || c == '_'; };
  // "0o" followed by at least one, or (no "o") at least one more character.
  if (!s.empty() && s[0] == 'o') return s.size() > 1 && All(s.substr(1), octal_or_underscore);
  return !s.empty() && All(s, octal_or_underscore);
}

bool MatchesYamlFloat(std::string_view s) {
  s = SkipSign(s);
  size_t i = 0;
  auto digits = [&](bool underscores) {
    const size_t start = i;
    while (i < s.size() && (Digit(s[i]) || (underscores && s[i] == '_'))) ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '.') {  // \.[0-9]+
    ++i;
    if (digits(false) == 0) return false;
  } else {  // [0-9][0-9_]*(\.[0-9_]*)?
    if (i >= s.size() || !Digit(s[i])) return false;
    digits(true);
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits(true);
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {  // ([eE][-+]?[0-9]+)?
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits(false) == 0) return false;
  }
  return i == s.size();
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // cut short
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace kpc::policy
