#include "webhooks/cert_rotator.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace kpc::webhooks {
namespace {

using nlohmann::json;

constexpr const char* kValidatingPath =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/";
constexpr const char* kMutatingPath =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/";
// More than two CAs in a bundle only happens when rotations are forced in quick succession.
constexpr size_t kMaxBundleCas = 5;

std::vector<CertInfo> ParseOrEmpty(const std::string& pem) {
  if (pem.empty()) return {};
  auto certs = ParseCertificates(pem);
  return certs.ok() ? *certs : std::vector<CertInfo>{};
}

bool ValidCa(const CertInfo& c, int64_t now) {
  return c.is_ca && now >= c.not_before && now < c.not_after;
}

// The serving pair is usable as is: matching key, signed by `signing_ca_pem`, valid for every
// host now, and not due for renewal.
bool ServingOk(const WebhookCerts& cur, const std::string& signing_ca_pem, const CertSettings& s,
               int64_t now, std::string* why) {
  if (cur.tls_cert.empty() || cur.tls_key.empty()) {
    *why = "no serving certificate";
    return false;
  }
  if (Status st = CheckKeyPair(cur.tls_cert, cur.tls_key); !st.ok()) {
    *why = "serving certificate unusable: " + st.message();
    return false;
  }
  for (const auto& host : s.hosts) {
    if (Status st = VerifyServingCert(cur.tls_cert, signing_ca_pem, host, now); !st.ok()) {
      *why = "serving certificate not valid for " + host + " under the signing CA: " + st.message();
      return false;
    }
  }
  auto leaf = ParseCertificates(cur.tls_cert);
  if (!leaf.ok() || NeedsRenewal(leaf->front(), now, s.renew_fraction)) {
    *why = "serving certificate due for renewal";
    return false;
  }
  return true;
}

}  // namespace

std::string Base64Encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(std::max(n, 0)));
  return out;
}

std::optional<std::string> Base64Decode(const std::string& in) {
  std::string clean;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') clean += c;
  }
  if (clean.size() % 4 != 0) return std::nullopt;
  if (clean.empty()) return std::string();
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return std::nullopt;
  size_t pad =
      clean.size() >= 2 && clean[clean.size() - 2] == '=' ? 2 : (clean.back() == '=' ? 1 : 0);
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string FirstFingerprint(const std::string& pem) {
  auto certs = ParseOrEmpty(pem);
  return certs.empty() ? "" : certs.front().fingerprint;
}

StatusOr<Plan> PlanCertificates(const PlanInput& in, const CertSettings& s) {
  if (s.hosts.empty()) return InvalidArgument("no host names for the serving certificate");
  Plan plan;
  const int64_t now = in.now;
  std::vector<CertInfo> current_cas = ParseOrEmpty(in.current.ca_bundle);
  std::vector<CertInfo> configured_cas = ParseOrEmpty(in.configured_bundle);

  // 1. The signing CA.
  std::optional<CertInfo> signing;
  std::string signing_key = in.current.ca_key;
  if (!current_cas.empty()) {
    const CertInfo& first = current_cas.front();
    if (!ValidCa(first, now)) {
      plan.reasons.push_back("the CA is expired or not a CA");
    } else if (!CheckKeyPair(first.pem, in.current.ca_key).ok()) {
      plan.reasons.push_back("ca.key does not match the CA");
    } else if (NeedsRenewal(first, now, s.renew_fraction)) {
      plan.reasons.push_back("the CA is due for renewal (expires " +
                             std::to_string(first.not_after) + ")");
    } else {
      signing = first;
    }
  } else {
    plan.reasons.push_back("no CA yet");
  }
  if (!signing) {
    auto ca = GenerateCa("kubelet-policy-controller-webhook-ca", now, s.ca_validity_seconds);
    if (!ca.ok()) return ca.status();
    auto parsed = ParseCertificates(ca->cert_pem);
    if (!parsed.ok()) return parsed.status();
    signing = parsed->front();
    signing_key = ca->key_pem;
  }

  // 2. The bundle: the signing CA, then every other CA still valid (from the Secret and from
  //    the configurations), so that certificates already being served stay trusted.
  std::vector<CertInfo> bundle{*signing};
  std::set<std::string> seen{signing->fingerprint};
  for (const auto* list : {&current_cas, &configured_cas}) {
    for (const auto& c : *list) {
      if (bundle.size() >= kMaxBundleCas) break;
      if (ValidCa(c, now) && seen.insert(c.fingerprint).second) bundle.push_back(c);
    }
  }
  plan.next.ca_bundle = JoinPem(bundle);
  plan.next.ca_key = signing_key;

  // 3. The serving pair.
  std::string why;
  if (ServingOk(in.current, signing->pem, s, now, &why)) {
    plan.next.tls_cert = in.current.tls_cert;
    plan.next.tls_key = in.current.tls_key;
  } else {
    // Issue at once only when no caller can currently be verifying a served certificate
    // against a valid CA, or the certificate served now is already rejected by it: then
    // there is nothing to break. Otherwise the new CA must reach the API servers first.
    bool configured_valid = std::any_of(configured_cas.begin(), configured_cas.end(),
                                        [&](const CertInfo& c) { return ValidCa(c, now); });
    bool served_is_broken =
        !in.current.tls_cert.empty() &&
        !VerifyServingCert(in.current.tls_cert, in.configured_bundle, s.hosts.front(), now).ok();
    if (!configured_valid || served_is_broken || in.signing_ca_propagated) {
      auto pair =
          GenerateServingCert({signing->pem, signing_key}, s.hosts, now, s.cert_validity_seconds);
      if (!pair.ok()) return pair.status();
      plan.next.tls_cert = pair->cert_pem;
      plan.next.tls_key = pair->key_pem;
      plan.reasons.push_back(why + ": issued a new serving certificate");
    } else {
      plan.next.tls_cert = in.current.tls_cert;
      plan.next.tls_key = in.current.tls_key;
      plan.waiting_for_propagation = true;
      plan.reasons.push_back(
          why + ": a new serving certificate waits until the webhook configurations trust the CA");
    }
  }
  if (plan.next == in.current) plan.reasons.clear();
  return plan;
}

CertRotator::CertRotator(kube::Client& client, const Clock& clock, CertRotatorOptions options)
    : client_(client), options_(std::move(options)), clock_(clock) {}

StatusOr<WebhookCerts> CertRotator::ReadSecret(bool* exists, std::string* resource_version) {
  kube::Result r =
      client_.Get("/api/v1/namespaces/" + options_.ns + "/secrets/" + options_.secret_name);
  WebhookCerts out;
  *exists = false;
  if (!r.ok()) {
    if (r.status.code() == StatusCode::kNotFound) return out;
    return Status(r.status.code(), "reading Secret " + options_.ns + "/" + options_.secret_name +
                                       ": " + r.status.message());
  }
  *exists = true;
  *resource_version = r.body["metadata"].value("resourceVersion", "");
  const json data = r.body.value("data", json::object());
  auto field = [&](const char* key) {
    auto it = data.find(key);
    if (it == data.end() || !it->is_string()) return std::string();
    return Base64Decode(it->get<std::string>()).value_or("");
  };
  out.ca_bundle = field("ca.crt");
  out.ca_key = field("ca.key");
  out.tls_cert = field("tls.crt");
  out.tls_key = field("tls.key");
  return out;
}

Status CertRotator::WriteSecret(const WebhookCerts& c, bool exists,
                                const std::string& resource_version) {
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata",
                  {{"name", options_.secret_name},
                   {"namespace", options_.ns},
                   {"labels",
                    {{"app.kubernetes.io/name", "kubelet-policy-controller"},
                     {"app.kubernetes.io/component", "webhook"}}}}},
                 {"type", "Opaque"},
                 {"data",
                  {{"ca.crt", Base64Encode(c.ca_bundle)},
                   {"ca.key", Base64Encode(c.ca_key)},
                   {"tls.crt", Base64Encode(c.tls_cert)},
                   {"tls.key", Base64Encode(c.tls_key)}}}};
  const std::string dir = "/api/v1/namespaces/" + options_.ns + "/secrets";
  kube::Result r;
  if (exists) {
    secret["metadata"]["resourceVersion"] = resource_version;  // optimistic concurrency
    r = client_.Update(dir + "/" + options_.secret_name, secret);
  } else {
    r = client_.Create(dir, secret);
  }
  if (!r.ok()) {
    return Status(r.status.code(), std::string(exists ? "updating" : "creating") + " Secret " +
                                       options_.ns + "/" + options_.secret_name + ": " +
                                       r.status.message());
  }
  return Status::Ok();
}

Status CertRotator::InjectBundle(const std::string& kind_path, const std::string& bundle,
                                 bool* present, std::string* configured_bundle) {
  const std::string path = kind_path + options_.configuration_name;
  kube::Result r = client_.Get(path);
  *present = false;
  if (!r.ok()) {
    if (r.status.code() == StatusCode::kNotFound) return Status::Ok();
    return Status(r.status.code(), "reading " + path + ": " + r.status.message());
  }
  *present = true;
  json obj = r.body;
  const bool validating = kind_path == kValidatingPath;
  const std::string encoded = Base64Encode(bundle);
  bool changed = false;
  configured_bundle->clear();
  if (!obj.contains("webhooks") || !obj["webhooks"].is_array()) return Status::Ok();
  for (auto& wh : obj["webhooks"]) {
    json& cc = wh["clientConfig"];
    if (!cc.is_object()) cc = json::object();
    if (auto it = cc.find("caBundle"); it != cc.end() && it->is_string()) {
      *configured_bundle += Base64Decode(it->get<std::string>()).value_or("");
    }
    if (bundle.empty()) continue;  // read only
    if (cc.value("caBundle", "") != encoded) {
      cc["caBundle"] = encoded;
      changed = true;
    }
    if (!options_.url_base.empty()) {
      std::string webhook_path = validating ? kValidatingWebhookPath : kMutatingWebhookPath;
      if (cc.contains("service") && cc["service"].is_object() && cc["service"].contains("path")) {
        webhook_path = cc["service"]["path"].get<std::string>();
      }
      const std::string url = options_.url_base + webhook_path;
      if (cc.contains("service")) {
        cc.erase("service");
        changed = true;
      }
      if (cc.value("url", "") != url) {
        cc["url"] = url;
        changed = true;
      }
    }
  }
  if (!changed) return Status::Ok();
  kube::Result u = client_.Update(path, obj);  // carries the resourceVersion just read
  if (!u.ok()) return Status(u.status.code(), "updating " + path + ": " + u.status.message());
  spdlog::info("webhook configuration {}: caBundle{} updated", path,
               options_.url_base.empty() ? "" : " and URL");
  *configured_bundle = bundle;
  return Status::Ok();
}

Status CertRotator::SyncOnce() {
  const int64_t now = clock_.UnixSeconds();
  bool exists = false;
  std::string rv;
  auto current = ReadSecret(&exists, &rv);
  if (!current.ok()) return current.status();

  // What the configurations trust now (read only: an empty bundle writes nothing).
  std::string configured;
  bool any_present = false;
  bool all_have_signing = true;
  const std::string signing_fp = FirstFingerprint(current->ca_bundle);
  for (const char* kind : {kValidatingPath, kMutatingPath}) {
    bool present = false;
    std::string b;
    if (Status s = InjectBundle(kind, "", &present, &b); !s.ok()) return s;
    if (!present) continue;
    any_present = true;
    configured += b;
    bool has = false;
    for (const auto& c : ParseOrEmpty(b)) has |= c.fingerprint == signing_fp;
    all_have_signing &= has;
  }
  bool propagated = !any_present;
  if (any_present && all_have_signing && !signing_fp.empty()) {
    auto [it, inserted] = seen_in_configurations_.emplace(signing_fp, now);
    propagated = now - it->second >= options_.propagation_delay.count();
  }

  auto plan = PlanCertificates({*current, configured, propagated, now}, options_.settings);
  if (!plan.ok()) return plan.status();
  if (!(plan->next == *current)) {
    for (const auto& why : plan->reasons) {
      spdlog::info("webhook certificates in Secret {}/{}: {}", options_.ns, options_.secret_name,
                   why);
    }
    if (Status s = WriteSecret(plan->next, exists, rv); !s.ok()) return s;
    if (options_.on_secret_written) options_.on_secret_written(plan->reasons);
  } else if (plan->waiting_for_propagation) {
    spdlog::debug(
        "webhook certificates: waiting for the CA to propagate to the webhook configurations");
  }
  const std::string next_fp = FirstFingerprint(plan->next.ca_bundle);
  for (const char* kind : {kValidatingPath, kMutatingPath}) {
    bool present = false;
    std::string b;
    if (Status s = InjectBundle(kind, plan->next.ca_bundle, &present, &b); !s.ok()) return s;
    if (present) seen_in_configurations_.emplace(next_fp, now);
    if (!present && warned_missing_.insert(kind).second) {
      spdlog::warn("{}{} not found: nothing calls the webhooks until it exists (kubectl apply -k deploy/)", kind,
                   options_.configuration_name);
    }
  }
  // Forget CAs that are no longer signing (the map stays small).
  for (auto it = seen_in_configurations_.begin(); it != seen_in_configurations_.end();) {
    it = it->first == next_fp ? std::next(it) : seen_in_configurations_.erase(it);
  }
  return Status::Ok();
}

StatusOr<std::optional<KeyPairPem>> CertRotator::ReadServingPair() {
  bool exists = false;
  std::string rv;
  auto current = ReadSecret(&exists, &rv);
  if (!current.ok()) return current.status();
  if (!exists || current->tls_cert.empty() || current->tls_key.empty())
    return std::optional<KeyPairPem>();
  if (Status s = CheckKeyPair(current->tls_cert, current->tls_key); !s.ok()) {
    return InvalidArgument("Secret " + options_.ns + "/" + options_.secret_name + ": " +
                           s.message());
  }
  return std::optional<KeyPairPem>(KeyPairPem{current->tls_cert, current->tls_key});
}

}  // namespace kpc::webhooks
