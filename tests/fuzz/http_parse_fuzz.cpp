// Fuzz target: the server's HTTP/1.1 request parsing (net/http_parse.h).
// Properties: no crash or sanitizer report on any bytes; HeadScanner fed the buffer as it
// grows (pieces as the choice bytes say) decides like one scan of all of it (complete at the
// same byte, or refused); every refusal is
// one line ending in "\n" with a 4xx/5xx status; a parsed head has a token method, lower-case
// field names and a path that starts with '/' (or is "*"); a Content-Length body is within
// the cap; a chunk-size line that parses is 1-16 hex digits whose value it returns.
// Input: request bytes [NUL choices: limits, body cap, piece sizes]. After the head, the
// rest is read as CRLF-separated chunk-size and trailer lines.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "net/http_parse.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using kpc::net::BodyFraming;
using kpc::net::HeadLimits;
using kpc::net::HeadScanner;
using kpc::net::Refusal;
using kpc::net::RequestHead;

void CheckRefusal(const Refusal& r) {
  FUZZ_CHECK(r.status >= 400 && r.status <= 599, r.message);
  FUZZ_CHECK(!r.message.empty() && r.message.back() == '\n' &&
                 r.message.find('\n') == r.message.size() - 1,
             r.message);
  FUZZ_CHECK(r.message.find('\r') == std::string::npos, r.message);
}

std::string Describe(const HeadScanner::Result& r) {
  if (std::holds_alternative<HeadScanner::NeedMore>(r)) return "need more";
  if (auto* c = std::get_if<HeadScanner::Complete>(&r))
    return "complete at " + std::to_string(c->head_bytes);
  const Refusal& f = std::get<Refusal>(r);
  return "refused " + std::to_string(f.status) + " " + f.message;
}

// The same decision. Not necessarily the same refusal: a line over its limit that also ends in
// a bare LF is refused for its length when read in pieces, and for the LF when it arrived
// whole (the scanner looks at complete lines first); either way the request is refused.
bool Same(const HeadScanner::Result& a, const HeadScanner::Result& b) {
  if (a.index() != b.index()) return false;
  if (auto* c = std::get_if<HeadScanner::Complete>(&a))
    return c->head_bytes == std::get<HeadScanner::Complete>(b).head_bytes;
  return true;
}

void CheckHead(const RequestHead& h, size_t max_body) {
  FUZZ_CHECK(!h.method.empty(), "empty method");
  for (unsigned char c : h.method) FUZZ_CHECK(c > 0x20 && c < 0x7f, h.method);
  FUZZ_CHECK(h.path == "*" || (!h.path.empty() && h.path[0] == '/'), h.path);
  FUZZ_CHECK(h.minor_version == 0 || h.minor_version == 1, std::to_string(h.minor_version));
  for (const auto& [name, value] : h.headers) {
    FUZZ_CHECK(!name.empty(), "empty field name");
    for (unsigned char c : name) FUZZ_CHECK(!std::isupper(c) && c > 0x20 && c < 0x7f, name);
    for (unsigned char c : value) FUZZ_CHECK(c >= 0x20 || c == '\t', name + ": " + value);
  }
  (void)kpc::net::WantsKeepAlive(h);
  auto framing = kpc::net::DecideBodyFraming(h, max_body);
  if (auto* r = std::get_if<Refusal>(&framing)) {
    CheckRefusal(*r);
  } else {
    const BodyFraming& f = std::get<BodyFraming>(framing);
    if (f.kind == BodyFraming::kLength) FUZZ_CHECK(f.length <= max_body, std::to_string(f.length));
  }
}

void CheckChunkLine(std::string_view line) {
  auto size = kpc::net::ParseChunkSizeLine(line);
  if (auto* r = std::get_if<Refusal>(&size)) {
    CheckRefusal(*r);
    return;
  }
  size_t digits = 0;
  uint64_t value = 0;
  while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
    const char c = line[digits++];
    value = value * 16 + (std::isdigit(static_cast<unsigned char>(c))
                              ? c - '0'
                              : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
  }
  FUZZ_CHECK(digits >= 1 && digits <= kpc::net::kMaxChunkSizeDigits, std::string(line));
  FUZZ_CHECK(std::get<uint64_t>(size) == value, std::string(line));
  FUZZ_CHECK(line.size() <= kpc::net::kMaxChunkLineBytes, std::to_string(line.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  HeadLimits limits;
  if (in.Byte() % 2 == 1) limits = HeadLimits{64, 48, 4, 160};  // small: reach every limit
  static constexpr size_t kCaps[] = {0, 10, 1u << 20, SIZE_MAX};
  const size_t max_body = kCaps[in.Byte() % 4];
  const std::string_view sizes = in.RestOfChoices();
  const std::string_view bytes = in.text();

  const HeadScanner::Result whole = HeadScanner(limits).Scan(bytes);
  HeadScanner scanner(limits);
  HeadScanner::Result grown = HeadScanner::NeedMore{};
  size_t end = 0, k = 0;
  while (std::holds_alternative<HeadScanner::NeedMore>(grown) && end < bytes.size()) {
    end += sizes.empty() ? 1 : static_cast<uint8_t>(sizes[k++ % sizes.size()]) % 32 + 1;
    end = std::min(end, bytes.size());
    grown = scanner.Scan(bytes.substr(0, end));
  }
  FUZZ_CHECK(Same(whole, grown),
             "one scan: " + Describe(whole) + "\ngrowing buffer: " + Describe(grown));
  if (auto* r = std::get_if<Refusal>(&whole)) CheckRefusal(*r);

  std::string_view rest = bytes;
  if (auto* c = std::get_if<HeadScanner::Complete>(&whole)) {
    FUZZ_CHECK(c->head_bytes >= 4 && c->head_bytes <= bytes.size() &&
                   bytes.substr(c->head_bytes - 4, 4) == "\r\n\r\n",
               Describe(whole));
    auto head = kpc::net::ParseRequestHead(bytes.substr(0, c->head_bytes), limits);
    if (auto* r = std::get_if<Refusal>(&head)) {
      CheckRefusal(*r);
    } else {
      CheckHead(std::get<RequestHead>(head), max_body);
    }
    rest = bytes.substr(c->head_bytes);
  }
  // Chunk-size and trailer lines.
  for (int lines = 0; !rest.empty() && lines < 64; ++lines) {
    size_t crlf = rest.find("\r\n");
    std::string_view line = rest.substr(0, crlf);
    CheckChunkLine(line);
    if (auto r = kpc::net::CheckTrailerLine(line)) CheckRefusal(*r);
    rest = crlf == std::string_view::npos ? std::string_view() : rest.substr(crlf + 2);
  }
  return 0;
}
