#pragma once
// Admission handling for KubeletPolicy (kubeletpolicy.io/v1alpha1): the pure part of the
// /validate-kubeletpolicy and /mutate-kubeletpolicy webhooks. Takes the raw HTTP request body
// (an admission.k8s.io/v1 AdmissionReview) and returns the HTTP answer to give. No I/O, no
// networking; the HTTPS server in front of it only moves bytes. Thread-safe (no shared state;
// a ConflictChecker must itself be safe to call concurrently).
//
// Answers:
//  - HTTP 400 with a plain-text body for anything that is not a well-formed AdmissionReview v1:
//    a body over kMaxRequestBytes or JSON nested deeper than kMaxJsonDepth (checked before
//    parsing, policy::CheckJsonShape), malformed JSON, a wrong
//    apiVersion/kind, a missing `request`, `request.uid`, `request.kind` or `request.operation`,
//    or CREATE/UPDATE of a KubeletPolicy without `request.object`. Never a crash: every library
//    exception is caught.
//  - HTTP 200 otherwise, with an AdmissionReview v1 whose `response.uid` echoes the request's.
//
// Validation (HandleValidate) runs policy::ParsePolicy, the one implementation of the API
// contract's rules, on CREATE and UPDATE of KubeletPolicy (not on subresources such as
// /status). A denial carries every problem with its field path in one message plus
// status.details.causes, so `kubectl apply` prints each one. Suspicious but legal input is
// admitted with admission warnings (see HandleValidate). DELETE, CONNECT and other kinds are
// admitted without checks. `request.dryRun` needs no handling: answering has no side effects.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "policy/label_selector.h"
#include "policy/model.h"

namespace kpc::webhooks {

// The API server itself caps request bodies at 3 MiB; a review of a valid policy is far smaller.
inline constexpr std::size_t kMaxRequestBytes = 3u * 1024 * 1024;
// JSON nesting limit (objects + arrays). A KubeletPolicy inside an AdmissionReview needs about
// ten levels; the limit keeps recursive code (dump, validation) far from the stack's end.
inline constexpr int kMaxJsonDepth = 100;

// The HTTP answer to give.
struct AdmissionResult {
  int http_status = 200;
  std::string body;
  // "application/json" for 200 answers, "text/plain; charset=utf-8" for 400/500.
  std::string content_type = "application/json";
  // For metrics and logs: request.operation (CREATE, UPDATE, ...) when the review could be
  // read, else empty; whether the answer admits the object; how many warnings it carries.
  std::string operation;
  bool allowed = false;
  size_t warnings = 0;
  // When a limit refused the body (its size or nesting): policy::InputLimitName, else empty.
  std::string limit;
};

// Policies that would fight over the same kubelet field (CachedConflictChecker in
// webhooks/server.h: FindRemediationConflicts over an informer cache of KubeletPolicies).
class ConflictChecker {
 public:
  virtual ~ConflictChecker() = default;
  // Human-readable conflicts of `p` with the other existing policies; empty when none.
  virtual std::vector<std::string> Conflicts(const kpc::policy::KubeletPolicy& p) const = 0;
};

// /validate-kubeletpolicy.
// Allowed objects get admission warnings for:
//  - the parser's warnings (a kubelet field path the catalog does not know, ...);
//  - an ordering operator (GreaterThan, ...) on a field the catalog does not know: the
//    comparison then follows the JSON type of the observed value;
//  - enforcement Enforce with remediation.maxUnavailable above 10%: a percentage over "10%",
//    or an absolute number over 1 (the webhook does not know how many nodes the policy
//    selects; N nodes at once is more than 10% whenever fewer than 10*N nodes match);
//  - every conflict `conflicts` reports. Conflicts are warnings, not denials: selectors can
//    only be shown to *possibly* overlap, and denying would make the order in which a GitOps
//    tool applies two policies decide which one is accepted.
AdmissionResult HandleValidate(std::string_view request_body,
                               const ConflictChecker* conflicts = nullptr);

// /mutate-kubeletpolicy. Always admits well-formed reviews with no patch (see admission.cpp).
AdmissionResult HandleMutate(std::string_view request_body);

}  // namespace kpc::webhooks
