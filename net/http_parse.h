#pragma once
// Strict HTTP/1.1 request parsing (RFC 9112) for the server in net/http_server.cpp: deciding
// where a request head ends, what it says, how its body is framed, and reading chunk-size and
// trailer lines. Pure: no I/O, no clocks, no recursion, no regular expressions; every input is
// bounded by HeadLimits before it is looked at. Safe for concurrent use (no shared state).
//
// A refusal is an HTTP status, a reason (for metrics) and a one-line message for the peer.
// After any refusal the server closes the connection: where the next request would start can
// no longer be trusted.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "net/http.h"

namespace kpc::net {

struct Refusal {
  int status = 400;
  RefusalReason reason = RefusalReason::kMalformed;
  std::string message;  // one line, ends with "\n"
};

// Finds the end of a request head in bytes read so far, a few bytes at a time, without
// rescanning: feed it the whole buffer after each read. Lines end with CRLF only; a bare LF is
// malformed (a bare CR is caught by ParseRequestHead).
class HeadScanner {
 public:
  explicit HeadScanner(const HeadLimits& limits) : limits_(limits) {}
  struct NeedMore {};
  struct Complete {
    size_t head_bytes;  // request line + fields + the empty line, CRLFs included
  };
  using Result = std::variant<NeedMore, Complete, Refusal>;
  // `buffered` starts with the request and only grows between calls.
  Result Scan(std::string_view buffered);

 private:
  const HeadLimits limits_;
  size_t line_start_ = 0;  // where the current line starts
  size_t scanned_ = 0;     // bytes already looked at
  size_t lines_ = 0;       // complete lines so far (the request line included)
};

// The request line and fields of a complete head (as found by HeadScanner, final CRLFCRLF
// included). Field names are lower-cased; repeated fields are joined with ", " (RFC 9110
// 5.3); a repeated Content-Length is refused.
struct RequestHead {
  std::string method;
  std::string path;  // origin-form, without the query
  std::string query;
  int minor_version = 1;  // HTTP/1.0 or HTTP/1.1
  std::map<std::string, std::string> headers;
};
std::variant<RequestHead, Refusal> ParseRequestHead(std::string_view head,
                                                    const HeadLimits& limits);

// Whether the connection may serve another request after this one (Connection: close,
// HTTP/1.0 without keep-alive).
bool WantsKeepAlive(const RequestHead& head);

// How the body is delimited: none, `length` bytes, or chunked. Refuses Content-Length with
// Transfer-Encoding (400), a malformed Content-Length (400), a body longer than `max_body`
// (413, reason kBodyTooLarge), Transfer-Encoding on HTTP/1.0 (400), codings other than
// "chunked" (501) and "chunked" applied twice (400).
struct BodyFraming {
  enum Kind { kNone, kLength, kChunked } kind = kNone;
  uint64_t length = 0;  // kLength only
};
std::variant<BodyFraming, Refusal> DecideBodyFraming(const RequestHead& head, size_t max_body);

// A chunk-size line without its CRLF: 1 to kMaxChunkSizeDigits hex digits, then optionally
// extensions (`;name[=value]`, with optional whitespace before the `;`), which are checked for
// control characters and ignored. Anything else (0x10, -1, 20 digits, spaces) is refused (400).
inline constexpr size_t kMaxChunkSizeDigits = 16;
// A chunk-size line longer than this (extensions included) is refused (400).
inline constexpr size_t kMaxChunkLineBytes = 1024;
std::variant<uint64_t, Refusal> ParseChunkSizeLine(std::string_view line);

// One trailer field line (no CRLF) of a chunked body, checked like a header field and then
// ignored: nullopt when well-formed, else the refusal.
std::optional<Refusal> CheckTrailerLine(std::string_view line);

}  // namespace kpc::net
