#pragma once
// Serving certificates for the admission webhooks, made with OpenSSL: a self-signed CA, serving
// certificates signed by it, inspection of PEM bundles, and the pure renewal decision used by
// the self-managed certificate rotation (webhooks/cert_rotator.h).
//
// Keys are ECDSA P-256 (fast handshakes; every API server since 1.x accepts them). Times are
// seconds since the Unix epoch and always passed in, so tests need no clock.
// Thread-safe: no shared state.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kpc::webhooks {

struct KeyPairPem {
  std::string cert_pem;
  std::string key_pem;
};

struct CertInfo {
  std::string subject_cn;
  std::string issuer_cn;
  int64_t not_before = 0;  // unix seconds
  int64_t not_after = 0;
  bool is_ca = false;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::string fingerprint;  // SHA-256 of the DER, hex; identifies a certificate in a bundle
  std::string pem;          // this certificate alone
};

// A self-signed CA (basicConstraints CA:TRUE, keyUsage keyCertSign). NotBefore is backdated by
// an hour (a tenth of a shorter validity) to tolerate clock skew with the API servers.
StatusOr<KeyPairPem> GenerateCa(const std::string& common_name, int64_t now,
                                int64_t validity_seconds);

// A serving certificate (serverAuth) for `hosts` (DNS names or IP addresses; the first is also
// the subject CN) signed by `ca`. NotAfter never exceeds the CA's NotAfter.
StatusOr<KeyPairPem> GenerateServingCert(const KeyPairPem& ca,
                                         const std::vector<std::string>& hosts, int64_t now,
                                         int64_t validity_seconds);

// Every certificate in a PEM text, in order. An error when there is none or one is malformed.
StatusOr<std::vector<CertInfo>> ParseCertificates(std::string_view pem);

// OK when `key_pem` is the private key of the first certificate in `cert_pem`.
Status CheckKeyPair(std::string_view cert_pem, std::string_view key_pem);

// OK when the first certificate of `cert_pem` chains to one of the CAs in `ca_bundle_pem` and
// is valid for `host` at time `at`.
Status VerifyServingCert(std::string_view cert_pem, std::string_view ca_bundle_pem,
                         const std::string& host, int64_t at);

// The names a Service-backed webhook is called by: svc, svc.ns, svc.ns.svc,
// svc.ns.svc.cluster.local (the API server uses svc.ns.svc).
std::vector<std::string> ServiceHostNames(const std::string& service, const std::string& ns);

// True when less than `renew_fraction` of the certificate's lifetime remains at `now` (or it
// is already expired / not yet valid). cert-manager's default is a third of the lifetime.
bool NeedsRenewal(const CertInfo& cert, int64_t now, double renew_fraction);

// Concatenates the PEM of `certs` (each ends with a newline).
std::string JoinPem(const std::vector<CertInfo>& certs);

}  // namespace kpc::webhooks
