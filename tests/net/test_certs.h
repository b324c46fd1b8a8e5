#pragma once
// Test certificates made with OpenSSL, shared by the net tests: self-signed P-256 (or RSA)
// certificates that also serve as their own CA. Thread-safe.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

namespace kpc::net {

struct CertPair {
  std::string cert_pem, key_pem;
};

// Self-signed P-256 (or RSA 2048) certificate with the given subjectAltName (by default
// 127.0.0.1 and localhost), valid for an hour, usable as its own CA.
inline CertPair MakeSelfSigned(const std::string& cn = "kpc-test",
                               const std::string& san = "IP:127.0.0.1,DNS:localhost",
                               bool rsa = false) {
  EVP_PKEY* key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage,
                                      rsa ? "critical,digitalSignature,keyEncipherment,keyCertSign"
                                          : "critical,digitalSignature,keyCertSign"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  CertPair out;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data;
  long n = BIO_get_mem_data(b, &data);
  out.cert_pem.assign(data, n);
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(b, &data);
  out.key_pem.assign(data, n);
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace kpc::net
