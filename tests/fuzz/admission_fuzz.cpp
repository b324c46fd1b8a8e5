// Fuzz target: the admission webhooks' handlers (webhooks/admission.h), on the raw request body
// and on the input wrapped as the object of a well-formed AdmissionReview (the input's text as
// JSON, and its YAML parsed and converted, so that policy seeds reach validation).
// Properties: no crash, sanitizer report or escaping exception; the answer is 200 or 400,
// never 500; a 400 is plain text ending in "\n"; a 200 is an AdmissionReview v1 JSON whose
// response.uid echoes the request's, whose "allowed" and warning count match the result, and
// whose warnings are printable single lines; mutation always admits; a well-formed review of
// a KubeletPolicy object is answered 200 (a policy that does not parse is denied, not a 400),
// and admitted exactly when ParsePolicy accepts the object.
// Input: a request body or a policy [NUL choices: operation].

#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/conflicts.h"
#include "policy/limits.h"
#include "policy/yaml_json.h"
#include "tests/fuzz/cis_policy.h"
#include "tests/fuzz/fuzz_util.h"
#include "webhooks/admission.h"

namespace {

using kpc::webhooks::AdmissionResult;
using nlohmann::json;
namespace policy = kpc::policy;

// Conflicts with the fixed CIS policy, as the webhook's informer-backed checker would report.
class CisConflicts : public kpc::webhooks::ConflictChecker {
 public:
  std::vector<std::string> Conflicts(const policy::KubeletPolicy& p) const override {
    return policy::FindRemediationConflicts(p, {kpc::fuzz::CisPolicy()});
  }
};

std::string Describe(const AdmissionResult& r) {
  return std::to_string(r.http_status) + " " + r.content_type + "\n" + r.body.substr(0, 2000);
}

// The request of `body` when it is a well-formed AdmissionReview within the webhook's limits
// (the handler's rules, restated), else null.
json RequestOf(std::string_view body) {
  if (policy::CheckJsonShape(
          body,
          {kpc::webhooks::kMaxRequestBytes, static_cast<size_t>(kpc::webhooks::kMaxJsonDepth)},
          "body")) {
    return nullptr;
  }
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  auto is = [](const json& obj, const char* key, const char* want) {
    return obj.contains(key) && obj[key].is_string() &&
           (want == nullptr ? !obj[key].get<std::string>().empty() : obj[key] == want);
  };
  if (!j.is_object() || !is(j, "apiVersion", "admission.k8s.io/v1") ||
      !is(j, "kind", "AdmissionReview") || !j.contains("request") || !j["request"].is_object()) {
    return nullptr;
  }
  const json& req = j["request"];
  if (!is(req, "uid", nullptr) || !req.contains("kind") || !req["kind"].is_object() ||
      !req.contains("operation") || !req["operation"].is_string()) {
    return nullptr;
  }
  return req;
}

void CheckAnswer(const AdmissionResult& r, std::string_view body, bool mutate) {
  FUZZ_CHECK(r.http_status == 200 || r.http_status == 400, Describe(r));
  if (r.http_status == 400) {
    FUZZ_CHECK(r.content_type.rfind("text/plain", 0) == 0, Describe(r));
    FUZZ_CHECK(!r.body.empty() && r.body.back() == '\n', Describe(r));
    return;
  }
  FUZZ_CHECK(r.content_type == "application/json", Describe(r));
  json review = json::parse(r.body, nullptr, false);
  FUZZ_CHECK(review.is_object() && review.value("apiVersion", "") == "admission.k8s.io/v1" &&
                 review.value("kind", "") == "AdmissionReview" && review.contains("response"),
             Describe(r));
  const json& resp = review["response"];
  json req = RequestOf(body);
  FUZZ_CHECK(
      req.is_object() && req.contains("uid") && resp.contains("uid") && resp["uid"] == req["uid"],
      Describe(r));
  FUZZ_CHECK(resp.contains("allowed") && resp["allowed"].is_boolean() &&
                 resp["allowed"].get<bool>() == r.allowed,
             Describe(r));
  FUZZ_CHECK(!mutate || r.allowed, Describe(r));
  size_t warnings = 0;
  if (resp.contains("warnings")) {
    FUZZ_CHECK(resp["warnings"].is_array(), Describe(r));
    for (const json& w : resp["warnings"]) {
      FUZZ_CHECK(w.is_string(), Describe(r));
      for (unsigned char c : w.get<std::string>()) FUZZ_CHECK(c >= 0x20 && c != 0x7f, Describe(r));
      ++warnings;
    }
  }
  FUZZ_CHECK(warnings == r.warnings, Describe(r));
}

AdmissionResult Validate(std::string_view body) {
  static const CisConflicts conflicts;
  AdmissionResult r = kpc::webhooks::HandleValidate(body, &conflicts);
  CheckAnswer(r, body, false);
  CheckAnswer(kpc::webhooks::HandleMutate(body), body, true);
  return r;
}

const char* const kOperations[] = {"CREATE", "UPDATE", "DELETE", "CONNECT"};

std::string Wrap(std::string_view object_json, const std::string& op) {
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{)"
         R"("uid":"0b0e6e3c-fuzz","kind":{"group":"kubeletpolicy.io","version":"v1alpha1",)"
         R"("kind":"KubeletPolicy"},"resource":{"group":"kubeletpolicy.io","version":"v1alpha1",)"
         R"("resource":"kubeletpolicies"},"operation":")" +
         op + R"(","object":)" + std::string(object_json) + "}}";
}

// A well-formed review of a CREATE/UPDATE: 200, and allowed exactly when the policy parses.
void CheckWellFormed(const AdmissionResult& r, const std::string& body) {
  json req = RequestOf(body);
  if (!req.is_object() || !req.contains("object") || !req["object"].is_object()) return;
  // The input may have added keys to the review: read what the handler read.
  const std::string op = req["operation"];
  FUZZ_CHECK(r.http_status == 200, "a well-formed review was answered " + Describe(r));
  auto str = [](const json& obj, const char* key) {
    return obj.is_object() && obj.contains(key) && obj[key].is_string()
               ? obj[key].get<std::string>()
               : std::string();
  };
  const json kind = req.contains("kind") ? req["kind"] : json();
  const bool checked = (op == "CREATE" || op == "UPDATE") &&
                       str(kind, "group") == "kubeletpolicy.io" &&
                       str(kind, "version") == "v1alpha1" && str(kind, "kind") == "KubeletPolicy" &&
                       str(req, "subResource").empty();
  if (!checked) {
    FUZZ_CHECK(r.allowed, Describe(r));
    return;
  }
  const bool parses = policy::ParsePolicy(req["object"]).policy.has_value();
  FUZZ_CHECK(r.allowed == parses, Describe(r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpc::fuzz::Input in(data, size);
  const std::string op = kOperations[in.Byte() % 4];
  const std::string_view text = in.text();

  Validate(text);

  const std::string wrapped = Wrap(text, op);
  CheckWellFormed(Validate(wrapped), wrapped);

  if (text.find('{') != std::string_view::npos && text.find('}') != std::string_view::npos &&
      json::accept(text.begin(), text.end())) {
    return 0;  // JSON: wrapped as it is above
  }
  auto doc = policy::ParseYamlDocument(text);
  if (doc.ok() && doc->value.is_object()) {
    const std::string converted =
        Wrap(doc->value.dump(-1, ' ', false, json::error_handler_t::replace), op);
    CheckWellFormed(Validate(converted), converted);
  }
  return 0;
}
