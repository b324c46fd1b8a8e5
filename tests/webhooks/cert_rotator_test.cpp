// Self-managed certificates: the pure plan (bootstrap, renewal, CA rotation in two steps) and
// CertRotator against an in-memory API server, driven by a fake clock.

#include "webhooks/cert_rotator.h"

#include <gtest/gtest.h>

#include "tests/kube/fake_client.h"

namespace kpc::webhooks {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kDay = 86400;
const char* kSecret =
    "/api/v1/namespaces/kubelet-policy-system/secrets/kubelet-policy-controller-webhook-tls";
const char* kVwc =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
    "kubelet-policy-controller";
const char* kMwc =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kubelet-policy-controller";

CertSettings Settings() {
  CertSettings s;
  s.hosts = {"svc.ns.svc", "127.0.0.1"};
  s.ca_validity_seconds = 300 * kDay;
  s.cert_validity_seconds = 30 * kDay;
  return s;
}

std::vector<std::string> Fingerprints(const std::string& pem) {
  std::vector<std::string> out;
  auto certs = ParseCertificates(pem);
  if (certs.ok()) {
    for (const auto& c : *certs) out.push_back(c.fingerprint);
  }
  return out;
}

TEST(PlanCertificatesTest, BootstrapIssuesCaAndServingCertAtOnce) {
  auto plan = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_FALSE(plan->waiting_for_propagation);
  EXPECT_FALSE(plan->reasons.empty());
  EXPECT_EQ(Fingerprints(plan->next.ca_bundle).size(), 1u);
  EXPECT_TRUE(CheckKeyPair(plan->next.ca_bundle, plan->next.ca_key).ok());
  EXPECT_TRUE(CheckKeyPair(plan->next.tls_cert, plan->next.tls_key).ok());
  EXPECT_TRUE(
      VerifyServingCert(plan->next.tls_cert, plan->next.ca_bundle, "svc.ns.svc", kNow).ok());
  EXPECT_TRUE(VerifyServingCert(plan->next.tls_cert, plan->next.ca_bundle, "127.0.0.1", kNow).ok());
}

TEST(PlanCertificatesTest, ValidStateIsLeftAlone) {
  auto first = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(first.ok());
  auto again =
      PlanCertificates({first->next, first->next.ca_bundle, false, kNow + kDay}, Settings());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->next, first->next);
  EXPECT_TRUE(again->reasons.empty());
}

TEST(PlanCertificatesTest, ServingCertRenewedUnderSameCaWithoutWaiting) {
  auto first = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(first.ok());
  // 30-day certificate: with less than a third (10 days) left it is renewed.
  const int64_t later = kNow + 21 * kDay;
  auto plan = PlanCertificates({first->next, first->next.ca_bundle, true, later}, Settings());
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->next.ca_bundle, first->next.ca_bundle);
  EXPECT_NE(plan->next.tls_cert, first->next.tls_cert);
  EXPECT_EQ(ParseCertificates(plan->next.tls_cert)->front().not_after, later + 30 * kDay);
}

TEST(PlanCertificatesTest, CaRotationAddsNewCaFirstAndWaitsBeforeSwitchingTheServingCert) {
  auto first = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(first.ok());
  const std::string old_ca = Fingerprints(first->next.ca_bundle).front();
  // 300-day CA: renewed with less than 100 days left. Serving certificate still fine.
  const int64_t t = kNow + 201 * kDay;
  WebhookCerts cur = first->next;
  // Keep the serving certificate valid at t (re-issued under the old CA near t).
  auto leaf = GenerateServingCert({first->next.ca_bundle, first->next.ca_key}, Settings().hosts,
                                  t - kDay, 30 * kDay);
  ASSERT_TRUE(leaf.ok());
  cur.tls_cert = leaf->cert_pem;
  cur.tls_key = leaf->key_pem;

  // Step 1: new CA in front, old CA kept, serving pair unchanged (not propagated yet).
  auto step1 = PlanCertificates({cur, cur.ca_bundle, false, t}, Settings());
  ASSERT_TRUE(step1.ok());
  auto fps = Fingerprints(step1->next.ca_bundle);
  ASSERT_EQ(fps.size(), 2u);
  EXPECT_NE(fps[0], old_ca);
  EXPECT_EQ(fps[1], old_ca);
  EXPECT_TRUE(CheckKeyPair(step1->next.ca_bundle, step1->next.ca_key).ok());
  EXPECT_EQ(step1->next.tls_cert, cur.tls_cert);
  EXPECT_TRUE(step1->waiting_for_propagation);
  // The served certificate stays trusted by the new bundle.
  EXPECT_TRUE(VerifyServingCert(cur.tls_cert, step1->next.ca_bundle, "svc.ns.svc", t).ok());

  // Still not propagated: nothing changes.
  auto waiting = PlanCertificates({step1->next, step1->next.ca_bundle, false, t + 1}, Settings());
  ASSERT_TRUE(waiting.ok());
  EXPECT_EQ(waiting->next, step1->next);

  // Step 2: once the configurations carry the new CA, the serving certificate switches to it.
  auto step2 = PlanCertificates({step1->next, step1->next.ca_bundle, true, t + 10}, Settings());
  ASSERT_TRUE(step2.ok());
  EXPECT_EQ(step2->next.ca_bundle, step1->next.ca_bundle);
  EXPECT_NE(step2->next.tls_cert, cur.tls_cert);
  const std::string new_ca_pem = ParseCertificates(step2->next.ca_bundle)->front().pem;
  EXPECT_TRUE(VerifyServingCert(step2->next.tls_cert, new_ca_pem, "svc.ns.svc", t + 10).ok());

  // The old CA leaves the bundle only once it expired.
  auto before =
      PlanCertificates({step2->next, step2->next.ca_bundle, true, kNow + 299 * kDay}, Settings());
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(Fingerprints(before->next.ca_bundle).size(), 2u);
  auto after = PlanCertificates({step2->next, step2->next.ca_bundle, true, kNow + 300 * kDay + 1},
                                Settings());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Fingerprints(after->next.ca_bundle), std::vector<std::string>{fps[0]});
}

TEST(PlanCertificatesTest, DeletedSecretKeepsTheConfiguredCaAndWaits) {
  auto first = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(first.ok());
  // The Secret is gone; the configurations still trust the old CA, which replicas serve under.
  auto plan = PlanCertificates({{}, first->next.ca_bundle, false, kNow + 60}, Settings());
  ASSERT_TRUE(plan.ok());
  auto fps = Fingerprints(plan->next.ca_bundle);
  ASSERT_EQ(fps.size(), 2u);
  EXPECT_EQ(fps[1], Fingerprints(first->next.ca_bundle)[0]);
  EXPECT_TRUE(plan->next.tls_cert.empty());
  EXPECT_TRUE(plan->waiting_for_propagation);
}

TEST(PlanCertificatesTest, BrokenServingCertIsReplacedAtOnce) {
  auto first = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(first.ok());
  WebhookCerts cur = first->next;
  auto stranger = GenerateCa("stranger", kNow, kDay);
  auto bad = GenerateServingCert(*stranger, Settings().hosts, kNow, kDay);
  cur.tls_cert = bad->cert_pem;
  cur.tls_key = bad->key_pem;
  auto plan = PlanCertificates({cur, cur.ca_bundle, false, kNow + 60}, Settings());
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->waiting_for_propagation);
  EXPECT_TRUE(
      VerifyServingCert(plan->next.tls_cert, plan->next.ca_bundle, "svc.ns.svc", kNow + 60).ok());
}

TEST(PlanCertificatesTest, NewHostsGetANewServingCert) {
  auto first = PlanCertificates({{}, "", false, kNow}, Settings());
  ASSERT_TRUE(first.ok());
  CertSettings s = Settings();
  s.hosts.push_back("localhost");
  auto plan = PlanCertificates({first->next, first->next.ca_bundle, true, kNow + 1}, s);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->next.tls_cert, first->next.tls_cert);
  EXPECT_EQ(plan->next.ca_bundle, first->next.ca_bundle);
  EXPECT_TRUE(
      VerifyServingCert(plan->next.tls_cert, plan->next.ca_bundle, "localhost", kNow + 1).ok());
}

json Configuration(const char* kind, const char* name) {
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", kind},
          {"metadata", {{"name", "kubelet-policy-controller"}}},
          {"webhooks",
           {{{"name", name},
             {"clientConfig",
              {{"service",
                {{"name", "kubelet-policy-controller-webhook"},
                 {"namespace", "kubelet-policy-system"},
                 {"path", std::string("/") + (kind[0] == 'V' ? "validate" : "mutate") +
                              "-kubeletpolicy"}}}}}}}}};
}

std::string Decode(const json& v) { return Base64Decode(v.get<std::string>()).value_or("?"); }

class CertRotatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kube_.Put(kVwc, Configuration("ValidatingWebhookConfiguration", "validate.kubeletpolicy.io"));
    kube_.Put(kMwc, Configuration("MutatingWebhookConfiguration", "mutate.kubeletpolicy.io"));
  }
  CertRotatorOptions Options(std::string url_base = "") {
    CertRotatorOptions o;
    o.settings = Settings();
    o.propagation_delay = std::chrono::seconds(5);
    o.url_base = std::move(url_base);
    return o;
  }
  json SecretData() { return kube_.Object(kSecret).value()["data"]; }

  int64_t Now() const { return clock_.UnixSeconds(); }

  kube::testing::FakeKube kube_;
  FakeClock clock_{kNow};
};

TEST_F(CertRotatorTest, BootstrapWritesSecretAndInjectsBundleIntoBothConfigurations) {
  CertRotator r(kube_, clock_, Options());
  ASSERT_TRUE(r.SyncOnce().ok());
  json data = SecretData();
  const std::string bundle = Decode(data["ca.crt"]);
  EXPECT_TRUE(VerifyServingCert(Decode(data["tls.crt"]), bundle, "svc.ns.svc", Now()).ok());
  for (const char* path : {kVwc, kMwc}) {
    json cc = kube_.Object(path).value()["webhooks"][0]["clientConfig"];
    EXPECT_EQ(Decode(cc["caBundle"]), bundle) << path;
    EXPECT_TRUE(cc.contains("service")) << "in-cluster mode keeps the Service";
  }
  auto pair = r.ReadServingPair();
  ASSERT_TRUE(pair.ok());
  ASSERT_TRUE(pair->has_value());
  EXPECT_EQ((*pair)->cert_pem, Decode(data["tls.crt"]));

  // A second pass with nothing due writes nothing.
  auto calls = kube_.Calls().size();
  ASSERT_TRUE(r.SyncOnce().ok());
  for (size_t i = calls; i < kube_.Calls().size(); ++i) {
    EXPECT_EQ(kube_.Calls()[i].rfind("GET", 0), 0u) << kube_.Calls()[i];
  }
}

// The hook the webhook process records its Event with: called once per Secret write, with
// the plan's reasons, and never when nothing changes.
TEST_F(CertRotatorTest, SecretWritesAreReportedWithTheirReasons) {
  std::vector<std::vector<std::string>> reported;
  CertRotatorOptions o = Options();
  o.on_secret_written = [&reported](const std::vector<std::string>& reasons) {
    reported.push_back(reasons);
  };
  CertRotator r(kube_, clock_, o);
  ASSERT_TRUE(r.SyncOnce().ok());
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_FALSE(reported[0].empty());
  ASSERT_TRUE(r.SyncOnce().ok());
  EXPECT_EQ(reported.size(), 1u) << "nothing was due: nothing written, nothing reported";

  // A renewal is reported; a write that fails is not.
  kube_.SetHook([](const std::string& verb, const std::string& path, const std::string&,
                   const json&) -> std::optional<kube::Result> {
    if (verb == "PUT" && path.find("/secrets/") != std::string::npos) {
      return kube::testing::ErrorResult(409, "Conflict", "the object has been modified");
    }
    return std::nullopt;
  });
  clock_.Advance(std::chrono::seconds(25 * kDay));  // serving certificates last 30 days
  EXPECT_FALSE(r.SyncOnce().ok());
  EXPECT_EQ(reported.size(), 1u);
  kube_.SetHook(nullptr);
  ASSERT_TRUE(r.SyncOnce().ok());
  ASSERT_EQ(reported.size(), 2u);
  EXPECT_FALSE(reported[1].empty());
}

TEST_F(CertRotatorTest, LocalModePointsWebhooksAtTheUrl) {
  CertRotator r(kube_, clock_, Options("https://127.0.0.1:9443"));
  ASSERT_TRUE(r.SyncOnce().ok());
  json v = kube_.Object(kVwc).value()["webhooks"][0]["clientConfig"];
  json m = kube_.Object(kMwc).value()["webhooks"][0]["clientConfig"];
  EXPECT_EQ(v["url"], "https://127.0.0.1:9443/validate-kubeletpolicy");
  EXPECT_EQ(m["url"], "https://127.0.0.1:9443/mutate-kubeletpolicy");
  EXPECT_FALSE(v.contains("service"));
}

TEST_F(CertRotatorTest, ForcedRotationByDeletingTheSecretNeverServesAnUntrustedCert) {
  CertRotator r(kube_, clock_, Options());
  ASSERT_TRUE(r.SyncOnce().ok());
  const std::string old_tls = Decode(SecretData()["tls.crt"]);
  ASSERT_TRUE(kube_.Delete(kSecret, "").ok());

  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(r.SyncOnce().ok());
  // New CA in front of the bundle, old CA kept; no serving pair yet (replicas keep the old).
  json cc = kube_.Object(kVwc).value()["webhooks"][0]["clientConfig"];
  const std::string bundle = Decode(cc["caBundle"]);
  EXPECT_EQ(Fingerprints(bundle).size(), 2u);
  EXPECT_TRUE(VerifyServingCert(old_tls, bundle, "svc.ns.svc", Now()).ok());
  auto pair = r.ReadServingPair();
  ASSERT_TRUE(pair.ok());
  EXPECT_FALSE(pair->has_value());

  clock_.Advance(std::chrono::seconds(2));  // less than the propagation delay
  ASSERT_TRUE(r.SyncOnce().ok());
  EXPECT_TRUE(Decode(SecretData()["tls.crt"]).empty());

  clock_.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(r.SyncOnce().ok());
  const std::string new_tls = Decode(SecretData()["tls.crt"]);
  ASSERT_FALSE(new_tls.empty());
  EXPECT_NE(new_tls, old_tls);
  // Both the old and the new serving certificates are trusted by what the API server has.
  const std::string configured =
      Decode(kube_.Object(kMwc).value()["webhooks"][0]["clientConfig"]["caBundle"]);
  EXPECT_TRUE(VerifyServingCert(new_tls, configured, "svc.ns.svc", Now()).ok());
  EXPECT_TRUE(VerifyServingCert(old_tls, configured, "svc.ns.svc", Now()).ok());
}

TEST_F(CertRotatorTest, NewServingCertWaitsExactlyThePropagationDelay) {
  CertRotator r(kube_, clock_, Options());
  ASSERT_TRUE(r.SyncOnce().ok());
  ASSERT_TRUE(kube_.Delete(kSecret, "").ok());
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(r.SyncOnce().ok());  // the new CA reaches the configurations now
  clock_.Advance(std::chrono::seconds(4));
  ASSERT_TRUE(r.SyncOnce().ok());
  EXPECT_TRUE(Decode(SecretData()["tls.crt"]).empty()) << "4 s of the 5 s delay";
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(r.SyncOnce().ok());
  const std::string tls = Decode(SecretData()["tls.crt"]);
  ASSERT_FALSE(tls.empty());
  EXPECT_TRUE(VerifyServingCert(tls, Decode(SecretData()["ca.crt"]), "svc.ns.svc", Now()).ok());
}

TEST_F(CertRotatorTest, ServingCertIsRenewedAsTheClockNearsItsExpiry) {
  CertRotator r(kube_, clock_, Options());  // serving certificates last 30 days
  ASSERT_TRUE(r.SyncOnce().ok());
  const std::string first = Decode(SecretData()["tls.crt"]);
  const std::string bundle = Decode(SecretData()["ca.crt"]);
  clock_.Advance(std::chrono::seconds(19 * kDay));
  ASSERT_TRUE(r.SyncOnce().ok());
  EXPECT_EQ(Decode(SecretData()["tls.crt"]), first) << "more than a third of its lifetime left";
  clock_.Advance(std::chrono::seconds(2 * kDay));
  ASSERT_TRUE(r.SyncOnce().ok());
  const std::string renewed = Decode(SecretData()["tls.crt"]);
  EXPECT_NE(renewed, first) << "renewed under the same CA without waiting for propagation";
  EXPECT_EQ(Decode(SecretData()["ca.crt"]), bundle);
  EXPECT_TRUE(VerifyServingCert(renewed, bundle, "svc.ns.svc", Now()).ok());
}

TEST_F(CertRotatorTest, ApiErrorsAreReturned) {
  kube_.SetHook([](const std::string& verb, const std::string& path, const std::string&,
                   const json&) -> std::optional<kube::Result> {
    if (verb == "GET" && path.find("/secrets/") != std::string::npos) {
      return kube::testing::ErrorResult(403, "Forbidden", "secrets is forbidden");
    }
    return std::nullopt;
  });
  CertRotator r(kube_, clock_, Options());
  Status s = r.SyncOnce();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("kubelet-policy-controller-webhook-tls"), std::string::npos)
      << s.message();
}

TEST(Base64Test, RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "-----BEGIN CERTIFICATE-----\n\x01\xff"}) {
    auto enc = Base64Encode(s);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_FALSE(Base64Decode("abc").has_value());
}

}  // namespace
}  // namespace kpc::webhooks
