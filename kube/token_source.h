#pragma once
// Bearer tokens, and where they come from.
// - NewClientConfigTokenSource: the token of a ClientConfig — static, or its token file, re-read
//   every minute (service-account tokens rotate) and at once after Invalidate().
// - NewServiceAccountTokenSource: short-lived tokens of one ServiceAccount from the
//   TokenRequest API (POST /api/v1/namespaces/NS/serviceaccounts/NAME/token), for credentials
//   that leave the API server's side: every kubelet that answers a direct /configz call sees the
//   token it is sent, so it is the token of an identity that can only read /configz, and it
//   expires in minutes. Renewed when 80% of its life has passed or after Invalidate(); while a
//   renewal fails the current token is kept until it expires, and a failure is remembered for
//   10 s so that many callers do not repeat it. The caller needs `create serviceaccounts/token`
//   on that ServiceAccount.
// Both are thread-safe; the Clock (and Client) must outlive them.

#include <chrono>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "kube/client.h"

namespace kpc::kube {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // The token to send (empty: none, e.g. a client-certificate kubeconfig), or why there is none.
  virtual StatusOr<std::string> Token() = 0;
  // The token was refused (401): the next Token() fetches or reads a fresh one.
  virtual void Invalidate() = 0;
  // Whose token this is, for messages: "ServiceAccount ns/name", "the kubeconfig's token".
  virtual std::string Describe() const = 0;
};

std::unique_ptr<TokenSource> NewClientConfigTokenSource(const ClientConfig& config, const Clock& clock);

struct ServiceAccountTokenOptions {
  std::string ns;
  std::string name;
  std::chrono::seconds expiration{600};  // the TokenRequest API's minimum
};
std::unique_ptr<TokenSource> NewServiceAccountTokenSource(Client& client, const Clock& clock,
                                                          ServiceAccountTokenOptions options);

// When a token valid for `lifetime` from `issued` is renewed: after 80% of its life. Pure.
std::chrono::steady_clock::time_point TokenRenewAt(std::chrono::steady_clock::time_point issued,
                                                   std::chrono::seconds lifetime);

}  // namespace kpc::kube
