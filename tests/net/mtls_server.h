#pragma once
// A loopback HTTPS server that requires a client certificate, shared by the client tests:
// it trusts one self-signed client certificate and answers "mtls" on /m. The TLS configs a
// client needs with and without that certificate come with it. Not thread-safe; one per test.

#include <chrono>
#include <memory>
#include <string>

#include "base/clock.h"
#include "net/http.h"
#include "tests/net/test_certs.h"

namespace kpc::net {

class MutualTlsServer {
 public:
  explicit MutualTlsServer(const Clock& clock)
      : server_pair_(MakeSelfSigned("server")), client_pair_(MakeSelfSigned("client")) {
    TlsConfig serving;
    serving.client_cert_pem = server_pair_.cert_pem;
    serving.client_key_pem = server_pair_.key_pem;
    serving.ca_pem = client_pair_.cert_pem;  // trust this client
    server_ = NewHttpServer(clock, "127.0.0.1:0", serving);
    server_->Handle("/m", [](const ServerRequest&) {
      HttpResponse r;
      r.status = 200;
      r.body = "mtls";
      return r;
    });
    started_ = server_->Start().ok();
  }
  ~MutualTlsServer() { server_->Stop(); }

  bool started() const { return started_; }
  HttpRequest Request() const {
    HttpRequest req;
    req.url = "https://127.0.0.1:" + std::to_string(server_->port()) + "/m";
    req.timeout = std::chrono::seconds(5);
    return req;
  }
  // Trusts the server but presents no client certificate.
  TlsConfig WithoutClientCert() const {
    TlsConfig tls;
    tls.ca_pem = server_pair_.cert_pem;
    return tls;
  }
  TlsConfig WithClientCert() const {
    TlsConfig tls = WithoutClientCert();
    tls.client_cert_pem = client_pair_.cert_pem;
    tls.client_key_pem = client_pair_.key_pem;
    return tls;
  }

 private:
  const CertPair server_pair_, client_pair_;
  std::unique_ptr<HttpServer> server_;
  bool started_ = false;
};

}  // namespace kpc::net
