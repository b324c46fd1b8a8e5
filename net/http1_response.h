#pragma once
// An incremental HTTP/1.x response parser for a client that sends one request per connection
// and reads until its response ends. Pure: no I/O and no clock; the bytes may arrive in pieces
// of any size (one byte at a time gives the same result as all at once), and the parser holds
// at most one line plus the body it accepted. Not thread-safe: one parser per response.
//
// Accepted (strictly; anything else is an error):
// - a status line "HTTP/1.N SSS[ reason]" with a status of 100-599, then header lines
//   "name: value" — every line ends in CRLF; names are token characters and are lower-cased
//   (repeated names are joined with ", "); values hold no control character but HTAB; no
//   obsolete line folding. Per head: at most kMaxHeaderLines lines, each at most
//   kMaxHeaderLineBytes (without its CRLF), at most kMaxHeadBytes in all.
// - interim 1xx responses (100 Continue, 102, 103) are skipped, at most kMaxInterimResponses;
//   101 Switching Protocols is refused (never asked for).
// - the body framed as RFC 9112 section 6.3 says: none for a HEAD request or a 204/304
//   answer; `Transfer-Encoding: chunked` (the only coding accepted: chunk sizes of hex digits
//   only, no overflow, size lines with their ignored extensions at most kMaxChunkLineBytes,
//   trailers at most kMaxHeaderLines lines and kMaxTrailerBytes, all ignored); else one
//   Content-Length of digits only; else everything until the connection closes. A response
//   with both Content-Length and Transfer-Encoding, or with more than one of either, is refused.
// - bytes after the end of the response are ignored (the connection is not reused).
//
// Errors: kResourceExhausted when the body would pass `max_body_bytes` (a Content-Length over
// it fails before any of the body is read, chunked and close-delimited bodies as soon as the
// cap is passed); kUnavailable for everything else (malformed, over a head limit, or cut
// short). After an error the parser keeps returning it.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http.h"

namespace kpc::net {

inline constexpr size_t kMaxHeaderLines = 100;
inline constexpr size_t kMaxHeaderLineBytes = 8u << 10;
inline constexpr size_t kMaxHeadBytes = 64u << 10;
inline constexpr size_t kMaxChunkLineBytes = 1024;
inline constexpr size_t kMaxTrailerBytes = 8u << 10;
inline constexpr int kMaxInterimResponses = 8;

class Http1ResponseParser {
 public:
  // `head_request`: the response answers a HEAD request, so it has no body whatever it says.
  explicit Http1ResponseParser(size_t max_body_bytes, bool head_request = false)
      : max_body_bytes_(max_body_bytes), head_request_(head_request) {}

  // Consumes the next bytes of the connection. Ok while more is needed and once done().
  Status Feed(std::string_view bytes);
  // The connection ended (cleanly): completes a body delimited by the end of the connection;
  // an error when the response is incomplete.
  Status Finish();

  bool done() const { return state_ == State::kDone; }
  // True while the body is delimited by the end of the connection (so the way the connection
  // ends decides whether the body is complete).
  bool reads_until_close() const { return state_ == State::kBodyUntilClose; }
  // REQUIRES: done(). Moves the response out.
  HttpResponse Take();

 private:
  enum class State {
    kStatusLine,
    kHeaderLine,
    kBodyLength,
    kChunkSize,
    kChunkData,
    kChunkCr,
    kChunkLf,
    kTrailerLine,
    kBodyUntilClose,
    kDone,
    kFailed,
  };

  bool InLine() const;
  size_t LineLimit() const;
  // Consumes bytes of a line state from `bytes` at `*pos`; handles the line once complete.
  Status TakeLine(std::string_view bytes, size_t* pos);
  Status TakeBody(std::string_view bytes, size_t* pos);
  Status OnLine(std::string_view content);
  Status OnStatusLine(std::string_view content);
  Status OnHeaderLine(std::string_view content);
  Status OnEndOfHead();
  Status OnChunkSizeLine(std::string_view content);
  Status OnTrailerLine(std::string_view content);
  Status Fail(Status s);

  const size_t max_body_bytes_;
  const bool head_request_;
  State state_ = State::kStatusLine;
  Status error_;
  std::string line_;  // the line being read, with what arrived of its CRLF
  bool saw_any_byte_ = false;
  int interim_responses_ = 0;
  size_t head_bytes_ = 0;
  size_t head_lines_ = 0;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
  bool has_content_length_ = false;
  uint64_t content_length_ = 0;
  bool has_transfer_encoding_ = false;
  std::string transfer_encoding_;
  uint64_t remaining_ = 0;  // of the Content-Length body or of the current chunk
  std::string body_;
};

// A whole response that ended with the connection (Feed then Finish). Pure.
StatusOr<HttpResponse> ParseHttp1Response(std::string_view bytes, size_t max_body_bytes,
                                          bool head_request = false);

}  // namespace kpc::net
