// Table tests of the pure HTTP/1.x response parser (net/http1_response.h): every case is parsed
// all at once and again fed one byte at a time, and both must give the same outcome.

#include "net/http1_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kpc::net {
namespace {

struct Case {
  std::string name;
  std::string input;
  StatusCode code = StatusCode::kOk;
  std::string message;  // a part of the error message (errors only)
  int status = 200;     // (successes only)
  std::string body;
  size_t max_body = 1u << 20;
  bool head = false;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Case Ok(std::string name, std::string input, int status, std::string body,
        size_t max_body = 1u << 20, bool head = false) {
  return Case{std::move(name), std::move(input), StatusCode::kOk, "",
              status,          std::move(body),  max_body,        head};
}
Case Err(std::string name, std::string input, StatusCode code, std::string message,
         size_t max_body = 1u << 20) {
  return Case{std::move(name), std::move(input), code, std::move(message), 0, "", max_body, false};
}

std::string Lines(int n, const std::string& line) {
  std::string out;
  for (int i = 0; i < n; ++i) out += line;
  return out;
}

const std::string kOk = "HTTP/1.1 200 OK\r\n";
const std::string kChunked = kOk + "Transfer-Encoding: chunked\r\n\r\n";

std::vector<Case> Cases() {
  using C = StatusCode;
  const C kUnavail = C::kUnavailable, kTooBig = C::kResourceExhausted;
  return {
      // Content-Length
      Ok("content_length", kOk + "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", 200,
         "hello"),
      Ok("content_length_ignores_what_follows", kOk + "Content-Length: 2\r\n\r\nhello", 200, "he"),
      Ok("content_length_zero", kOk + "Content-Length: 0\r\n\r\n", 200, ""),
      Ok("content_length_ows_trimmed", kOk + "Content-Length: \t3 \r\n\r\nabc", 200, "abc"),
      Ok("status_without_reason", "HTTP/1.1 404\r\nContent-Length: 1\r\n\r\nx", 404, "x"),
      Ok("http_1_0", "HTTP/1.0 500 Oops\r\nContent-Length: 1\r\n\r\nx", 500, "x"),
      Ok("no_body_204", "HTTP/1.1 204 No Content\r\n\r\n", 204, ""),
      Ok("no_body_304_despite_length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
         304, ""),
      Ok("no_body_for_head", kOk + "Content-Length: 10\r\n\r\n", 200, "", 1u << 20, true),
      // chunked
      Ok("chunked_with_extensions_and_trailers",
         kChunked +
             "5\r\nhello\r\n6;name=value;x\r\n world\r\n0\r\nX-Trailer: t\r\nOther: u\r\n\r\n",
         200, "hello world"),
      Ok("chunked_upper_hex_and_spaced_extension",
         kChunked + "A ; ext=\"q\"\r\n0123456789\r\n00\r\n\r\n", 200, "0123456789"),
      Ok("chunked_coding_name_any_case",
         kOk + "Transfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 200, "x"),
      Ok("chunked_sixteen_hex_digits", kChunked + "0000000000000001\r\nx\r\n0\r\n\r\n", 200, "x"),
      // close-delimited
      Ok("until_close", "HTTP/1.0 200 OK\r\n\r\nbody until close", 200, "body until close"),
      Ok("until_close_empty", kOk + "\r\n", 200, ""),
      // interim responses
      Ok("continue_then_ok", "HTTP/1.1 100 Continue\r\n\r\n" + kOk + "Content-Length: 2\r\n\r\nok",
         200, "ok"),
      Ok("early_hints_then_ok",
         "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + kOk + "Content-Length: 0\r\n\r\n", 200,
         ""),
      Err("switching_protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", kUnavail,
          "unexpected 101"),
      Err("too_many_interim",
          Lines(9, "HTTP/1.1 100 Continue\r\n\r\n") + kOk + "Content-Length: 0\r\n\r\n", kUnavail,
          "more than 8 interim"),
      // status lines
      Err("status_http2", "HTTP/2 200 OK\r\n\r\n", kUnavail, "bad status line \"HTTP/2 200 OK\""),
      Err("status_two_digits", "HTTP/1.1 20 OK\r\n\r\n", kUnavail, "bad status line"),
      Err("status_four_digits", "HTTP/1.1 2000 OK\r\n\r\n", kUnavail, "bad status line"),
      Err("status_letters", "HTTP/1.1 abc OK\r\n\r\n", kUnavail, "bad status line"),
      Err("status_bad_protocol", "HTTX/1.1 200 OK\r\n\r\n", kUnavail, "bad status line"),
      Err("status_double_space", "HTTP/1.1  200 OK\r\n\r\n", kUnavail, "bad status line"),
      Err("status_empty_line", "\r\n", kUnavail, "bad status line"),
      Err("status_out_of_range", "HTTP/1.1 600 Nope\r\n\r\n", kUnavail, "status 600 out of range"),
      Err("status_zero", "HTTP/1.1 000 Nope\r\n\r\n", kUnavail, "out of range"),
      Err("status_not_http", "SSH-2.0-OpenSSH_9.2\r\n", kUnavail, "bad status line"),
      Err("bare_lf", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", kUnavail, "does not end in CRLF"),
      Err("bare_cr_inside", "HTTP/1.1 200 O\rK\r\n\r\n", kUnavail, "CR or NUL inside a line"),
      // headers
      Ok("headers_lower_cased_and_joined", kOk + "X-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n",
         200, ""),
      Err("header_folding", kOk + "X-A: 1\r\n 2\r\n\r\n", kUnavail, "obsolete header line folding"),
      Err("header_without_colon", kOk + "garbage\r\n\r\n", kUnavail, "header line without a name"),
      Err("header_empty_name", kOk + ": v\r\n\r\n", kUnavail, "header line without a name"),
      Err("header_name_with_space", kOk + "Bad Name: v\r\n\r\n", kUnavail,
          "bad header name \"Bad Name\""),
      Err("header_space_before_colon", kOk + "Content-Length : 0\r\n\r\n", kUnavail,
          "bad header name"),
      Err("header_control_character", kOk + "X-A: a\x01z\r\n\r\n", kUnavail,
          "control character in header \"X-A\""),
      Err("header_nul", kOk + std::string("X-A: a\0z\r\n\r\n", 12), kUnavail, "CR or NUL"),
      Ok("hundred_headers", kOk + Lines(99, "X-A: 1\r\n") + "Content-Length: 0\r\n\r\n", 200, ""),
      Err("too_many_headers", kOk + Lines(101, "X-A: 1\r\n") + "\r\n", kUnavail,
          "more than 100 header lines"),
      Ok("header_line_at_limit",
         kOk + "X-A: " + std::string(8192 - 5, 'a') + "\r\nContent-Length: 0\r\n\r\n", 200, ""),
      Err("header_line_too_long", kOk + "X-A: " + std::string(8192 - 4, 'a') + "\r\n\r\n", kUnavail,
          "header line longer than 8 KiB"),
      Err("status_line_too_long", "HTTP/1.1 200 " + std::string(9000, 'a') + "\r\n\r\n", kUnavail,
          "header line longer than 8 KiB"),
      Err("head_too_large", kOk + Lines(10, "X-A: " + std::string(7000, 'a') + "\r\n") + "\r\n",
          kUnavail, "response head larger than 64 KiB"),
      // framing conflicts
      Err("length_and_chunked",
          kOk + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", kUnavail,
          "both Content-Length and Transfer-Encoding"),
      Err("duplicate_length_same", kOk + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
          kUnavail, "more than one Content-Length"),
      Err("duplicate_length_differing", kOk + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
          kUnavail, "more than one Content-Length"),
      Err("length_list", kOk + "Content-Length: 1, 1\r\n\r\nx", kUnavail, "bad Content-Length"),
      Err("length_negative", kOk + "Content-Length: -1\r\n\r\n", kUnavail, "bad Content-Length"),
      Err("length_plus", kOk + "Content-Length: +1\r\n\r\nx", kUnavail, "bad Content-Length"),
      Err("length_empty", kOk + "Content-Length:\r\n\r\n", kUnavail, "bad Content-Length"),
      Err("length_overflow", kOk + "Content-Length: 99999999999999999999999\r\n\r\n", kUnavail,
          "bad Content-Length"),
      Err("transfer_encoding_gzip", kOk + "Transfer-Encoding: gzip, chunked\r\n\r\n", kUnavail,
          "unsupported Transfer-Encoding"),
      Err("transfer_encoding_twice",
          kOk + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", kUnavail,
          "more than one Transfer-Encoding"),
      // chunk sizes
      Err("chunk_size_0x", kChunked + "0x10\r\n", kUnavail, "bad chunk size line \"0x10\""),
      Err("chunk_size_negative", kChunked + "-1\r\n", kUnavail, "bad chunk size line"),
      Err("chunk_size_twenty_hex_digits", kChunked + "10000000000000000000\r\n", kUnavail,
          "chunk size longer than 16 hex digits"),
      Err("chunk_size_empty", kChunked + "\r\n", kUnavail, "bad chunk size line"),
      Err("chunk_size_junk_after", kChunked + "5 x\r\nhello\r\n0\r\n\r\n", kUnavail,
          "bad chunk size line"),
      Err("chunk_size_leading_space", kChunked + " 5\r\nhello\r\n0\r\n\r\n", kUnavail,
          "bad chunk size line"),
      Err("chunk_data_without_crlf", kChunked + "5\r\nhelloX\r\n0\r\n\r\n", kUnavail,
          "chunk data not followed by CRLF"),
      Err("chunk_data_with_bare_lf", kChunked + "5\r\nhello\n0\r\n\r\n", kUnavail,
          "chunk data not followed by CRLF"),
      Err("chunk_size_bare_lf", kChunked + "5\nhello\r\n0\r\n\r\n", kUnavail,
          "does not end in CRLF"),
      Err("chunk_extension_too_long",
          kChunked + "1;" + std::string(1100, 'e') + "\r\nx\r\n0\r\n\r\n", kUnavail,
          "chunk size line longer than 1 KiB"),
      Err("too_many_trailers", kChunked + "0\r\n" + Lines(101, "T: 1\r\n") + "\r\n", kUnavail,
          "more than 100 trailer lines"),
      Err("trailers_too_large",
          kChunked + "0\r\n" + Lines(3, "T: " + std::string(3000, 't') + "\r\n") + "\r\n", kUnavail,
          "trailers larger than 8 KiB"),
      Err("trailer_line_too_long", kChunked + "0\r\nT: " + std::string(9000, 't') + "\r\n\r\n",
          kUnavail, "trailer line longer than 8 KiB"),
      // the body cap, in each framing
      Ok("length_at_cap", kOk + "Content-Length: 10\r\n\r\n0123456789", 200, "0123456789", 10),
      Err("length_over_cap", kOk + "Content-Length: 11\r\n\r\n", kTooBig,
          "response body of 11 bytes (Content-Length) is larger than 10 bytes", 10),
      Err("length_over_cap_mib", kOk + "Content-Length: 17000000\r\n\r\n", kTooBig,
          "response body of 17000000 bytes (Content-Length) is larger than 16 MiB", 16u << 20),
      Ok("chunked_at_cap", kChunked + "6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n", 200, "0123456789",
         10),
      Err("chunked_over_cap", kChunked + "6\r\n012345\r\n5\r\n6789a\r\n0\r\n\r\n", kTooBig,
          "response body larger than 10 bytes", 10),
      Err("chunked_one_huge_chunk", kChunked + "ffffffffffffffff\r\n", kTooBig,
          "response body larger than 10 bytes", 10),
      Ok("until_close_at_cap", kOk + "\r\n0123456789", 200, "0123456789", 10),
      Err("until_close_over_cap", kOk + "\r\n0123456789a", kTooBig,
          "response body larger than 10 bytes", 10),
      // cut short
      Err("nothing", "", kUnavail, "connection closed before any response"),
      Err("cut_in_status_line", "HTTP/1.1 20", kUnavail, "connection closed in the response head"),
      Err("cut_in_headers", kOk + "Content-Length: 5\r\n", kUnavail,
          "connection closed in the response head"),
      Err("cut_in_body", kOk + "Content-Length: 10\r\n\r\nhello", kUnavail,
          "connection closed after 5 of 10 body bytes"),
      Err("cut_in_chunk", kChunked + "5\r\nhel", kUnavail, "connection closed in a chunked body"),
      Err("cut_before_last_chunk", kChunked + "5\r\nhello\r\n", kUnavail,
          "connection closed in a chunked body"),
      Err("cut_in_trailers", kChunked + "0\r\nT: 1\r\n", kUnavail,
          "connection closed in a chunked body"),
  };
}

StatusOr<HttpResponse> ByteByByte(const Case& c) {
  Http1ResponseParser parser(c.max_body, c.head);
  for (char ch : c.input) {
    if (Status s = parser.Feed(std::string_view(&ch, 1)); !s.ok()) return s;
  }
  if (Status s = parser.Finish(); !s.ok()) return s;
  return parser.Take();
}

class Http1ResponseTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(Http1ResponseTableTest, WholeAndByteByByteAgree) {
  const Case& c = GetParam();
  const auto whole = ParseHttp1Response(c.input, c.max_body, c.head);
  const auto bytes = ByteByByte(c);
  for (const auto* got : {&whole, &bytes}) {
    const char* how = got == &whole ? "all at once" : "one byte at a time";
    ASSERT_EQ(got->status().code(), c.code) << how << ": " << got->status().message();
    if (c.code != StatusCode::kOk) {
      EXPECT_NE(got->status().message().find(c.message), std::string::npos)
          << how << ": " << got->status().message();
      continue;
    }
    EXPECT_EQ((*got)->status, c.status) << how;
    EXPECT_EQ((*got)->body, c.body) << how;
  }
  EXPECT_EQ(whole.status().message(), bytes.status().message());
  if (whole.ok() && bytes.ok()) {
    EXPECT_EQ(whole->headers, bytes->headers);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1ResponseTableTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(Http1ResponseTest, HeadersAreLowerCasedTrimmedAndJoined) {
  auto r = ParseHttp1Response(
      kOk + "X-A: 1\r\nx-a:  2 \r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n", 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->headers["x-a"], "1, 2");
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_EQ(r->headers.count("Content-Type"), 0u);
}

TEST(Http1ResponseTest, InterimResponseHeadersAreDropped) {
  auto r = ParseHttp1Response(
      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + kOk + "Content-Length: 0\r\n\r\n", 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->headers.count("link"), 0u);
}

TEST(Http1ResponseTest, DoneAsSoonAsTheFramedBodyEnds) {
  Http1ResponseParser length(100);
  ASSERT_TRUE(length.Feed(kOk + "Content-Length: 2\r\n\r\nok").ok());
  EXPECT_TRUE(length.done());  // no need to wait for the connection to close
  EXPECT_TRUE(length.Feed("more bytes are ignored").ok());
  EXPECT_EQ(length.Take().body, "ok");

  Http1ResponseParser chunked(100);
  ASSERT_TRUE(chunked.Feed(kChunked + "2\r\nok\r\n0\r\n").ok());
  EXPECT_FALSE(chunked.done());
  ASSERT_TRUE(chunked.Feed("\r\n").ok());
  EXPECT_TRUE(chunked.done());
}

TEST(Http1ResponseTest, ReadsUntilCloseOnlyForUnframedBodies) {
  Http1ResponseParser p(100);
  ASSERT_TRUE(p.Feed(kOk + "\r\npartial").ok());
  EXPECT_TRUE(p.reads_until_close());
  EXPECT_FALSE(p.done());
  ASSERT_TRUE(p.Finish().ok());
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.Take().body, "partial");

  Http1ResponseParser framed(100);
  ASSERT_TRUE(framed.Feed(kOk + "Content-Length: 9\r\n\r\npart").ok());
  EXPECT_FALSE(framed.reads_until_close());
}

TEST(Http1ResponseTest, AnOverlongLineFailsBeforeItsNewlineArrives) {
  Http1ResponseParser p(100);
  ASSERT_TRUE(p.Feed(kOk).ok());
  Status s = p.Feed(std::string(kMaxHeaderLineBytes + 3, 'a'));  // no newline at all
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("header line longer than 8 KiB"), std::string::npos) << s.message();
}

TEST(Http1ResponseTest, AnErrorSticks) {
  Http1ResponseParser p(100);
  Status first = p.Feed("HTTP/9 200 OK\r\n");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(p.Feed(kOk + "Content-Length: 0\r\n\r\n").message(), first.message());
  EXPECT_EQ(p.Finish().message(), first.message());
  EXPECT_FALSE(p.done());
}

TEST(Http1ResponseTest, ChunkedBodyOverTheCapFailsWithoutReadingTheChunk) {
  // The size line alone says the body would pass the cap: refused before the data.
  Http1ResponseParser p(10);
  Status s = p.Feed(kChunked + "b\r\n");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
}

TEST(Http1ResponseTest, MessagesQuoteUntrustedTextBounded) {
  auto r = ParseHttp1Response("HTTP/1.1 200 " + std::string(500, 'x') + "\x01\r\n\r\n", 10);
  ASSERT_TRUE(r.ok());  // a long reason is fine (under the line limit)
  auto bad = ParseHttp1Response("XTTP/1.1 200 " + std::string(500, 'x') + "\r\n\r\n", 10);
  ASSERT_FALSE(bad.ok());
  EXPECT_LT(bad.status().message().size(), 150u) << bad.status().message();
}

}  // namespace
}  // namespace kpc::net
