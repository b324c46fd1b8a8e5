#include "kube/token_source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fake_client.h"

namespace kpc::kube {
namespace {

using nlohmann::json;
using std::chrono::seconds;

class ServiceAccountTokenSourceTest : public ::testing::Test {
 protected:
  ServiceAccountTokenSourceTest() {
    kube_.SetHook([this](const std::string& verb, const std::string& path, const std::string&,
                         const json& body) -> std::optional<Result> {
      requests_.push_back(verb + " " + path);
      bodies_.push_back(body);
      if (fail_) return testing::ErrorResult(403, "Forbidden", "cannot create serviceaccounts/token");
      json out = body;
      out["spec"]["expirationSeconds"] = granted_seconds_;
      out["status"] = {{"token", "tok-" + std::to_string(requests_.size())},
                       {"expirationTimestamp", "2026-11-30T00:10:00Z"}};
      return testing::Ok(out);
    });
  }
  std::string Token() {
    auto t = source_->Token();
    return t.ok() ? *t : "error: " + t.status().message();
  }

  FakeClock clock_;
  testing::FakeKube kube_;
  std::vector<std::string> requests_;
  std::vector<json> bodies_;
  bool fail_ = false;
  int64_t granted_seconds_ = 600;
  std::unique_ptr<TokenSource> source_ =
      NewServiceAccountTokenSource(kube_, clock_, {"kps", "reader", seconds(600)});
};

TEST_F(ServiceAccountTokenSourceTest, RequestsOnceAndRenewsAfterFourFifthsOfTheLifetime) {
  EXPECT_EQ(Token(), "tok-1");
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], "POST /api/v1/namespaces/kps/serviceaccounts/reader/token");
  EXPECT_EQ(bodies_[0]["kind"], "TokenRequest");
  EXPECT_EQ(bodies_[0]["spec"]["expirationSeconds"], 600);
  clock_.Advance(seconds(479));
  EXPECT_EQ(Token(), "tok-1");
  EXPECT_EQ(requests_.size(), 1u);
  clock_.Advance(seconds(1));  // 480 s = 80% of 600
  EXPECT_EQ(Token(), "tok-2");
  EXPECT_EQ(source_->Describe(), "ServiceAccount kps/reader");
}

TEST_F(ServiceAccountTokenSourceTest, TheGrantedLifetimeCounts) {
  granted_seconds_ = 3600;  // the API server may extend it
  EXPECT_EQ(Token(), "tok-1");
  clock_.Advance(seconds(2879));
  EXPECT_EQ(Token(), "tok-1");
  clock_.Advance(seconds(1));
  EXPECT_EQ(Token(), "tok-2");
}

TEST_F(ServiceAccountTokenSourceTest, FailuresSayWhatToGrantAndAreNotRepeatedForTenSeconds) {
  fail_ = true;
  const std::string err = Token();
  EXPECT_NE(err.find("cannot get a token for ServiceAccount kps/reader"), std::string::npos) << err;
  EXPECT_NE(err.find("grant `create serviceaccounts/token`"), std::string::npos) << err;
  EXPECT_EQ(Token(), err);
  EXPECT_EQ(requests_.size(), 1u);
  clock_.Advance(seconds(10));
  fail_ = false;
  EXPECT_EQ(Token(), "tok-2");
}

TEST_F(ServiceAccountTokenSourceTest, AFailedRenewalKeepsTheTokenUntilItExpires) {
  EXPECT_EQ(Token(), "tok-1");
  fail_ = true;
  clock_.Advance(seconds(500));
  EXPECT_EQ(Token(), "tok-1");
  clock_.Advance(seconds(99));  // 599 s: still valid
  EXPECT_EQ(Token(), "tok-1");
  clock_.Advance(seconds(1));  // expired, and the renewal still fails
  EXPECT_NE(Token().find("error: cannot get a token"), std::string::npos);
}

TEST_F(ServiceAccountTokenSourceTest, InvalidateFetchesANewToken) {
  EXPECT_EQ(Token(), "tok-1");
  source_->Invalidate();
  EXPECT_EQ(Token(), "tok-2");
  EXPECT_EQ(Token(), "tok-2");
}

TEST_F(ServiceAccountTokenSourceTest, AnAnswerWithoutATokenIsAnError) {
  kube_.SetHook([](const std::string&, const std::string&, const std::string&,
                   const json&) -> std::optional<Result> { return testing::Ok(json{{"status", {}}}); });
  EXPECT_NE(Token().find("returned no usable token"), std::string::npos);
}

TEST(TokenRenewAtTest, FourFifths) {
  const std::chrono::steady_clock::time_point t0{};
  EXPECT_EQ(TokenRenewAt(t0, seconds(600)) - t0, seconds(480));
  EXPECT_EQ(TokenRenewAt(t0, seconds(3600)) - t0, seconds(2880));
}

TEST(ClientConfigTokenSourceTest, StaticTokenOrAFileReReadEveryMinuteAndAfterInvalidate) {
  FakeClock clock;
  ClientConfig cfg;
  cfg.bearer_token = "static";
  EXPECT_EQ(*NewClientConfigTokenSource(cfg, clock)->Token(), "static");

  const auto dir = std::filesystem::temp_directory_path() / ("kpc-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = (dir / "token").string();
  auto write = [&](const std::string& s) { std::ofstream(file) << s; };
  write("one\n");
  cfg.bearer_token_file = file;
  auto source = NewClientConfigTokenSource(cfg, clock);
  EXPECT_EQ(*source->Token(), "one");
  write("two\n");
  EXPECT_EQ(*source->Token(), "one");
  clock.Advance(seconds(60));
  EXPECT_EQ(*source->Token(), "two");
  write("three");
  source->Invalidate();
  EXPECT_EQ(*source->Token(), "three");
  std::filesystem::remove(file);  // unreadable: keep the last one
  source->Invalidate();
  EXPECT_EQ(*source->Token(), "three");
  EXPECT_EQ(source->Describe(), "the token in " + file);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kpc::kube
