#pragma once
// Self-managed webhook certificates (the default --webhook-cert-mode).
//
// The leader keeps a CA and a serving certificate in the Secret
// <namespace>/kubelet-policy-controller-webhook-tls (keys tls.crt, tls.key, ca.crt, and ca.key
// for re-issuing), injects ca.crt as caBundle into the ValidatingWebhookConfiguration and
// MutatingWebhookConfiguration it owns, and renews before expiry. Every replica reads the
// serving pair from the Secret (ReadServingPair) and hot-reloads it into its HTTPS server.
//
// Rotation never breaks a request, because the API server must trust a serving certificate
// before any replica serves it:
//  1. a new CA is put *in front of* the bundle (ca.crt = new CA + every older CA still valid,
//     also those found in the configurations' caBundle, so deleting the Secret is a safe way
//     to force a rotation) and injected into both configurations; the serving pair is kept;
//  2. only once the configurations have carried the new CA for `propagation_delay` is a new
//     serving certificate issued from it; replicas pick it up on their next poll;
//  3. an old CA leaves the bundle only when it expires (never before the serving certificates
//     it signed, which cannot outlive it).
// Renewing the serving certificate under an unchanged CA needs no such wait.
//
// PlanCertificates is the pure decision (tests drive it with explicit times); CertRotator does
// the I/O, reading the time on its Clock. Leader election gives no fencing: every write here is
// a full, idempotent update.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "kube/client.h"
#include "webhooks/certs.h"

namespace kpc::webhooks {

inline constexpr const char* kValidatingWebhookPath = "/validate-kubeletpolicy";
inline constexpr const char* kMutatingWebhookPath = "/mutate-kubeletpolicy";

// The Secret's contents.
struct WebhookCerts {
  std::string ca_bundle;  // ca.crt: the signing CA first, then older CAs still trusted
  std::string ca_key;     // ca.key: the signing CA's key
  std::string tls_cert;   // tls.crt
  std::string tls_key;    // tls.key
  bool operator==(const WebhookCerts&) const = default;
};

struct CertSettings {
  std::vector<std::string> hosts;  // serving certificate SANs; the first is what callers verify
  int64_t ca_validity_seconds = 10LL * 365 * 86400;
  int64_t cert_validity_seconds = 365LL * 86400;
  double renew_fraction = 1.0 / 3;  // renew when less than this part of the lifetime remains
};

struct PlanInput {
  WebhookCerts current;           // the Secret (empty fields when absent)
  std::string configured_bundle;  // caBundle found in the webhook configurations (may be empty)
  // The signing CA of `current` has been in every configuration for the propagation delay
  // (or there is no configuration that could call a replica with an untrusted certificate).
  bool signing_ca_propagated = false;
  int64_t now = 0;
};

struct Plan {
  WebhookCerts next;
  std::vector<std::string> reasons;      // human-readable, empty when nothing changes
  bool waiting_for_propagation = false;  // a new serving certificate is due but must wait
};

StatusOr<Plan> PlanCertificates(const PlanInput& in, const CertSettings& settings);

// The first certificate's SHA-256 fingerprint of a PEM bundle ("" when none parses).
std::string FirstFingerprint(const std::string& pem);

struct CertRotatorOptions {
  std::string ns = "kubelet-policy-system";
  std::string secret_name = "kubelet-policy-controller-webhook-tls";
  std::string configuration_name = "kubelet-policy-controller";  // both configurations
  CertSettings settings;
  std::chrono::seconds propagation_delay{5};
  // --local-webhooks: also point every webhook's clientConfig at this base URL
  // ("https://127.0.0.1:9443") instead of the Service.
  std::string url_base;
  // Called by SyncOnce after it wrote the Secret, with the plan's reasons (e.g. to record an
  // Event); may be empty.
  std::function<void(const std::vector<std::string>& reasons)> on_secret_written;
};

// SyncOnce runs on one thread at a time; ReadServingPair only reads the API and may run
// concurrently with it. `client` and `clock` must outlive the rotator.
class CertRotator {
 public:
  CertRotator(kube::Client& client, const Clock& clock, CertRotatorOptions options);

  // One pass of the leader: read the Secret and both configurations, write what differs.
  Status SyncOnce();

  // Every replica: the serving pair from the Secret; nullopt while it has none.
  StatusOr<std::optional<KeyPairPem>> ReadServingPair();

 private:
  StatusOr<WebhookCerts> ReadSecret(bool* exists, std::string* resource_version);
  Status WriteSecret(const WebhookCerts& certs, bool exists, const std::string& resource_version);
  // Updates caBundle (and, in local mode, the URL) of every webhook in one configuration.
  // *present is false when the configuration does not exist.
  Status InjectBundle(const std::string& kind_path, const std::string& bundle, bool* present,
                      std::string* configured_bundle);

  kube::Client& client_;
  const CertRotatorOptions options_;
  const Clock& clock_;
  // When each CA fingerprint was first seen in every configuration (for propagation_delay).
  std::map<std::string, int64_t> seen_in_configurations_;
  std::set<std::string> warned_missing_;  // configurations already reported missing
};

// Standard base64 (the Secret's data).
std::string Base64Encode(const std::string& in);
std::optional<std::string> Base64Decode(const std::string& in);

}  // namespace kpc::webhooks
