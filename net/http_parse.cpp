#include "net/http_parse.h"

#include <cctype>

namespace kpc::net {
namespace {

Refusal Malformed(std::string message) {
  return {400, RefusalReason::kMalformed, std::move(message) + "\n"};
}

// RFC 9110 5.6.2: token characters.
bool IsTchar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

// Field values: visible ASCII, space, tab and obs-text; no other control character (a bare
// CR or LF inside a line lands here).
bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Up to 64 characters of peer-supplied text for a message (already free of control characters).
std::string Quote(std::string_view s) {
  return "\"" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...\"" : "\"");
}

struct Field {
  std::string_view name;
  std::string_view value;
};

// `name: value` (RFC 9112 5): no whitespace before the colon, no obsolete line folding.
std::variant<Field, Refusal> ParseField(std::string_view line) {
  if (!line.empty() && IsOws(line.front()))
    return Malformed("obsolete line folding is not accepted");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Malformed("a header field without a colon");
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Malformed("a header field name that is not a token");
  const std::string_view value = TrimOws(line.substr(colon + 1));
  if (!IsFieldValue(value)) return Malformed("a control character in header field " + Quote(name));
  return Field{name, value};
}

// "HTTP/1.1" -> 1, "HTTP/1.0" -> 0; other versions are refused.
std::variant<int, Refusal> ParseVersion(std::string_view v) {
  if (v == "HTTP/1.1") return 1;
  if (v == "HTTP/1.0") return 0;
  if (v.size() == 8 && v.substr(0, 5) == "HTTP/" &&
      std::isdigit(static_cast<unsigned char>(v[5])) && v[6] == '.' &&
      std::isdigit(static_cast<unsigned char>(v[7]))) {
    return Refusal{505, RefusalReason::kHttpVersion, "only HTTP/1.0 and HTTP/1.1 are served\n"};
  }
  return Malformed("not an HTTP/1.x request line");
}

// method SP origin-form SP HTTP-version, single spaces.
std::optional<Refusal> ParseRequestLine(std::string_view line, RequestHead* out) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Malformed("not an HTTP/1.x request line");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Malformed("not an HTTP/1.x request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = ParseVersion(line.substr(sp2 + 1));
  if (auto* r = std::get_if<Refusal>(&version)) return *r;
  if (!IsToken(method)) return Malformed("the method is not a token");
  if (target.empty() || target.front() != '/') return Malformed("the request target is not a path");
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f)
      return Malformed("the request target has a character that must be percent-encoded");
  }
  out->method = std::string(method);
  const size_t q = target.find('?');
  out->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) out->query = std::string(target.substr(q + 1));
  out->minor_version = std::get<int>(version);
  return std::nullopt;
}

}  // namespace

HeadScanner::Result HeadScanner::Scan(std::string_view buffered) {
  for (;;) {
    const size_t nl = buffered.find('\n', scanned_);
    if (nl == std::string_view::npos) {
      scanned_ = buffered.size();
      size_t partial = buffered.size() - line_start_;
      if (partial > 0 && buffered.back() == '\r') --partial;  // its LF may be next
      if (lines_ == 0 && partial > limits_.max_request_line_bytes) {
        return Refusal{414, RefusalReason::kUriTooLong,
                       "the request line is over " +
                           std::to_string(limits_.max_request_line_bytes) + " bytes\n"};
      }
      if (lines_ > 0 && partial > limits_.max_header_line_bytes) {
        return Refusal{
            431, RefusalReason::kHeaderTooLarge,
            "a header line is over " + std::to_string(limits_.max_header_line_bytes) + " bytes\n"};
      }
      if (buffered.size() > limits_.max_head_bytes) {
        return Refusal{
            431, RefusalReason::kHeaderTooLarge,
            "the request head is over " + std::to_string(limits_.max_head_bytes) + " bytes\n"};
      }
      return NeedMore{};
    }
    if (nl == line_start_ || buffered[nl - 1] != '\r')
      return Malformed("a line ends with a bare LF");
    const size_t len = nl - 1 - line_start_;
    if (lines_ == 0 && len > limits_.max_request_line_bytes) {
      return Refusal{414, RefusalReason::kUriTooLong,
                     "the request line is over " + std::to_string(limits_.max_request_line_bytes) +
                         " bytes\n"};
    }
    if (lines_ > 0 && len > limits_.max_header_line_bytes) {
      return Refusal{
          431, RefusalReason::kHeaderTooLarge,
          "a header line is over " + std::to_string(limits_.max_header_line_bytes) + " bytes\n"};
    }
    if (nl + 1 > limits_.max_head_bytes) {
      return Refusal{
          431, RefusalReason::kHeaderTooLarge,
          "the request head is over " + std::to_string(limits_.max_head_bytes) + " bytes\n"};
    }
    if (len == 0) {
      if (lines_ == 0) return Malformed("an empty request line");
      return Complete{nl + 1};
    }
    if (lines_ > limits_.max_header_count) {  // this line is field number lines_
      return Refusal{431, RefusalReason::kHeaderTooLarge,
                     "more than " + std::to_string(limits_.max_header_count) + " header fields\n"};
    }
    ++lines_;
    line_start_ = scanned_ = nl + 1;
  }
}

std::variant<RequestHead, Refusal> ParseRequestHead(std::string_view head,
                                                    const HeadLimits& limits) {
  RequestHead out;
  size_t pos = head.find("\r\n");
  if (pos == std::string_view::npos) return Malformed("an incomplete request head");
  if (auto r = ParseRequestLine(head.substr(0, pos), &out)) return *r;
  pos += 2;
  size_t fields = 0;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) return Malformed("an incomplete request head");
    const std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;
    if (++fields > limits.max_header_count) {
      return Refusal{431, RefusalReason::kHeaderTooLarge,
                     "more than " + std::to_string(limits.max_header_count) + " header fields\n"};
    }
    auto field = ParseField(line);
    if (auto* r = std::get_if<Refusal>(&field)) return *r;
    const auto& f = std::get<Field>(field);
    std::string name = Lower(f.name);
    auto [it, inserted] = out.headers.emplace(name, std::string(f.value));
    if (inserted) continue;
    // Two lengths disagree, or agree today and differ behind the next proxy: refuse both.
    if (name == "content-length") return Malformed("Content-Length is given more than once");
    it->second += ", ";
    it->second += f.value;
  }
  return out;
}

bool WantsKeepAlive(const RequestHead& head) {
  bool close = false, keep_alive = false;
  if (auto it = head.headers.find("connection"); it != head.headers.end()) {
    std::string_view rest = it->second;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string option = Lower(TrimOws(rest.substr(0, comma)));
      close |= option == "close";
      keep_alive |= option == "keep-alive";
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return head.minor_version == 1 ? !close : keep_alive && !close;
}

std::variant<BodyFraming, Refusal> DecideBodyFraming(const RequestHead& head, size_t max_body) {
  const auto te = head.headers.find("transfer-encoding");
  const auto cl = head.headers.find("content-length");
  if (te != head.headers.end()) {
    // RFC 9112 6.1: with both, a peer and a proxy may disagree on where the body ends.
    if (cl != head.headers.end())
      return Malformed("both Content-Length and Transfer-Encoding are given");
    if (head.minor_version == 0) return Malformed("Transfer-Encoding in an HTTP/1.0 request");
    std::string_view rest = te->second;
    size_t chunked = 0;
    for (;;) {
      const size_t comma = rest.find(',');
      const std::string coding = Lower(TrimOws(rest.substr(0, comma)));
      if (coding.empty()) return Malformed("an empty transfer coding");
      if (coding != "chunked") {
        return Refusal{501, RefusalReason::kTransferEncoding,
                       "transfer coding " + Quote(coding) + " is not supported (only chunked)\n"};
      }
      ++chunked;
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    if (chunked > 1) return Malformed("chunked is applied more than once");
    return BodyFraming{BodyFraming::kChunked, 0};
  }
  if (cl == head.headers.end()) return BodyFraming{};
  const std::string& v = cl->second;
  // 18 digits stay below 2^63: no overflow below.
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) {
    return Malformed("a malformed Content-Length");
  }
  uint64_t n = 0;
  for (char c : v) n = n * 10 + static_cast<uint64_t>(c - '0');
  if (n > max_body) {
    return Refusal{413, RefusalReason::kBodyTooLarge,
                   "request body too large: the limit is " + std::to_string(max_body) + " bytes\n"};
  }
  if (n == 0) return BodyFraming{};
  return BodyFraming{BodyFraming::kLength, n};
}

std::variant<uint64_t, Refusal> ParseChunkSizeLine(std::string_view line) {
  if (line.size() > kMaxChunkLineBytes) return Malformed("a chunk-size line is too long");
  size_t digits = 0;
  uint64_t size = 0;
  while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
    if (digits == kMaxChunkSizeDigits) return Malformed("a chunk size has too many digits");
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[digits])));
    size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    ++digits;
  }
  if (digits == 0) return Malformed("a chunk size is not hexadecimal");
  std::string_view rest = line.substr(digits);
  if (rest.empty()) return size;
  while (!rest.empty() && IsOws(rest.front())) rest.remove_prefix(1);
  if (rest.empty() || rest.front() != ';') return Malformed("a chunk size is not hexadecimal");
  if (!IsFieldValue(rest)) return Malformed("a control character in a chunk extension");
  return size;
}

std::optional<Refusal> CheckTrailerLine(std::string_view line) {
  auto field = ParseField(line);
  if (auto* r = std::get_if<Refusal>(&field)) return *r;
  return std::nullopt;
}

}  // namespace kpc::net
