#include "webhooks/admission.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "policy/conflicts.h"
#include "policy/yaml_json.h"

namespace kpc::webhooks {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;
using pol::FindRemediationConflicts;  // policy/conflicts.h; also what the webhook warns with

std::string ReadTestFile(const std::string& rel) {
  std::ifstream in(std::string(KPC_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A minimal valid policy; tests patch it.
json Base() {
  return json::parse(R"({
    "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy",
    "metadata": {"name": "p"},
    "spec": {"rules": [
      {"id": "stream", "config": {"path": "streamingConnectionIdleTimeout", "operator": "NotEquals", "value": "0s"},
       "remediation": {"value": "4h0m0s"}}
    ]}})");
}

json Review(const json& object, const std::string& operation = "CREATE", const std::string& uid = "uid-123") {
  json req = {{"uid", uid},
              {"kind", {{"group", "kubeletpolicy.io"}, {"version", "v1alpha1"}, {"kind", "KubeletPolicy"}}},
              {"resource", {{"group", "kubeletpolicy.io"}, {"version", "v1alpha1"}, {"resource", "kubeletpolicies"}}},
              {"operation", operation},
              {"name", object.contains("metadata") ? object["metadata"].value("name", "") : ""},
              {"userInfo", {{"username", "admin"}}},
              {"dryRun", false}};
  if (operation != "DELETE") req["object"] = object;
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", req}};
}

// Parses a 200 answer's response.
json Response(const AdmissionResult& r) {
  EXPECT_EQ(r.http_status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  json j = json::parse(r.body);
  EXPECT_EQ(j["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(j["kind"], "AdmissionReview");
  return j["response"];
}

json ValidateObject(const json& object, const ConflictChecker* c = nullptr) {
  return Response(HandleValidate(Review(object).dump(), c));
}

// ---- envelope ----

TEST(AdmissionTest, EchoesUid) {
  auto v = Response(HandleValidate(Review(Base(), "CREATE", "705ab4f5-6393-11e8-b7cc-42010a800002").dump()));
  EXPECT_EQ(v["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_EQ(v["allowed"], true);
  auto m = Response(HandleMutate(Review(Base(), "UPDATE", "another-uid").dump()));
  EXPECT_EQ(m["uid"], "another-uid");
}

TEST(AdmissionTest, MalformedRequestsAre400) {
  json no_uid = Review(Base());
  no_uid["request"].erase("uid");
  json empty_uid = Review(Base());
  empty_uid["request"]["uid"] = "";
  json number_uid = Review(Base());
  number_uid["request"]["uid"] = 42;
  json wrong_kind = Review(Base());
  wrong_kind["kind"] = "KubeletPolicy";
  json v1beta1 = Review(Base());
  v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
  json no_request = Review(Base());
  no_request.erase("request");
  json request_not_object = Review(Base());
  request_not_object["request"] = "x";
  json no_object = Review(Base());
  no_object["request"].erase("object");
  json no_operation = Review(Base());
  no_operation["request"].erase("operation");
  json no_request_kind = Review(Base());
  no_request_kind["request"].erase("kind");

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"garbage", "this is not json"},
      {"empty", ""},
      {"empty object", "{}"},
      {"array", "[1,2,3]"},
      {"truncated", Review(Base()).dump().substr(0, 50)},
      {"trailing garbage", Review(Base()).dump() + "}}"},
      {"invalid utf-8", std::string("{\"apiVersion\": \"\xff\xfe\"}")},
      {"missing uid", no_uid.dump()},
      {"empty uid", empty_uid.dump()},
      {"uid not a string", number_uid.dump()},
      {"wrong kind", wrong_kind.dump()},
      {"v1beta1", v1beta1.dump()},
      {"missing request", no_request.dump()},
      {"request not an object", request_not_object.dump()},
      {"CREATE without object", no_object.dump()},
      {"missing operation", no_operation.dump()},
      {"missing request.kind", no_request_kind.dump()},
  };
  for (const auto& [name, body] : cases) {
    SCOPED_TRACE(name);
    AdmissionResult v = HandleValidate(body);
    EXPECT_EQ(v.http_status, 400) << v.body;
    EXPECT_EQ(v.content_type, "text/plain; charset=utf-8");
    EXPECT_FALSE(v.body.empty());
    if (name != "CREATE without object") {
      AdmissionResult m = HandleMutate(body);
      EXPECT_EQ(m.http_status, 400) << m.body;
    }
  }
  EXPECT_NE(HandleValidate(no_uid.dump()).body.find("request.uid"), std::string::npos);
  EXPECT_NE(HandleValidate(wrong_kind.dump()).body.find("AdmissionReview"), std::string::npos);
  EXPECT_NE(HandleValidate("{").body.find("not valid JSON"), std::string::npos);
}

TEST(AdmissionTest, OversizedBodyIs400) {
  json big = Review(Base());
  big["request"]["object"]["metadata"]["annotations"] = {{"big", std::string(4u << 20, 'x')}};
  std::string body = big.dump();
  ASSERT_GT(body.size(), 4u << 20);
  for (const AdmissionResult& r : {HandleValidate(body), HandleMutate(body)}) {
    EXPECT_EQ(r.http_status, 400);
    EXPECT_NE(r.body.find("3 MiB"), std::string::npos) << r.body;
    EXPECT_EQ(r.limit, "bytes");
  }
  // Just under the limit is read (and judged on its content).
  big["request"]["object"]["metadata"]["annotations"]["big"] = std::string(2u << 20, 'x');
  EXPECT_EQ(HandleValidate(big.dump()).http_status, 200);
}

TEST(AdmissionTest, DeeplyNestedJsonIs400) {
  // At the limit the body is read (and judged: not an AdmissionReview).
  EXPECT_EQ(HandleValidate(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']')).limit,
            "");
  for (size_t depth : {kMaxJsonDepth + 1u, 100000u, 1000000u}) {
    std::string arrays = std::string(depth, '[') + std::string(depth, ']');
    EXPECT_EQ(HandleValidate(arrays).http_status, 400);
    EXPECT_EQ(HandleValidate(arrays).limit, "depth");
    std::string objects;
    for (size_t i = 0; i < depth; ++i) objects += "{\"a\":";
    objects += "1" + std::string(depth, '}');
    EXPECT_EQ(HandleMutate(objects).http_status, 400);
  }
  // Deep nesting inside the policy (e.g. config.value) is refused too, not dumped recursively.
  std::string review = Review(Base()).dump();
  std::string deep = std::string(5000, '[') + std::string(5000, ']');
  std::string needle = "\"value\":\"0s\"";
  auto pos = review.find(needle);
  ASSERT_NE(pos, std::string::npos);
  review.replace(pos, needle.size(), "\"value\":" + deep);
  AdmissionResult r = HandleValidate(review);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_NE(r.body.find("deeper than"), std::string::npos) << r.body;
  // Brackets inside strings do not count.
  json s = Review(Base());
  s["request"]["object"]["metadata"]["annotations"] = {{"a", std::string(1000, '[')}};
  EXPECT_EQ(HandleValidate(s.dump()).http_status, 200);
}

TEST(AdmissionTest, NonObjectPolicyIsDeniedNotCrashed) {
  json r = Review(Base());
  for (json bad : {json("x"), json(1), json::array(), json::object()}) {
    r["request"]["object"] = bad;
    AdmissionResult res = HandleValidate(r.dump());
    if (!bad.is_object()) {
      EXPECT_EQ(res.http_status, 400) << res.body;
    } else {
      EXPECT_EQ(Response(res)["allowed"], false);
    }
  }
  json spec_types = Base();
  spec_types["spec"] = {{"rules", "no"}, {"nodeSelector", 5}, {"exceptions", {{"x", 1}}}, {"remediation", 3}};
  auto v = ValidateObject(spec_types);
  EXPECT_EQ(v["allowed"], false);
}

// ---- validation ----

struct InvalidCase {
  std::string name;
  std::function<void(json&)> patch;
  std::string field;  // expected in the message and in causes
};

TEST(AdmissionTest, InvalidPoliciesAreDeniedWithFieldPaths) {
  auto rule0 = [](json& p) -> json& { return p["spec"]["rules"][0]; };
  const std::vector<InvalidCase> cases = {
      {"duplicate ids", [&](json& p) { p["spec"]["rules"].push_back(rule0(p)); }, "spec.rules[1].id"},
      {"both config and file",
       [&](json& p) { rule0(p)["file"] = {{"target", "KubeletConfigFile"}, {"maxMode", "0600"}}; },
       "spec.rules[0]"},
      {"unknown operator", [&](json& p) { rule0(p)["config"]["operator"] = "Equal"; },
       "spec.rules[0].config.operator"},
      {"ordering operator on a bool",
       [&](json& p) {
         rule0(p) = {{"id", "rot"}, {"config", {{"path", "rotateCertificates"}, {"operator", "GreaterThan"}, {"value", true}}}};
       },
       "spec.rules[0].config.operator"},
      {"non-duration value for a duration field", [&](json& p) { rule0(p)["config"]["value"] = "forever"; },
       "spec.rules[0].config.value"},
      {"remediation value fails its rule", [&](json& p) { rule0(p)["remediation"]["value"] = "0h0m0s"; },
       "spec.rules[0].remediation.value"},
      {"dot-dot path",
       [&](json& p) {
         rule0(p) = {{"id", "f"}, {"file", {{"target", "Path"}, {"path", "/etc/kubernetes/../shadow"}, {"maxMode", "0600"}}}};
       },
       "spec.rules[0].file.path"},
      {"/root path",
       [&](json& p) {
         rule0(p) = {{"id", "f"}, {"file", {{"target", "Path"}, {"path", "/root/.kube/config"}, {"maxMode", "0600"}}}};
       },
       "spec.rules[0].file.path"},
      {"exception without reason",
       [&](json& p) { p["spec"]["exceptions"] = {{{"rules", {"stream"}}}}; }, "spec.exceptions[0].reason"},
      {"bad selector operator",
       [&](json& p) {
         p["spec"]["nodeSelector"] = {{"matchExpressions", {{{"key", "pool"}, {"operator", "Equals"}, {"values", {"a"}}}}}};
       },
       "spec.nodeSelector.matchExpressions[0].operator"},
      {"missing value", [&](json& p) { rule0(p)["config"].erase("value"); }, "spec.rules[0].config.value"},
      {"In without list", [&](json& p) { rule0(p)["config"]["operator"] = "In"; rule0(p).erase("remediation"); },
       "spec.rules[0].config.value"},
      {"bad maxMode",
       [&](json& p) { rule0(p) = {{"id", "f"}, {"file", {{"target", "KubeletConfigFile"}, {"maxMode", "0999"}}}}; },
       "spec.rules[0].file.maxMode"},
      {"checkInterval 5s", [&](json& p) { p["spec"]["checkInterval"] = "5s"; }, "spec.checkInterval"},
      {"unknown enforcement", [&](json& p) { p["spec"]["enforcement"] = "Remediate"; }, "spec.enforcement"},
      {"rule id not a DNS label", [&](json& p) { rule0(p)["id"] = "Stream_Timeout"; }, "spec.rules[0].id"},
      {"exception for an unknown rule",
       [&](json& p) { p["spec"]["exceptions"] = {{{"rules", {"nope"}}, {"reason", "r"}}}; },
       "spec.exceptions[0].rules[0]"},
      {"maxUnavailable 0%", [&](json& p) { p["spec"]["remediation"] = {{"maxUnavailable", "0%"}}; },
       "spec.remediation.maxUnavailable"},
      {"namespaced", [&](json& p) { p["metadata"]["namespace"] = "default"; }, "metadata.namespace"},
      {"unknown spec field", [&](json& p) { p["spec"]["rulez"] = json::array(); }, "spec.rulez"},
      {"no rules", [&](json& p) { p["spec"]["rules"] = json::array(); }, "spec.rules"},
  };
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json p = Base();
    c.patch(p);
    json v = ValidateObject(p);
    EXPECT_EQ(v["uid"], "uid-123");
    ASSERT_EQ(v["allowed"], false) << v.dump();
    const json& st = v["status"];
    EXPECT_EQ(st["code"], 422);
    EXPECT_EQ(st["reason"], "Invalid");
    EXPECT_EQ(st["status"], "Failure");
    const std::string msg = st["message"];
    EXPECT_EQ(msg.rfind("KubeletPolicy \"p\" is invalid: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.field + ": "), std::string::npos) << msg;
    EXPECT_EQ(st["details"]["name"], "p");
    EXPECT_EQ(st["details"]["kind"], "KubeletPolicy");
    EXPECT_EQ(st["details"]["group"], "kubeletpolicy.io");
    bool found = false;
    for (const auto& cause : st["details"]["causes"]) {
      EXPECT_EQ(cause["reason"], "FieldValueInvalid");
      EXPECT_FALSE(cause["message"].get<std::string>().empty());
      if (cause["field"] == c.field) found = true;
    }
    EXPECT_TRUE(found) << st.dump();
    EXPECT_FALSE(v.contains("warnings"));
  }
}

TEST(AdmissionTest, EveryProblemInOneDenial) {
  json p = Base();
  p["spec"]["rules"][0]["config"]["value"] = "forever";
  p["spec"]["rules"].push_back({{"id", "f"}, {"file", {{"target", "Path"}, {"path", "/root/x"}, {"maxMode", "0600"}}}});
  p["spec"]["rules"].push_back({{"id", "f"}, {"config", {{"path", "rotateCertificates"}, {"operator", "Equals"}, {"value", true}}}});
  p["spec"]["checkInterval"] = "5s";
  json st = ValidateObject(p)["status"];
  const std::string msg = st["message"];
  EXPECT_NE(msg.find("spec.rules[0].config.value: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("; spec.rules[1].file.path: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("spec.rules[2].id: duplicate rule id"), std::string::npos) << msg;
  EXPECT_NE(msg.find("spec.checkInterval: "), std::string::npos) << msg;
  EXPECT_GE(st["details"]["causes"].size(), 4u);
}

TEST(AdmissionTest, ApiExampleIsAllowedWithoutWarnings) {
  auto doc = pol::ParseYamlDocument(ReadTestFile("tests/testdata/api-example.yaml"));
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  for (const char* op : {"CREATE", "UPDATE"}) {
    json v = Response(HandleValidate(Review(doc->value, op).dump()));
    EXPECT_EQ(v["allowed"], true) << v.dump();
    EXPECT_FALSE(v.contains("warnings")) << v.dump();
    EXPECT_FALSE(v.contains("status"));
  }
}

TEST(AdmissionTest, WarnsForUnknownFieldPath) {
  json p = Base();
  p["spec"]["rules"].push_back({{"id", "typo"}, {"config", {{"path", "streamingConnectionIdleTimout"}, {"operator", "Equals"}, {"value", "4h"}}}});
  json v = ValidateObject(p);
  EXPECT_EQ(v["allowed"], true);
  ASSERT_EQ(v["warnings"].size(), 1u) << v.dump();
  const std::string w = v["warnings"][0];
  EXPECT_NE(w.find("spec.rules[1].config.path"), std::string::npos) << w;
  EXPECT_NE(w.find("streamingConnectionIdleTimout"), std::string::npos) << w;
}

TEST(AdmissionTest, WarnsForOrderingOperatorOnUnknownField) {
  json p = Base();
  p["spec"]["rules"].push_back({{"id", "future"}, {"config", {{"path", "someFutureQPS"}, {"operator", "GreaterThan"}, {"value", 3}}}});
  json v = ValidateObject(p);
  EXPECT_EQ(v["allowed"], true);
  ASSERT_EQ(v["warnings"].size(), 2u) << v.dump();  // unknown path + ordering on it
  EXPECT_NE(v["warnings"][1].get<std::string>().find("spec.rules[1].config.operator: GreaterThan"), std::string::npos)
      << v.dump();
  // A known ordered field draws no warning.
  json known = Base();
  known["spec"]["rules"][0] = {{"id", "qps"}, {"config", {{"path", "eventRecordQPS"}, {"operator", "GreaterThanOrEqual"}, {"value", 1}}}};
  EXPECT_FALSE(ValidateObject(known).contains("warnings"));
}

TEST(AdmissionTest, WarnsForEnforceWithLargeMaxUnavailable) {
  json p = Base();
  p["spec"]["enforcement"] = "Enforce";
  p["spec"]["remediation"] = {{"maxUnavailable", "50%"}};
  json v = ValidateObject(p);
  EXPECT_EQ(v["allowed"], true);
  ASSERT_EQ(v["warnings"].size(), 1u) << v.dump();
  EXPECT_NE(v["warnings"][0].get<std::string>().find("spec.remediation.maxUnavailable: \"50%\""), std::string::npos);

  p["spec"]["remediation"]["maxUnavailable"] = 5;
  v = ValidateObject(p);
  ASSERT_EQ(v["warnings"].size(), 1u) << v.dump();
  EXPECT_NE(v["warnings"][0].get<std::string>().find("fewer than 50"), std::string::npos);

  for (json ok : {json("10%"), json(1)}) {
    p["spec"]["remediation"]["maxUnavailable"] = ok;
    EXPECT_FALSE(ValidateObject(p).contains("warnings")) << ok;
  }
  // Only Enforce remediates.
  p["spec"]["remediation"]["maxUnavailable"] = "50%";
  p["spec"]["enforcement"] = "DryRun";
  EXPECT_FALSE(ValidateObject(p).contains("warnings"));
}

TEST(AdmissionTest, DeleteAndOtherKindsAreAllowedWithoutChecks) {
  json invalid = Base();
  invalid["spec"]["checkInterval"] = "1s";
  json del = Review(invalid, "DELETE", "del-1");
  del["request"]["oldObject"] = invalid;
  json v = Response(HandleValidate(del.dump()));
  EXPECT_EQ(v["uid"], "del-1");
  EXPECT_EQ(v["allowed"], true);
  EXPECT_FALSE(v.contains("warnings"));

  json other = Review(invalid);
  other["request"]["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "ConfigMap"}};
  EXPECT_EQ(Response(HandleValidate(other.dump()))["allowed"], true);

  json status = Review(invalid, "UPDATE");
  status["request"]["subResource"] = "status";
  EXPECT_EQ(Response(HandleValidate(status.dump()))["allowed"], true);

  // Without subResource the same UPDATE is denied.
  EXPECT_EQ(Response(HandleValidate(Review(invalid, "UPDATE").dump()))["allowed"], false);
}

TEST(AdmissionTest, DryRunIsAnsweredTheSame) {
  json bad = Base();
  bad["spec"]["enforcement"] = "Sometimes";
  for (const json& obj : {Base(), bad}) {
    json normal = Review(obj);
    json dry = normal;
    dry["request"]["dryRun"] = true;
    EXPECT_EQ(HandleValidate(normal.dump()).body, HandleValidate(dry.dump()).body);
    EXPECT_EQ(HandleMutate(normal.dump()).body, HandleMutate(dry.dump()).body);
  }
}

TEST(AdmissionTest, MutateAddsNoPatch) {
  auto doc = pol::ParseYamlDocument(ReadTestFile("tests/testdata/api-example.yaml"));
  ASSERT_TRUE(doc.ok());
  json invalid = Base();
  invalid["spec"]["checkInterval"] = "1s";
  for (const json& obj : {Base(), doc->value, invalid}) {
    for (const char* op : {"CREATE", "UPDATE"}) {
      json m = Response(HandleMutate(Review(obj, op).dump()));
      EXPECT_EQ(m["allowed"], true);
      EXPECT_FALSE(m.contains("patch")) << m.dump();
      EXPECT_FALSE(m.contains("patchType")) << m.dump();
      EXPECT_FALSE(m.contains("warnings"));
    }
  }
}

// ---- conflicts ----

pol::KubeletPolicy MakePolicy(const std::string& name, const json& remediation_value, const json& selector) {
  json p = Base();
  p["metadata"]["name"] = name;
  p["spec"]["rules"][0]["remediation"]["value"] = remediation_value;
  if (!selector.is_null()) p["spec"]["nodeSelector"] = selector;
  auto r = pol::ParsePolicy(p);
  EXPECT_TRUE(r.policy.has_value()) << (r.errors.empty() ? "" : r.errors[0].message);
  return r.policy.value_or(pol::KubeletPolicy{});
}

class FakeChecker : public ConflictChecker {
 public:
  explicit FakeChecker(std::vector<pol::KubeletPolicy> others) : others_(std::move(others)) {}
  std::vector<std::string> Conflicts(const pol::KubeletPolicy& p) const override {
    seen_ = p.name;
    return FindRemediationConflicts(p, others_);
  }
  mutable std::string seen_;

 private:
  std::vector<pol::KubeletPolicy> others_;
};

TEST(ConflictTest, CheckerConflictsAreWarningsNotDenials) {
  FakeChecker checker({MakePolicy("other", "1h", json())});
  json v = ValidateObject(Base(), &checker);
  EXPECT_EQ(checker.seen_, "p");
  EXPECT_EQ(v["allowed"], true);
  ASSERT_EQ(v["warnings"].size(), 1u) << v.dump();
  EXPECT_NE(v["warnings"][0].get<std::string>().find("\"other\""), std::string::npos);
  // The checker is not consulted for invalid policies.
  checker.seen_.clear();
  json bad = Base();
  bad["spec"]["enforcement"] = "x";
  EXPECT_EQ(ValidateObject(bad, &checker)["allowed"], false);
  EXPECT_TRUE(checker.seen_.empty());
}

TEST(AdmissionTest, HugeFieldsGiveAShortDenial) {
  // The crash of the issue: a 100,000-character owner reached std::regex in every replica.
  json p = Base();
  p["spec"]["rules"][0] = {
      {"id", "f"},
      {"file", {{"target", "KubeletConfigFile"}, {"owner", std::string(100'000, 'a')}}}};
  AdmissionResult r = HandleValidate(Review(p).dump());
  ASSERT_EQ(r.http_status, 200);
  EXPECT_FALSE(r.allowed);
  EXPECT_LT(r.body.size(), 4096u);
  EXPECT_NE(r.body.find("spec.rules[0].file.owner"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("at most 32 characters"), std::string::npos) << r.body;
  json n = Base();
  n["metadata"]["name"] = std::string(100'000, 'n');
  r = HandleValidate(Review(n).dump());
  EXPECT_FALSE(r.allowed);
  EXPECT_LT(r.body.size() - 100'000, 4096u)
      << "the name is echoed once (details.name), never in messages";
}

}  // namespace
}  // namespace kpc::webhooks
