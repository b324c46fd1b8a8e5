#include "net/http1_response.h"

#include <algorithm>

namespace kpc::net {
namespace {

// "4 MiB", "1 KiB", "1000 bytes", for messages about limits.
std::string ByteSize(size_t bytes) {
  constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

// Untrusted text for a message: at most 64 bytes, non-printable bytes as '?'.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  for (char c : s.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  out += s.size() > kMax ? "...\"" : "\"";
  return out;
}

Status Malformed(std::string what) { return Unavailable("malformed response: " + std::move(what)); }

Status BodyTooLarge(size_t cap) {
  return Status(StatusCode::kResourceExhausted, "response body larger than " + ByteSize(cap));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 1*DIGIT without overflow.
bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

Status Http1ResponseParser::Feed(std::string_view bytes) {
  if (state_ == State::kFailed) return error_;
  if (!bytes.empty()) saw_any_byte_ = true;
  size_t pos = 0;
  while (pos < bytes.size() && state_ != State::kDone) {
    Status s = InLine() ? TakeLine(bytes, &pos) : TakeBody(bytes, &pos);
    if (!s.ok()) return Fail(std::move(s));
  }
  return Status::Ok();
}

Status Http1ResponseParser::Finish() {
  switch (state_) {
    case State::kFailed:
      return error_;
    case State::kDone:
      return Status::Ok();
    case State::kBodyUntilClose:
      state_ = State::kDone;
      return Status::Ok();
    case State::kStatusLine:
      if (!saw_any_byte_) return Fail(Unavailable("connection closed before any response"));
      return Fail(Unavailable("connection closed in the response head"));
    case State::kHeaderLine:
      return Fail(Unavailable("connection closed in the response head"));
    case State::kBodyLength:
      return Fail(Unavailable("connection closed after " + std::to_string(body_.size()) + " of " +
                              std::to_string(content_length_) + " body bytes"));
    default:
      return Fail(Unavailable("connection closed in a chunked body"));
  }
}

HttpResponse Http1ResponseParser::Take() {
  HttpResponse r;
  r.status = status_;
  r.headers = std::move(headers_);
  r.body = std::move(body_);
  return r;
}

bool Http1ResponseParser::InLine() const {
  return state_ == State::kStatusLine || state_ == State::kHeaderLine ||
         state_ == State::kChunkSize || state_ == State::kTrailerLine;
}

size_t Http1ResponseParser::LineLimit() const {
  return state_ == State::kChunkSize ? kMaxChunkLineBytes : kMaxHeaderLineBytes;
}

Status Http1ResponseParser::Fail(Status s) {
  state_ = State::kFailed;
  error_ = s;
  line_.clear();
  line_.shrink_to_fit();
  body_.clear();
  body_.shrink_to_fit();
  return s;
}

Status Http1ResponseParser::TakeLine(std::string_view bytes, size_t* pos) {
  const size_t nl = bytes.find('\n', *pos);
  const size_t end = nl == std::string_view::npos ? bytes.size() : nl + 1;
  // The limit counts the line without its CRLF; checked before the line is complete, so a
  // peer that never sends a newline is refused as soon as it passes the limit.
  if (line_.size() + (end - *pos) > LineLimit() + 2) {
    if (state_ == State::kChunkSize)
      return Malformed("chunk size line longer than " + ByteSize(LineLimit()));
    const char* what = state_ == State::kTrailerLine ? "trailer" : "header";
    return Malformed(std::string(what) + " line longer than " + ByteSize(LineLimit()));
  }
  line_.append(bytes.substr(*pos, end - *pos));
  *pos = end;
  if (nl == std::string_view::npos) return Status::Ok();
  if (line_.size() < 2 || line_[line_.size() - 2] != '\r')
    return Malformed("a line that does not end in CRLF");
  const std::string line = std::move(line_);
  line_.clear();
  return OnLine(std::string_view(line).substr(0, line.size() - 2));
}

Status Http1ResponseParser::OnLine(std::string_view content) {
  if (content.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos) {
    return Malformed("CR or NUL inside a line");
  }
  head_bytes_ += content.size() + 2;
  switch (state_) {
    case State::kStatusLine:
      return OnStatusLine(content);
    case State::kHeaderLine:
      if (head_bytes_ > kMaxHeadBytes)
        return Malformed("response head larger than " + ByteSize(kMaxHeadBytes));
      return OnHeaderLine(content);
    case State::kChunkSize:
      return OnChunkSizeLine(content);
    default:
      if (head_bytes_ > kMaxTrailerBytes)
        return Malformed("trailers larger than " + ByteSize(kMaxTrailerBytes));
      return OnTrailerLine(content);
  }
}

// "HTTP/1.N SSS[ reason]"
Status Http1ResponseParser::OnStatusLine(std::string_view content) {
  const bool shape = content.size() >= 12 && content.substr(0, 7) == "HTTP/1." &&
                     IsDigit(content[7]) && content[8] == ' ' && IsDigit(content[9]) &&
                     IsDigit(content[10]) && IsDigit(content[11]) &&
                     (content.size() == 12 || content[12] == ' ');
  if (!shape) return Malformed("bad status line " + Quote(content));
  const int status = (content[9] - '0') * 100 + (content[10] - '0') * 10 + (content[11] - '0');
  if (status < 100 || status > 599)
    return Malformed("status " + std::to_string(status) + " out of range");
  status_ = status;
  head_bytes_ = content.size() + 2;
  head_lines_ = 0;
  headers_.clear();
  has_content_length_ = false;
  has_transfer_encoding_ = false;
  transfer_encoding_.clear();
  state_ = State::kHeaderLine;
  return Status::Ok();
}

Status Http1ResponseParser::OnHeaderLine(std::string_view content) {
  if (content.empty()) return OnEndOfHead();
  if (++head_lines_ > kMaxHeaderLines) {
    return Malformed("more than " + std::to_string(kMaxHeaderLines) + " header lines");
  }
  if (content.front() == ' ' || content.front() == '\t')
    return Malformed("obsolete header line folding");
  const size_t colon = content.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return Malformed("header line without a name " + Quote(content));
  const std::string_view name = content.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), IsTokenChar))
    return Malformed("bad header name " + Quote(name));
  const std::string_view value = TrimOws(content.substr(colon + 1));
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f)
      return Malformed("control character in header " + Quote(name));
  }
  std::string lower = Lower(name);
  if (lower == "content-length") {
    if (has_content_length_) return Malformed("more than one Content-Length");
    if (!ParseDecimal(value, &content_length_))
      return Malformed("bad Content-Length " + Quote(value));
    has_content_length_ = true;
  } else if (lower == "transfer-encoding") {
    if (has_transfer_encoding_) return Malformed("more than one Transfer-Encoding");
    has_transfer_encoding_ = true;
    transfer_encoding_ = Lower(value);
  }
  auto [it, inserted] = headers_.emplace(std::move(lower), std::string(value));
  if (!inserted) it->second.append(", ").append(value);
  return Status::Ok();
}

Status Http1ResponseParser::OnEndOfHead() {
  if (status_ < 200) {
    if (status_ == 101) return Malformed("unexpected 101 Switching Protocols");
    if (++interim_responses_ > kMaxInterimResponses) {
      return Malformed("more than " + std::to_string(kMaxInterimResponses) +
                       " interim (1xx) responses");
    }
    state_ = State::kStatusLine;
    return Status::Ok();
  }
  if (has_content_length_ && has_transfer_encoding_)
    return Malformed("both Content-Length and Transfer-Encoding");
  if (head_request_ || status_ == 204 || status_ == 304) {
    state_ = State::kDone;
    return Status::Ok();
  }
  if (has_transfer_encoding_) {
    if (transfer_encoding_ != "chunked")
      return Malformed("unsupported Transfer-Encoding " + Quote(transfer_encoding_));
    head_bytes_ = 0;
    head_lines_ = 0;
    state_ = State::kChunkSize;
    return Status::Ok();
  }
  if (!has_content_length_) {
    state_ = State::kBodyUntilClose;
    return Status::Ok();
  }
  if (content_length_ > max_body_bytes_) {
    return Status(StatusCode::kResourceExhausted,
                  "response body of " + std::to_string(content_length_) +
                      " bytes (Content-Length) is larger than " + ByteSize(max_body_bytes_));
  }
  remaining_ = content_length_;
  state_ = remaining_ == 0 ? State::kDone : State::kBodyLength;
  return Status::Ok();
}

// 1*HEXDIG [ OWS ";" extensions ], the extensions ignored (their length is bounded by the line).
Status Http1ResponseParser::OnChunkSizeLine(std::string_view content) {
  constexpr size_t kMaxHexDigits = 16;  // fits uint64_t
  size_t digits = 0;
  uint64_t size = 0;
  for (; digits < content.size() && HexValue(content[digits]) >= 0; ++digits) {
    if (digits == kMaxHexDigits) return Malformed("chunk size longer than 16 hex digits");
    size = size * 16 + static_cast<uint64_t>(HexValue(content[digits]));
  }
  const std::string_view rest = TrimOws(content.substr(digits));
  if (digits == 0 || (!rest.empty() && rest.front() != ';'))
    return Malformed("bad chunk size line " + Quote(content));
  if (size == 0) {
    head_bytes_ = 0;  // now counts the trailers
    head_lines_ = 0;
    state_ = State::kTrailerLine;
    return Status::Ok();
  }
  if (size > max_body_bytes_ - body_.size()) return BodyTooLarge(max_body_bytes_);
  remaining_ = size;
  state_ = State::kChunkData;
  return Status::Ok();
}

Status Http1ResponseParser::OnTrailerLine(std::string_view content) {
  if (content.empty()) {
    state_ = State::kDone;
    return Status::Ok();
  }
  if (++head_lines_ > kMaxHeaderLines) {
    return Malformed("more than " + std::to_string(kMaxHeaderLines) + " trailer lines");
  }
  return Status::Ok();
}

Status Http1ResponseParser::TakeBody(std::string_view bytes, size_t* pos) {
  const std::string_view avail = bytes.substr(*pos);
  switch (state_) {
    case State::kBodyLength:
    case State::kChunkData: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, avail.size()));
      body_.append(avail.substr(0, n));
      *pos += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = state_ == State::kBodyLength ? State::kDone : State::kChunkCr;
      return Status::Ok();
    }
    case State::kChunkCr:
    case State::kChunkLf:
      if (avail.front() != (state_ == State::kChunkCr ? '\r' : '\n')) {
        return Malformed("chunk data not followed by CRLF");
      }
      ++*pos;
      state_ = state_ == State::kChunkCr ? State::kChunkLf : State::kChunkSize;
      return Status::Ok();
    default:  // kBodyUntilClose
      if (avail.size() > max_body_bytes_ - body_.size()) return BodyTooLarge(max_body_bytes_);
      body_.append(avail);
      *pos += avail.size();
      return Status::Ok();
  }
}

StatusOr<HttpResponse> ParseHttp1Response(std::string_view bytes, size_t max_body_bytes,
                                          bool head_request) {
  Http1ResponseParser parser(max_body_bytes, head_request);
  if (Status s = parser.Feed(bytes); !s.ok()) return s;
  if (Status s = parser.Finish(); !s.ok()) return s;
  return parser.Take();
}

}  // namespace kpc::net
