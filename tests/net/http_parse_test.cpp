// Tables for the pure HTTP/1.1 request parsing of net/http_parse.h: every limit at, just under
// and just over its bound, framing ambiguities, chunk-size lines and trailer lines.

#include "net/http_parse.h"

#include <gtest/gtest.h>

namespace kpc::net {
namespace {

HeadLimits Small() {
  HeadLimits l;
  l.max_request_line_bytes = 32;
  l.max_header_line_bytes = 24;
  l.max_header_count = 3;
  l.max_head_bytes = 128;
  return l;
}

// The status a head gets from HeadScanner (fed whole) and then ParseRequestHead: 0 = accepted,
// -1 = still incomplete.
int HeadStatus(const std::string& head, const HeadLimits& limits) {
  HeadScanner scanner(limits);
  auto scan = scanner.Scan(head);
  if (auto* r = std::get_if<Refusal>(&scan)) return r->status;
  if (std::holds_alternative<HeadScanner::NeedMore>(scan)) return -1;
  const size_t n = std::get<HeadScanner::Complete>(scan).head_bytes;
  auto parsed = ParseRequestHead(std::string_view(head).substr(0, n), limits);
  if (auto* r = std::get_if<Refusal>(&parsed)) return r->status;
  return 0;
}

TEST(HeadScannerTest, LimitsAtUnderAndOver) {
  const std::string line28 = "GET /" + std::string(14, 'a') + " HTTP/1.1";  // 28 bytes
  ASSERT_EQ(line28.size(), 28u);
  struct Case {
    std::string name, head;
    int status;
  } cases[] = {
      {"minimal", "GET / HTTP/1.1\r\n\r\n", 0},
      {"request line at 32", "GET /" + std::string(18, 'a') + " HTTP/1.1\r\n\r\n", 0},
      {"request line at 33", "GET /" + std::string(19, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"request line over, incomplete", "GET /" + std::string(40, 'a'), 414},
      {"request line at limit, CR pending", "GET /" + std::string(18, 'a') + " HTTP/1.1\r", -1},
      {"header line at 24", "GET / HTTP/1.1\r\nX: " + std::string(21, 'v') + "\r\n\r\n", 0},
      {"header line at 25", "GET / HTTP/1.1\r\nX: " + std::string(22, 'v') + "\r\n\r\n", 431},
      {"header line over, incomplete", "GET / HTTP/1.1\r\nX: " + std::string(30, 'v'), 431},
      {"3 fields", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0},
      {"4 fields", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431},
      {"bare LF ends a line", "GET / HTTP/1.1\nHost: x\n\n", 400},
      {"bare LF after CRLF", "GET / HTTP/1.1\r\nHost: x\r\n\n", 400},
      {"empty request line", "\r\nGET / HTTP/1.1\r\n\r\n", 400},
      {"incomplete", "GET / HTTP/1.1\r\nHost: x\r\n", -1},
  };
  for (const auto& c : cases) EXPECT_EQ(HeadStatus(c.head, Small()), c.status) << c.name;

  HeadLimits total = Small();
  total.max_header_line_bytes = 100;
  total.max_head_bytes = 40;
  const std::string at40 = "GET / HTTP/1.1\r\nX: " + std::string(17, 'v') + "\r\n\r\n";
  ASSERT_EQ(at40.size(), 40u);
  EXPECT_EQ(HeadStatus(at40, total), 0);
  EXPECT_EQ(HeadStatus("GET / HTTP/1.1\r\nX: " + std::string(18, 'v') + "\r\n\r\n", total), 431);
  EXPECT_EQ(HeadStatus("GET / HTTP/1.1\r\nX: " + std::string(60, 'v'), total), 431);
}

TEST(HeadScannerTest, ByteAtATimeFindsTheSameEnd) {
  const std::string head = "POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok";
  HeadScanner scanner(HeadLimits{});
  for (size_t n = 1; n <= head.size(); ++n) {
    auto r = scanner.Scan(std::string_view(head).substr(0, n));
    if (auto* done = std::get_if<HeadScanner::Complete>(&r)) {
      EXPECT_EQ(done->head_bytes, head.size() - 2);
      EXPECT_EQ(n, head.size() - 2);
      return;
    }
    ASSERT_TRUE(std::holds_alternative<HeadScanner::NeedMore>(r)) << n;
  }
  FAIL() << "never complete";
}

TEST(ParseRequestHeadTest, Syntax) {
  struct Case {
    std::string name, head;
    int status;
  } cases[] = {
      {"ok with query", "GET /a/b?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 0},
      {"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 0},
      {"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505},
      {"HTTP/1.1x", "GET / HTTP/1.1x\r\n\r\n", 400},
      {"lower-case version", "GET / http/1.1\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\n\r\n", 400},
      {"space in target", "GET /a b HTTP/1.1\r\n\r\n", 400},
      {"absolute form", "GET http://x/ HTTP/1.1\r\n\r\n", 400},
      {"method not a token", "G(T / HTTP/1.1\r\n\r\n", 400},
      {"tab in target", "GET /a\tb HTTP/1.1\r\n\r\n", 400},
      {"non-ASCII in target", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"no colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"empty name", "GET / HTTP/1.1\r\n: x\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
      {"bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27), 400},
      {"obs-text in value", "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", 0},
      {"tab in value", "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", 0},
      {"same Content-Length twice",
       "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", 400},
      {"differing Content-Length",
       "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
  };
  for (const auto& c : cases) EXPECT_EQ(HeadStatus(c.head, HeadLimits{}), c.status) << c.name;
}

TEST(ParseRequestHeadTest, FieldsAreLowerCasedTrimmedAndJoined) {
  auto parsed = ParseRequestHead(
      "POST /v?a=b HTTP/1.1\r\nX-A:  one \r\nx-a: two\r\nHost: h\r\n\r\n", HeadLimits{});
  ASSERT_TRUE(std::holds_alternative<RequestHead>(parsed));
  const auto& h = std::get<RequestHead>(parsed);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.path, "/v");
  EXPECT_EQ(h.query, "a=b");
  EXPECT_EQ(h.minor_version, 1);
  EXPECT_EQ(h.headers.at("x-a"), "one, two");
  EXPECT_EQ(h.headers.at("host"), "h");
}

RequestHead Head(std::map<std::string, std::string> headers, int minor = 1) {
  RequestHead h;
  h.method = "POST";
  h.path = "/";
  h.minor_version = minor;
  h.headers = std::move(headers);
  return h;
}

TEST(DecideBodyFramingTest, Table) {
  struct Case {
    std::string name;
    RequestHead head;
    int status;  // 0 = accepted
    BodyFraming::Kind kind = BodyFraming::kNone;
    uint64_t length = 0;
  } cases[] = {
      {"nothing", Head({}), 0, BodyFraming::kNone},
      {"length", Head({{"content-length", "10"}}), 0, BodyFraming::kLength, 10},
      {"length 0", Head({{"content-length", "0"}}), 0, BodyFraming::kNone},
      {"length at max", Head({{"content-length", "100"}}), 0, BodyFraming::kLength, 100},
      {"length over max", Head({{"content-length", "101"}}), 413},
      {"18 digits", Head({{"content-length", "000000000000000100"}}), 0, BodyFraming::kLength, 100},
      {"19 digits", Head({{"content-length", "0000000000000000100"}}), 400},
      {"huge", Head({{"content-length", "99999999999999999999999"}}), 400},
      {"negative", Head({{"content-length", "-1"}}), 400},
      {"plus", Head({{"content-length", "+5"}}), 400},
      {"list", Head({{"content-length", "5, 5"}}), 400},
      {"empty", Head({{"content-length", ""}}), 400},
      {"hex", Head({{"content-length", "0x10"}}), 400},
      {"chunked", Head({{"transfer-encoding", "chunked"}}), 0, BodyFraming::kChunked},
      {"Chunked", Head({{"transfer-encoding", "Chunked"}}), 0, BodyFraming::kChunked},
      {"CL and TE", Head({{"transfer-encoding", "chunked"}, {"content-length", "5"}}), 400},
      {"TE on HTTP/1.0", Head({{"transfer-encoding", "chunked"}}, 0), 400},
      {"gzip, chunked", Head({{"transfer-encoding", "gzip, chunked"}}), 501},
      {"xchunked", Head({{"transfer-encoding", "xchunked"}}), 501},
      {"chunked;x=1", Head({{"transfer-encoding", "chunked;x=1"}}), 501},
      {"identity", Head({{"transfer-encoding", "identity"}}), 501},
      {"chunked, gzip", Head({{"transfer-encoding", "chunked, gzip"}}), 501},
      {"chunked twice", Head({{"transfer-encoding", "chunked, chunked"}}), 400},
      {"chunked,", Head({{"transfer-encoding", "chunked,"}}), 400},
      {"empty TE", Head({{"transfer-encoding", ""}}), 400},
  };
  for (const auto& c : cases) {
    auto r = DecideBodyFraming(c.head, 100);
    if (c.status != 0) {
      ASSERT_TRUE(std::holds_alternative<Refusal>(r)) << c.name;
      EXPECT_EQ(std::get<Refusal>(r).status, c.status) << c.name;
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<BodyFraming>(r))
        << c.name << ": " << std::get<Refusal>(r).message;
    EXPECT_EQ(std::get<BodyFraming>(r).kind, c.kind) << c.name;
    EXPECT_EQ(std::get<BodyFraming>(r).length, c.length) << c.name;
  }
}

TEST(WantsKeepAliveTest, Table) {
  EXPECT_TRUE(WantsKeepAlive(Head({})));
  EXPECT_FALSE(WantsKeepAlive(Head({{"connection", "close"}})));
  EXPECT_FALSE(WantsKeepAlive(Head({{"connection", "TE, Close"}})));
  EXPECT_FALSE(WantsKeepAlive(Head({}, 0)));
  EXPECT_TRUE(WantsKeepAlive(Head({{"connection", "Keep-Alive"}}, 0)));
  EXPECT_FALSE(WantsKeepAlive(Head({{"connection", "keep-alive, close"}}, 0)));
}

TEST(ParseChunkSizeLineTest, Table) {
  struct Case {
    std::string line;
    int64_t size;  // -1 = refused (400)
  } cases[] = {
      {"0", 0},
      {"10", 16},
      {"fF", 255},
      {"0010", 16},
      {"ffffffffffffffff", -2},  // 16 digits: accepted, the caller compares with its limits
      {"10;name=value", 16},
      {"10 ; name", 16},
      {"10;a=\"quoted\";b", 16},
      {"0x10", -1},
      {"-1", -1},
      {"+1", -1},
      {"", -1},
      {" 10", -1},
      {"10 ", -1},
      {"1 0", -1},
      {"zz", -1},
      {std::string(17, '0') + "1", -1},
      {std::string(20, 'f'), -1},
      {"00000000000000000010", -1},  // 20 digits, however small the value
      {"10;" + std::string(kMaxChunkLineBytes - 3, 'x'), 16},
      {"10;" + std::string(kMaxChunkLineBytes - 2, 'x'), -1},
      {"10;a\x01", -1},
      {"10;a\nb", -1},
  };
  for (const auto& c : cases) {
    auto r = ParseChunkSizeLine(c.line);
    const std::string name = c.line.substr(0, 40);
    if (c.size == -1) {
      ASSERT_TRUE(std::holds_alternative<Refusal>(r)) << name;
      EXPECT_EQ(std::get<Refusal>(r).status, 400) << name;
    } else if (c.size == -2) {
      ASSERT_TRUE(std::holds_alternative<uint64_t>(r)) << name;
      EXPECT_EQ(std::get<uint64_t>(r), UINT64_MAX);
    } else {
      ASSERT_TRUE(std::holds_alternative<uint64_t>(r)) << name;
      EXPECT_EQ(std::get<uint64_t>(r), static_cast<uint64_t>(c.size)) << name;
    }
  }
}

TEST(CheckTrailerLineTest, Table) {
  EXPECT_FALSE(CheckTrailerLine("X-Checksum: abc"));
  EXPECT_FALSE(CheckTrailerLine("X:"));
  EXPECT_TRUE(CheckTrailerLine(" folded"));
  EXPECT_TRUE(CheckTrailerLine("no colon"));
  EXPECT_TRUE(CheckTrailerLine("X : y"));
  EXPECT_TRUE(CheckTrailerLine("X: a\rb"));
}

}  // namespace
}  // namespace kpc::net
