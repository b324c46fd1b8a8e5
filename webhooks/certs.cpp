#include "webhooks/certs.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

namespace kpc::webhooks {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

std::string SslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return what;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return what + ": " + buf;
}

// NotBefore is backdated to tolerate clock skew: an hour, or a tenth of a short validity.
int64_t Backdate(int64_t validity) { return std::min<int64_t>(3600, validity / 10); }

BioPtr MemBio(std::string_view s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string ToPem(X509* x) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ToPem(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

X509Ptr ReadCert(std::string_view pem) {
  auto b = MemBio(pem);
  return X509Ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
}

KeyPtr ReadKey(std::string_view pem) {
  auto b = MemBio(pem);
  return KeyPtr(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
}

int64_t AsnTimeToUnix(const ASN1_TIME* t) {
  tm out{};
  if (ASN1_TIME_to_tm(t, &out) != 1) return 0;
  return static_cast<int64_t>(timegm(&out));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool IsIp(const std::string& h) {
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

// A fresh certificate with a random 127-bit serial, `cn` as subject, the given validity.
StatusOr<X509Ptr> NewCert(const std::string& cn, EVP_PKEY* key, int64_t not_before,
                          int64_t not_after) {
  X509Ptr x(X509_new());
  if (!x) return Internal(SslError("X509_new"));
  X509_set_version(x.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Internal(SslError("RAND_bytes"));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
  BN_free(bn);
  ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(not_before));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(not_after));
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("kubelet-policy-controller"),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_pubkey(x.get(), key);
  return x;
}

std::string Cn(X509_NAME* name) {
  char buf[256] = {0};
  if (X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof buf) < 0) return "";
  return buf;
}

std::string Hex(const unsigned char* d, unsigned n) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kHex[d[i] >> 4];
    s += kHex[d[i] & 15];
  }
  return s;
}

CertInfo Inspect(X509* x) {
  CertInfo c;
  c.subject_cn = Cn(X509_get_subject_name(x));
  c.issuer_cn = Cn(X509_get_issuer_name(x));
  c.not_before = AsnTimeToUnix(X509_get0_notBefore(x));
  c.not_after = AsnTimeToUnix(X509_get0_notAfter(x));
  c.is_ca = X509_check_ca(x) > 0;
  if (auto* sans = static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        const ASN1_STRING* s = g->d.dNSName;
        c.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s)));
      } else if (g->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* s = g->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = {0};
        int len = ASN1_STRING_length(s);
        inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), buf, sizeof buf);
        c.ip_addresses.emplace_back(buf);
      }
    }
    GENERAL_NAMES_free(sans);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  X509_digest(x, EVP_sha256(), md, &n);
  c.fingerprint = Hex(md, n);
  c.pem = ToPem(x);
  return c;
}

}  // namespace

StatusOr<KeyPairPem> GenerateCa(const std::string& common_name, int64_t now,
                                int64_t validity_seconds) {
  if (validity_seconds <= 0) return InvalidArgument("CA validity must be positive");
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal(SslError("generating the CA key"));
  auto x =
      NewCert(common_name, key.get(), now - Backdate(validity_seconds), now + validity_seconds);
  if (!x.ok()) return x.status();
  X509* cert = x->get();
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  if (!AddExt(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !AddExt(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
      !AddExt(cert, cert, NID_subject_key_identifier, "hash") ||
      !AddExt(cert, cert, NID_authority_key_identifier, "keyid:always")) {
    return Internal(SslError("CA extensions"));
  }
  if (X509_sign(cert, key.get(), EVP_sha256()) <= 0) return Internal(SslError("signing the CA"));
  return KeyPairPem{ToPem(cert), ToPem(key.get())};
}

StatusOr<KeyPairPem> GenerateServingCert(const KeyPairPem& ca,
                                         const std::vector<std::string>& hosts, int64_t now,
                                         int64_t validity_seconds) {
  if (hosts.empty())
    return InvalidArgument("a serving certificate needs at least one host name or IP");
  if (validity_seconds <= 0)
    return InvalidArgument("serving certificate validity must be positive");
  X509Ptr ca_cert = ReadCert(ca.cert_pem);
  KeyPtr ca_key = ReadKey(ca.key_pem);
  ERR_clear_error();
  if (!ca_cert || !ca_key) return InvalidArgument("the CA certificate or key is not valid PEM");
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("the CA key does not match the CA certificate");
  }
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal(SslError("generating the serving key"));
  int64_t not_after =
      std::min(now + validity_seconds, AsnTimeToUnix(X509_get0_notAfter(ca_cert.get())));
  auto x = NewCert(hosts.front(), key.get(), now - Backdate(validity_seconds), not_after);
  if (!x.ok()) return x.status();
  X509* cert = x->get();
  X509_set_issuer_name(cert, X509_get_subject_name(ca_cert.get()));
  std::string sans;
  for (const auto& h : hosts) {
    if (!sans.empty()) sans += ",";
    sans += (IsIp(h) ? "IP:" : "DNS:") + h;
  }
  if (!AddExt(cert, ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExt(cert, ca_cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
      !AddExt(cert, ca_cert.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExt(cert, ca_cert.get(), NID_authority_key_identifier, "keyid:always") ||
      !AddExt(cert, ca_cert.get(), NID_subject_alt_name, sans)) {
    return Internal(SslError("serving certificate extensions"));
  }
  if (X509_sign(cert, ca_key.get(), EVP_sha256()) <= 0)
    return Internal(SslError("signing the serving certificate"));
  return KeyPairPem{ToPem(cert), ToPem(key.get())};
}

StatusOr<std::vector<CertInfo>> ParseCertificates(std::string_view pem) {
  std::vector<CertInfo> out;
  auto b = MemBio(pem);
  size_t begins = 0;
  for (size_t pos = pem.find("-----BEGIN CERTIFICATE-----"); pos != std::string_view::npos;
       pos = pem.find("-----BEGIN CERTIFICATE-----", pos + 1)) {
    ++begins;
  }
  while (X509Ptr x = X509Ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)))
    out.push_back(Inspect(x.get()));
  ERR_clear_error();
  if (out.empty()) return InvalidArgument("no PEM certificate found");
  if (out.size() != begins) return InvalidArgument("a PEM certificate in the bundle is malformed");
  return out;
}

Status CheckKeyPair(std::string_view cert_pem, std::string_view key_pem) {
  X509Ptr cert = ReadCert(cert_pem);
  KeyPtr key = ReadKey(key_pem);
  ERR_clear_error();
  if (!cert) return InvalidArgument("the certificate is not valid PEM");
  if (!key) return InvalidArgument("the private key is not valid PEM");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("the private key does not match the certificate");
  }
  return Status::Ok();
}

Status VerifyServingCert(std::string_view cert_pem, std::string_view ca_bundle_pem,
                         const std::string& host, int64_t at) {
  X509Ptr cert = ReadCert(cert_pem);
  if (!cert) return InvalidArgument("the serving certificate is not valid PEM");
  StorePtr store(X509_STORE_new());
  auto b = MemBio(ca_bundle_pem);
  int added = 0;
  while (X509Ptr ca = X509Ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr))) {
    added += X509_STORE_add_cert(store.get(), ca.get()) == 1;
  }
  ERR_clear_error();
  if (added == 0) return InvalidArgument("the CA bundle has no certificate");
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(at));
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (IsIp(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return InvalidArgument(std::string("certificate verification failed: ") +
                           X509_verify_cert_error_string(err));
  }
  return Status::Ok();
}

std::vector<std::string> ServiceHostNames(const std::string& service, const std::string& ns) {
  return {service + "." + ns + ".svc", service, service + "." + ns,
          service + "." + ns + ".svc.cluster.local"};
}

bool NeedsRenewal(const CertInfo& cert, int64_t now, double renew_fraction) {
  if (now < cert.not_before || now >= cert.not_after) return true;
  const double lifetime = static_cast<double>(cert.not_after - cert.not_before);
  return static_cast<double>(cert.not_after - now) < lifetime * renew_fraction;
}

std::string JoinPem(const std::vector<CertInfo>& certs) {
  std::string out;
  for (const auto& c : certs) out += c.pem;
  return out;
}

}  // namespace kpc::webhooks
