#include "policy/units.h"

#include <gtest/gtest.h>

#include <string>

namespace kpc::policy {
namespace {

constexpr int64_t kS = 1'000'000'000;

TEST(GoDurationTest, ZeroSpellingsAreEqual) {
  for (const char* z : {"0", "0s", "0h0m0s", "0m", "-0s", "0.0s"}) {
    auto d = ParseGoDuration(z);
    ASSERT_TRUE(d.has_value()) << z;
    EXPECT_EQ(*d, 0) << z;
  }
  EXPECT_EQ(DurationFromJson(nlohmann::json(0)), 0);
  EXPECT_EQ(DurationFromJson(nlohmann::json("0")), 0);
}

TEST(GoDurationTest, ParsesCompoundAndFractional) {
  EXPECT_EQ(ParseGoDuration("4h"), 4 * 3600 * kS);
  EXPECT_EQ(ParseGoDuration("4h0m0s"), 4 * 3600 * kS);
  EXPECT_EQ(ParseGoDuration("1h30m"), 5400 * kS);
  EXPECT_EQ(ParseGoDuration("90s"), 90 * kS);
  EXPECT_EQ(ParseGoDuration("1.5h"), 5400 * kS);
  EXPECT_EQ(ParseGoDuration("300ms"), 300'000'000);
  EXPECT_EQ(ParseGoDuration("2us"), 2000);
  EXPECT_EQ(ParseGoDuration("2\xC2\xB5s"), 2000);
  EXPECT_EQ(ParseGoDuration("-2m"), -120 * kS);
  EXPECT_GT(*ParseGoDuration("1h30m"), *ParseGoDuration("90s"));
}

TEST(GoDurationTest, RejectsNonDurations) {
  for (const char* bad : {"", "5", "abc", "5 minutes", "1d", "h", "1h30", ".s", "1.2.3s", "--1s"}) {
    EXPECT_FALSE(ParseGoDuration(bad).has_value()) << bad;
  }
  EXPECT_FALSE(DurationFromJson(nlohmann::json(5)).has_value());
  EXPECT_FALSE(DurationFromJson(nlohmann::json(true)).has_value());
}

TEST(GoDurationTest, FormatsLikeGo) {
  EXPECT_EQ(FormatGoDuration(0), "0s");
  EXPECT_EQ(FormatGoDuration(4 * 3600 * kS), "4h0m0s");
  EXPECT_EQ(FormatGoDuration(90 * kS), "1m30s");
  EXPECT_EQ(FormatGoDuration(10 * kS), "10s");
  EXPECT_EQ(FormatGoDuration(1500'000'000), "1.5s");
  EXPECT_EQ(FormatGoDuration(300'000'000), "300ms");
  EXPECT_EQ(FormatGoDuration(-120 * kS), "-2m0s");
}

TEST(QuantityTest, ParsesSuffixes) {
  EXPECT_EQ(*ParseQuantity("100Mi"), 100.0L * 1024 * 1024);
  EXPECT_EQ(*ParseQuantity("1Gi"), 1024.0L * 1024 * 1024);
  EXPECT_EQ(*ParseQuantity("1G"), 1e9L);
  EXPECT_EQ(*ParseQuantity("500m"), 0.5L);
  EXPECT_EQ(*ParseQuantity("2k"), 2000.0L);
  EXPECT_EQ(*ParseQuantity("1e3"), 1000.0L);
  EXPECT_EQ(*ParseQuantity("42"), 42.0L);
  EXPECT_EQ(*QuantityFromJson(nlohmann::json(7)), 7.0L);
  EXPECT_GT(*ParseQuantity("1Gi"), *ParseQuantity("1000Mi"));
}

TEST(QuantityTest, RejectsGarbage) {
  for (const char* bad : {"", "Mi", "10%", "1Zi", "abc", "1.2.3", "1e"}) {
    EXPECT_FALSE(ParseQuantity(bad).has_value()) << bad;
  }
}

TEST(Rfc3339Test, ParsesAndRefusesHugeFractionsWithoutCrashing) {
  EXPECT_EQ(ParseRfc3339("2027-01-31T00:00:00Z"), 1801353600);
  EXPECT_EQ(ParseRfc3339("2027-01-31T02:00:00.123456789+02:00"), 1801353600);
  // std::regex would recurse once per digit of this fraction.
  EXPECT_EQ(ParseRfc3339("2027-01-31T00:00:00." + std::string(200000, '1') + "Z"), std::nullopt);
  EXPECT_EQ(ParseRfc3339("soon"), std::nullopt);
}

}  // namespace
}  // namespace kpc::policy
