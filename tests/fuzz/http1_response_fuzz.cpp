// Fuzz target: the HTTP/1 response parser (net/http1_response.h).
// Properties: no crash or sanitizer report on any bytes; the bytes split into pieces of any
// sizes (one at a time, or as the choice bytes say) give the same outcome as all at once (the
// same error code, or the same status, headers and body); a body never passes the cap; an
// error sticks (Feed and Finish keep returning it).
// Input: the response bytes [NUL choices: body cap, HEAD request, piece sizes].

#include <cstddef>
#include <cstdint>
#include <string>

#include "net/http1_response.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using kpc::Status;
using kpc::StatusOr;
using kpc::net::Http1ResponseParser;
using kpc::net::HttpResponse;

std::string Describe(const StatusOr<HttpResponse>& r) {
  if (!r.ok())
    return "error " + std::to_string(static_cast<int>(r.status().code())) + ": " +
           r.status().message();
  std::string out = "status " + std::to_string(r->status) + " headers";
  for (const auto& [k, v] : r->headers) out += " [" + k + "=" + v + "]";
  return out + " body " + std::to_string(r->body.size()) + " bytes";
}

bool Same(const StatusOr<HttpResponse>& a, const StatusOr<HttpResponse>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return a.status().code() == b.status().code();
  return a->status == b->status && a->headers == b->headers && a->body == b->body;
}

// Feeds `bytes` in pieces whose sizes come from `sizes` (cycled; 0 = one byte), then Finish.
StatusOr<HttpResponse> Pieces(std::string_view bytes, std::string_view sizes, size_t cap,
                              bool head) {
  Http1ResponseParser p(cap, head);
  size_t pos = 0, k = 0;
  Status s;
  while (pos < bytes.size()) {
    size_t n = sizes.empty() ? 1 : static_cast<uint8_t>(sizes[k++ % sizes.size()]) % 64 + 1;
    n = std::min(n, bytes.size() - pos);
    s = p.Feed(bytes.substr(pos, n));
    pos += n;
    if (!s.ok()) {
      // Errors stick.
      FUZZ_CHECK(!p.Feed("x").ok() && !p.Finish().ok(), s.message());
      return s;
    }
  }
  s = p.Finish();
  if (!s.ok()) {
    FUZZ_CHECK(!p.Finish().ok(), s.message());
    return s;
  }
  FUZZ_CHECK(p.done(), "Finish was ok but the parser is not done");
  return p.Take();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  static constexpr size_t kCaps[] = {0, 1, 16, 1024, 1u << 20};
  const size_t cap = kCaps[in.Byte() % 5];
  const bool head = in.Byte() % 4 == 0;
  const std::string_view sizes = in.RestOfChoices();
  const std::string_view bytes = in.text();

  auto whole = kpc::net::ParseHttp1Response(bytes, cap, head);
  if (whole.ok()) {
    FUZZ_CHECK(whole->body.size() <= cap, Describe(whole));
    FUZZ_CHECK(whole->status >= 200 && whole->status <= 599, Describe(whole));
    FUZZ_CHECK(!head || whole->body.empty(), Describe(whole));
  } else {
    FUZZ_CHECK(whole.status().code() == kpc::StatusCode::kResourceExhausted ||
                   whole.status().code() == kpc::StatusCode::kUnavailable,
               Describe(whole));
  }
  auto bytewise = Pieces(bytes, {}, cap, head);
  FUZZ_CHECK(Same(whole, bytewise),
             "all at once: " + Describe(whole) + "\none byte at a time: " + Describe(bytewise));
  if (!sizes.empty()) {
    auto pieces = Pieces(bytes, sizes, cap, head);
    FUZZ_CHECK(Same(whole, pieces),
               "all at once: " + Describe(whole) + "\nin pieces: " + Describe(pieces));
  }
  return 0;
}
