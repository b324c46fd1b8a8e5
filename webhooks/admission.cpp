#include "webhooks/admission.h"

#include <algorithm>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "policy/catalog.h"
#include "policy/conflicts.h"
#include "policy/evaluate.h"
#include "policy/limits.h"

namespace kpc::webhooks {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;

constexpr std::string_view kAdmissionApiVersion = "admission.k8s.io/v1";
constexpr std::string_view kAdmissionKind = "AdmissionReview";
constexpr std::string_view kPolicyGroup = "kubeletpolicy.io";
constexpr std::string_view kPolicyVersion = "v1alpha1";

AdmissionResult BadRequest(std::string message) {
  AdmissionResult r;
  r.http_status = 400;
  r.body = std::move(message) + "\n";
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

std::string Dump(const json& j) {
  // `replace`: never throw on invalid UTF-8 (parsed input is valid, but be safe).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Admission warnings are shown verbatim by kubectl; keep them on one printable line.
std::string Printable(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return s;
}

std::string Issue(const pol::FieldIssue& i) {
  return i.field.empty() ? i.message : i.field + ": " + i.message;
}

// A well-formed AdmissionReview's request, or the 400 to answer.
struct ParsedReview {
  json review;
  std::optional<AdmissionResult> error;
  const json& request() const { return review["request"]; }
  std::string uid() const { return request()["uid"].get<std::string>(); }
};

ParsedReview ParseReview(std::string_view body) {
  ParsedReview out;
  // Before parsing: a hostile "[[[[..." never reaches recursive code (dump, validation).
  if (auto refused =
          pol::CheckJsonShape(body, {kMaxRequestBytes, kMaxJsonDepth}, "the request body")) {
    out.error = BadRequest(refused->message);
    out.error->limit = pol::InputLimitName(refused->limit);
    return out;
  }
  try {
    out.review = json::parse(body);
  } catch (const json::exception& e) {
    // nlohmann quotes what it read of a bad token, which can be most of the body.
    out.error = BadRequest("request body is not valid JSON: " + pol::Shortened(e.what(), 200));
    return out;
  }
  const json& r = out.review;
  if (!r.is_object()) {
    out.error = BadRequest("request body must be a JSON object: an admission.k8s.io/v1 AdmissionReview");
    return out;
  }
  auto str = [](const json& obj, const char* key) -> std::optional<std::string> {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto api_version = str(r, "apiVersion");
  auto kind = str(r, "kind");
  if (api_version != kAdmissionApiVersion || kind != kAdmissionKind) {
    out.error = BadRequest(
        "expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got apiVersion " +
        (api_version ? pol::Quoted(*api_version) : std::string("<none>")) + ", kind " +
        (kind ? pol::Quoted(*kind) : std::string("<none>")) +
        " (configure the webhook with admissionReviewVersions: [v1])");
    return out;
  }
  auto req = r.find("request");
  if (req == r.end() || !req->is_object()) {
    out.error = BadRequest("AdmissionReview has no request object");
    return out;
  }
  auto uid = str(*req, "uid");
  if (!uid || uid->empty()) {
    out.error = BadRequest("AdmissionReview request.uid is missing or not a non-empty string");
    return out;
  }
  auto k = req->find("kind");
  if (k == req->end() || !k->is_object()) {
    out.error = BadRequest("AdmissionReview request.kind (group, version, kind) is missing");
    return out;
  }
  if (!str(*req, "operation")) {
    out.error = BadRequest("AdmissionReview request.operation is missing or not a string");
    return out;
  }
  return out;
}

json ResponseEnvelope(const std::string& uid) {
  return json{{"apiVersion", kAdmissionApiVersion},
              {"kind", kAdmissionKind},
              {"response", {{"uid", uid}, {"allowed", true}}}};
}

AdmissionResult Ok(const json& envelope) {
  AdmissionResult r;
  r.body = Dump(envelope);
  const json& resp = envelope["response"];
  r.allowed = resp.value("allowed", false);
  if (auto w = resp.find("warnings"); w != resp.end()) r.warnings = w->size();
  return r;
}

// Whether the request is a CREATE or UPDATE of a KubeletPolicy itself (not a subresource).
bool NeedsPolicyChecks(const json& req) {
  const json& k = req["kind"];
  auto field = [&](const char* key) {
    auto it = k.find(key);
    return it != k.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (field("group") != kPolicyGroup || field("version") != kPolicyVersion || field("kind") != pol::kKind) {
    return false;
  }
  if (auto sub = req.find("subResource"); sub != req.end() && sub->is_string() && !sub->get<std::string>().empty()) {
    return false;  // e.g. the controller's /status updates
  }
  const std::string op = req["operation"].get<std::string>();
  return op == "CREATE" || op == "UPDATE";
}

std::string ObjectName(const json& req) {
  if (auto obj = req.find("object"); obj != req.end() && obj->is_object()) {
    if (auto md = obj->find("metadata"); md != obj->end() && md->is_object()) {
      if (auto n = md->find("name"); n != md->end() && n->is_string()) return n->get<std::string>();
    }
  }
  if (auto n = req.find("name"); n != req.end() && n->is_string()) return n->get<std::string>();
  return "";
}

std::vector<std::string> PolicyWarnings(const pol::KubeletPolicy& p, const std::vector<pol::FieldIssue>& parser) {
  std::vector<std::string> out;
  for (const auto& w : parser) out.push_back(Issue(w));
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const auto& c = p.rules[i].config;
    if (!c || !pol::IsOrderingOperator(c->op) || pol::LookupField(c->path)) continue;
    out.push_back("spec.rules[" + std::to_string(i) + "].config.operator: " +
                  std::string(pol::OperatorName(c->op)) + " on \"" + c->path_text +
                  "\", a field this controller does not know: it compares by the JSON type of the "
                  "observed value; make sure the field is a number, duration or quantity");
  }
  if (p.enforcement == pol::Enforcement::kEnforce) {
    const auto& mu = p.remediation.max_unavailable;
    if (mu.percent && mu.value > 10) {
      out.push_back("spec.remediation.maxUnavailable: \"" + std::to_string(mu.value) +
                    "%\" with enforcement Enforce restarts the kubelet on more than 10% of the selected "
                    "nodes at once; consider \"10%\" or less");
    } else if (!mu.percent && mu.value > 1) {
      out.push_back("spec.remediation.maxUnavailable: " + std::to_string(mu.value) +
                    " with enforcement Enforce restarts the kubelet on " + std::to_string(mu.value) +
                    " nodes at once, more than 10% of the selected nodes when fewer than " +
                    std::to_string(mu.value * 10) + " match; consider a percentage such as \"10%\"");
    }
  }
  return out;
}

AdmissionResult Validate(const ParsedReview& pr, const ConflictChecker* conflicts) {
  const json& req = pr.request();
  json envelope = ResponseEnvelope(pr.uid());
  if (!NeedsPolicyChecks(req)) return Ok(envelope);
  auto obj = req.find("object");
  if (obj == req.end() || !obj->is_object()) {
    return BadRequest("AdmissionReview request.object is missing for " + req["operation"].get<std::string>() +
                      " of a KubeletPolicy");
  }
  pol::PolicyParseResult parsed = pol::ParsePolicy(*obj);
  json& resp = envelope["response"];
  if (!parsed.policy) {
    const std::string name = ObjectName(req);
    std::string message = "KubeletPolicy " + pol::Quoted(name) + " is invalid: ";
    json causes = json::array();
    for (size_t i = 0; i < parsed.errors.size(); ++i) {
      const auto& e = parsed.errors[i];
      message += (i == 0 ? "" : "; ") + Issue(e);
      causes.push_back({{"reason", "FieldValueInvalid"}, {"message", e.message}, {"field", e.field}});
    }
    resp["allowed"] = false;
    resp["status"] = {{"apiVersion", "v1"},
                      {"kind", "Status"},
                      {"metadata", json::object()},
                      {"status", "Failure"},
                      {"code", 422},
                      {"reason", "Invalid"},
                      {"message", message},
                      {"details",
                       {{"name", name}, {"group", kPolicyGroup}, {"kind", pol::kKind}, {"causes", causes}}}};
    return Ok(envelope);
  }
  std::vector<std::string> warnings = PolicyWarnings(*parsed.policy, parsed.warnings);
  if (conflicts != nullptr) {
    for (auto& c : conflicts->Conflicts(*parsed.policy)) warnings.push_back(std::move(c));
  }
  if (!warnings.empty()) {
    json w = json::array();
    for (auto& s : warnings) w.push_back(Printable(std::move(s)));
    resp["warnings"] = std::move(w);
  }
  return Ok(envelope);
}

// Runs a handler body; a library exception becomes a 400 (input we could not read) or 500.
template <typename F>
AdmissionResult Guarded(F&& f) {
  try {
    return f();
  } catch (const json::exception& e) {
    return BadRequest(std::string("cannot read the AdmissionReview: ") + e.what());
  } catch (const std::exception& e) {
    AdmissionResult r;
    r.http_status = 500;
    r.body = std::string("internal error: ") + e.what() + "\n";
    r.content_type = "text/plain; charset=utf-8";
    return r;
  }
}

}  // namespace

AdmissionResult HandleValidate(std::string_view request_body, const ConflictChecker* conflicts) {
  return Guarded([&] {
    ParsedReview pr = ParseReview(request_body);
    if (pr.error) return *pr.error;
    AdmissionResult r = Validate(pr, conflicts);
    r.operation = pr.request()["operation"].get<std::string>();
    return r;
  });
}

// The mutating webhook deliberately patches nothing. Every default of the API contract
// (checkInterval, enforcement, severity, remediation.enabled, maxUnavailable, ...) is a
// `default:` in the CRD's structural schema, which the API server applies before admission and
// on every read, identically for client-side and server-side apply. Anything a webhook adds to
// spec is not in the user's manifest: `kubectl diff` / Argo CD / Flux would then see drift, or
// managed fields owned by the webhook would fight the applier. So: admit, no patch. Invalid
// objects are admitted here too; the validating webhook denies them with the full message.
AdmissionResult HandleMutate(std::string_view request_body) {
  return Guarded([&] {
    ParsedReview pr = ParseReview(request_body);
    if (pr.error) return *pr.error;
    AdmissionResult r = Ok(ResponseEnvelope(pr.uid()));
    r.operation = pr.request()["operation"].get<std::string>();
    return r;
  });
}

}  // namespace kpc::webhooks
