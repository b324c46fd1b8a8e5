// Certificates made with OpenSSL: validity, SANs, chains, key pairs, the renewal decision.

#include "webhooks/certs.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace kpc::webhooks {
namespace {

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15
constexpr int64_t kDay = 86400;

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(CertsTest, CaIsSelfSignedCaWithRequestedValidity) {
  auto ca = GenerateCa("test-ca", kNow, 365 * kDay);
  ASSERT_TRUE(ca.ok()) << ca.status().message();
  auto certs = ParseCertificates(ca->cert_pem);
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 1u);
  const CertInfo& c = certs->front();
  EXPECT_TRUE(c.is_ca);
  EXPECT_EQ(c.subject_cn, "test-ca");
  EXPECT_EQ(c.issuer_cn, "test-ca");
  EXPECT_EQ(c.not_after, kNow + 365 * kDay);
  EXPECT_EQ(c.not_before, kNow - 3600);  // backdated for clock skew
  EXPECT_TRUE(CheckKeyPair(ca->cert_pem, ca->key_pem).ok());
  EXPECT_EQ(c.fingerprint.size(), 64u);
}

TEST(CertsTest, ServingCertHasSansAndChainsToItsCa) {
  auto ca = GenerateCa("ca", kNow, 10 * 365 * kDay);
  ASSERT_TRUE(ca.ok());
  auto hosts = ServiceHostNames("kubelet-policy-controller-webhook", "kubelet-policy-system");
  hosts.push_back("127.0.0.1");
  auto leaf = GenerateServingCert(*ca, hosts, kNow, 30 * kDay);
  ASSERT_TRUE(leaf.ok()) << leaf.status().message();
  auto info = ParseCertificates(leaf->cert_pem);
  ASSERT_TRUE(info.ok());
  const CertInfo& c = info->front();
  EXPECT_FALSE(c.is_ca);
  EXPECT_EQ(c.subject_cn, "kubelet-policy-controller-webhook.kubelet-policy-system.svc");
  EXPECT_TRUE(Has(c.dns_names, "kubelet-policy-controller-webhook.kubelet-policy-system.svc"));
  EXPECT_TRUE(Has(c.dns_names,
                  "kubelet-policy-controller-webhook.kubelet-policy-system.svc.cluster.local"));
  EXPECT_TRUE(Has(c.ip_addresses, "127.0.0.1"));
  EXPECT_FALSE(Has(c.dns_names, "127.0.0.1"));
  EXPECT_EQ(c.not_after, kNow + 30 * kDay);
  EXPECT_TRUE(CheckKeyPair(leaf->cert_pem, leaf->key_pem).ok());
  EXPECT_FALSE(CheckKeyPair(leaf->cert_pem, ca->key_pem).ok());

  const std::string svc = "kubelet-policy-controller-webhook.kubelet-policy-system.svc";
  EXPECT_TRUE(VerifyServingCert(leaf->cert_pem, ca->cert_pem, svc, kNow).ok());
  EXPECT_TRUE(VerifyServingCert(leaf->cert_pem, ca->cert_pem, "127.0.0.1", kNow).ok());
  EXPECT_FALSE(VerifyServingCert(leaf->cert_pem, ca->cert_pem, "other.example", kNow).ok());
  EXPECT_FALSE(VerifyServingCert(leaf->cert_pem, ca->cert_pem, "127.0.0.2", kNow).ok());
  // Expired, and not yet valid (beyond the backdating).
  EXPECT_FALSE(VerifyServingCert(leaf->cert_pem, ca->cert_pem, svc, kNow + 31 * kDay).ok());
  EXPECT_FALSE(VerifyServingCert(leaf->cert_pem, ca->cert_pem, svc, kNow - 2 * 3600).ok());
  // Another CA does not vouch for it; a bundle holding both does.
  auto other = GenerateCa("other", kNow, 365 * kDay);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(VerifyServingCert(leaf->cert_pem, other->cert_pem, svc, kNow).ok());
  EXPECT_TRUE(VerifyServingCert(leaf->cert_pem, other->cert_pem + ca->cert_pem, svc, kNow).ok());
}

TEST(CertsTest, ServingCertNeverOutlivesItsCa) {
  auto ca = GenerateCa("ca", kNow, 10 * kDay);
  ASSERT_TRUE(ca.ok());
  auto leaf = GenerateServingCert(*ca, {"localhost"}, kNow, 365 * kDay);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(ParseCertificates(leaf->cert_pem)->front().not_after, kNow + 10 * kDay);
}

TEST(CertsTest, BadInputsAreErrorsNotCrashes) {
  EXPECT_FALSE(GenerateCa("x", kNow, 0).ok());
  auto ca = GenerateCa("ca", kNow, kDay);
  ASSERT_TRUE(ca.ok());
  EXPECT_FALSE(GenerateServingCert(*ca, {}, kNow, kDay).ok());
  EXPECT_FALSE(GenerateServingCert({"garbage", "garbage"}, {"a"}, kNow, kDay).ok());
  auto other = GenerateCa("other", kNow, kDay);
  EXPECT_FALSE(GenerateServingCert({ca->cert_pem, other->key_pem}, {"a"}, kNow, kDay).ok());
  EXPECT_FALSE(ParseCertificates("").ok());
  EXPECT_FALSE(
      ParseCertificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
  // One good certificate followed by a broken one is an error, not a silent truncation.
  EXPECT_FALSE(ParseCertificates(ca->cert_pem +
                                 "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                   .ok());
  EXPECT_FALSE(CheckKeyPair("nope", ca->key_pem).ok());
  EXPECT_FALSE(CheckKeyPair(ca->cert_pem, "nope").ok());
  EXPECT_FALSE(VerifyServingCert("nope", ca->cert_pem, "a", kNow).ok());
  EXPECT_FALSE(VerifyServingCert(ca->cert_pem, "", "a", kNow).ok());
}

TEST(CertsTest, BundleParsesEveryCertificateInOrder) {
  auto a = GenerateCa("a", kNow, kDay);
  auto b = GenerateCa("b", kNow, kDay);
  ASSERT_TRUE(a.ok() && b.ok());
  auto certs = ParseCertificates(a->cert_pem + b->cert_pem);
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ((*certs)[0].subject_cn, "a");
  EXPECT_EQ((*certs)[1].subject_cn, "b");
  EXPECT_NE((*certs)[0].fingerprint, (*certs)[1].fingerprint);
  EXPECT_EQ(JoinPem(*certs), a->cert_pem + b->cert_pem);
}

TEST(CertsTest, RenewalDecision) {
  CertInfo c;
  c.not_before = 0;
  c.not_after = 300;
  EXPECT_FALSE(NeedsRenewal(c, 0, 1.0 / 3));
  EXPECT_FALSE(NeedsRenewal(c, 199, 1.0 / 3));  // 101 s of 300 left: more than a third
  EXPECT_TRUE(NeedsRenewal(c, 201, 1.0 / 3));   // 99 s left
  EXPECT_TRUE(NeedsRenewal(c, 300, 1.0 / 3));   // expired
  EXPECT_TRUE(NeedsRenewal(c, -1, 1.0 / 3));    // not yet valid
  EXPECT_FALSE(NeedsRenewal(c, 280, 0.0));      // fraction 0: only at expiry
}

}  // namespace
}  // namespace kpc::webhooks
