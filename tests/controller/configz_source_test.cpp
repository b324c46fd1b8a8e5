#include "controller/configz_source.h"

#include <gtest/gtest.h>

#include <mutex>

#include "../kube/fake_client.h"
#include "fakes.h"

namespace kpc::controller {
namespace {

using nlohmann::json;

json Node(json addresses, json port = nullptr) {
  json n = {{"metadata", {{"name", "n1"}}}, {"status", {{"addresses", std::move(addresses)}}}};
  if (!port.is_null()) n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] = port;
  return n;
}

json Address(const std::string& type, const std::string& address) {
  return {{"type", type}, {"address", address}};
}

const std::vector<std::string> kDefaultTypes = {"InternalIP", "ExternalIP", "Hostname"};

TEST(KubeletEndpointTest, PicksTheFirstPreferredTypeAndThePublishedPort) {
  struct Case {
    std::string name;
    json node;
    std::vector<std::string> types;
    std::string want_url;  // empty: an error
    std::string want_error;
  };
  const json mixed = json::array({Address("Hostname", "w1.example"), Address("ExternalIP", "192.0.2.7"),
                                  Address("InternalIP", "10.0.0.7"), Address("InternalIP", "10.0.0.8")});
  const std::vector<Case> cases = {
      {"first type wins, first address of it", Node(mixed, 10250), kDefaultTypes,
       "https://10.0.0.7:10250/configz", ""},
      {"order of the flag, not of the Node", Node(mixed, 10250), {"Hostname", "InternalIP"},
       "https://w1.example:10250/configz", ""},
      {"falls through to a later type", Node(json::array({Address("Hostname", "127.18.0.1")}), 41234),
       kDefaultTypes, "https://127.18.0.1:41234/configz", ""},
      {"no port published: the kubelet default", Node(mixed), kDefaultTypes,
       "https://10.0.0.7:10250/configz", ""},
      {"port 0: the kubelet default", Node(mixed, 0), kDefaultTypes, "https://10.0.0.7:10250/configz", ""},
      {"IPv6 in brackets", Node(json::array({Address("InternalIP", "fd00::7")}), 10250), kDefaultTypes,
       "https://[fd00::7]:10250/configz", ""},
      {"no address of a preferred type", Node(json::array({Address("InternalDNS", "a.b")})), kDefaultTypes,
       "", "the node has no address of a preferred type (InternalIP, ExternalIP, Hostname)"},
      {"no addresses at all", json{{"status", json::object()}}, kDefaultTypes, "",
       "the node has no address of a preferred type"},
      {"not an object", json::array(), kDefaultTypes, "", "the node has no address"},
      {"port out of range", Node(mixed, 70000), kDefaultTypes, "", "the node's kubelet port 70000 is out of range"},
      {"negative port", Node(mixed, -1), kDefaultTypes, "", "out of range"},
      {"a path in the address", Node(json::array({Address("InternalIP", "10.0.0.1/x")})), kDefaultTypes,
       "", "the node's InternalIP address \"10.0.0.1/x\" is not an IP address or DNS name"},
      {"user info in the address", Node(json::array({Address("InternalIP", "a@evil")})), kDefaultTypes,
       "", "is not an IP address or DNS name"},
      {"a port in a name", Node(json::array({Address("Hostname", "host:80")})), kDefaultTypes, "",
       "is not an IP address or DNS name"},
      {"a leading dash", Node(json::array({Address("Hostname", "-x")})), kDefaultTypes, "",
       "is not an IP address or DNS name"},
      {"too long", Node(json::array({Address("Hostname", std::string(254, 'a'))})), kDefaultTypes, "",
       "is not an IP address or DNS name"},
      {"253 characters is a name", Node(json::array({Address("Hostname", std::string(253, 'a'))})),
       kDefaultTypes, "https://" + std::string(253, 'a') + ":10250/configz", ""},
  };
  for (const auto& c : cases) {
    auto ep = KubeletEndpointOf(c.node, c.types);
    if (c.want_url.empty()) {
      ASSERT_FALSE(ep.ok()) << c.name;
      EXPECT_NE(ep.status().message().find(c.want_error), std::string::npos)
          << c.name << ": " << ep.status().message();
    } else {
      ASSERT_TRUE(ep.ok()) << c.name << ": " << ep.status().message();
      EXPECT_EQ(ep->ConfigzUrl(), c.want_url) << c.name;
    }
  }
}

TEST(KubeletEndpointTest, ParsesTheFlags) {
  EXPECT_EQ(*ParseConfigzSource("kubelet"), ConfigzSourceKind::kKubelet);
  EXPECT_EQ(*ParseConfigzSource("apiserver-proxy"), ConfigzSourceKind::kApiserverProxy);
  EXPECT_FALSE(ParseConfigzSource("proxy").ok());
  EXPECT_EQ(ConfigzSourceName(ConfigzSourceKind::kApiserverProxy), "apiserver-proxy");
  EXPECT_EQ(*ParseAddressTypes("InternalIP,ExternalIP,Hostname"), kDefaultTypes);
  EXPECT_EQ(*ParseAddressTypes(" Hostname , InternalDNS"), (std::vector<std::string>{"Hostname", "InternalDNS"}));
  EXPECT_FALSE(ParseAddressTypes("").ok());
  EXPECT_FALSE(ParseAddressTypes("InternalIP,").ok());
  EXPECT_FALSE(ParseAddressTypes("internalip").ok());
  EXPECT_FALSE(ParseAddressTypes("Hostname,Hostname").ok());
}

net::HttpResponse Response(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(KubeletConfigzResultTest, EachOutcomeHasAReasonAndSaysWhatToDo) {
  const KubeletEndpoint ep{"127.18.0.1", 41234, "Hostname"};
  struct Case {
    std::string name;
    StatusOr<net::HttpResponse> response;
    std::string reason;
    std::vector<std::string> message_has;
  };
  const std::vector<Case> cases = {
      {"ok", Response(200, R"({"kubeletconfig": {"readOnlyPort": 0}})"), "", {}},
      {"not configz", Response(200, "<html>"), "Malformed", {"configz malformed"}},
      {"timeout", Status(StatusCode::kDeadlineExceeded, "GET x: no response within 5000 ms"), "Timeout",
       {"the kubelet at Hostname 127.18.0.1:41234", "no response within 5000 ms"}},
      {"refused", Unavailable("GET x: Connection refused"), "Unreachable", {"Connection refused"}},
      {"bad certificate", Unavailable("GET x: Error in SSL handshake: certificate verify failed"), "TLSError",
       {"--kubelet-certificate-authority", "--kubelet-insecure-tls", "certificate verify failed"}},
      {"401", Response(401, "Unauthorized"), "Unauthorized",
       {"did not accept ServiceAccount ns/reader", "authentication.webhook.enabled: true"}},
      {"403", Response(403, "Forbidden (user=system:serviceaccount:ns:reader, verb=get, resource=nodes, "
                            "subresource(s)=[configz proxy])\n"),
       "Forbidden",
       {"refused nodes/configz to ServiceAccount ns/reader", "subresource(s)=[configz proxy])",
        "grant it `get nodes/configz`", "KubeletFineGrainedAuthz", "--configz-source apiserver-proxy"}},
      {"500", Response(500, "boom"), "Error", {"answered HTTP 500: boom"}},
  };
  for (const auto& c : cases) {
    ConfigzResult r = KubeletConfigzResult(ep, c.response, "ServiceAccount ns/reader");
    EXPECT_EQ(r.ok, c.reason.empty()) << c.name;
    EXPECT_EQ(r.reason, c.reason) << c.name;
    for (const auto& part : c.message_has) {
      EXPECT_NE(r.message.find(part), std::string::npos) << c.name << ": " << r.message;
    }
  }
  // A hostile error body is cut and flattened to one printable line.
  ConfigzResult r = KubeletConfigzResult(ep, Response(403, std::string(100000, 'x') + "\n\x01"), "me");
  EXPECT_LT(r.message.size(), 1000u);
  EXPECT_EQ(r.message.find('\n'), std::string::npos);
}

class FakeHttp : public net::HttpClient {
 public:
  StatusOr<net::HttpResponse> Send(const net::HttpRequest& req) override {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(req);
    return next;
  }
  StatusOr<StreamResult> Stream(const net::HttpRequest&) override { return Unavailable("no streams"); }
  std::mutex mu;
  std::vector<net::HttpRequest> requests;
  StatusOr<net::HttpResponse> next = Response(200, R"({"kubeletconfig": {"readOnlyPort": 0}})");
};

class FakeTokens : public kube::TokenSource {
 public:
  StatusOr<std::string> Token() override { return token; }
  void Invalidate() override { ++invalidated; }
  std::string Describe() const override { return "ServiceAccount ns/reader"; }
  StatusOr<std::string> token = std::string("t0k3n");
  int invalidated = 0;
};

TEST(KubeletSourceTest, CallsTheKubeletWithTheTokenAndClassifies) {
  fakes::FakeStore nodes;
  nodes.Put(Node(json::array({Address("InternalIP", "198.18.0.1"), Address("Hostname", "127.18.0.1")}),
                 41234));
  auto http = std::make_shared<FakeHttp>();
  auto tokens = std::make_shared<FakeTokens>();
  KubeletSourceOptions options;
  options.preferred_address_types = {"Hostname"};
  auto source = NewKubeletSource(nodes, http, tokens, options);
  EXPECT_EQ(source->kind(), ConfigzSourceKind::kKubelet);

  ConfigzResult r = source->Fetch("n1", std::chrono::milliseconds(1234));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.config->config["readOnlyPort"], json(0));
  ASSERT_EQ(http->requests.size(), 1u);
  EXPECT_EQ(http->requests[0].method, "GET");
  EXPECT_EQ(http->requests[0].url, "https://127.18.0.1:41234/configz");
  EXPECT_EQ(http->requests[0].headers.at("Authorization"), "Bearer t0k3n");
  EXPECT_EQ(http->requests[0].timeout, std::chrono::milliseconds(1234));

  http->next = Response(401, "Unauthorized");
  r = source->Fetch("n1", std::chrono::milliseconds(1000));
  EXPECT_EQ(r.reason, "Unauthorized");
  EXPECT_EQ(tokens->invalidated, 1) << "a refused token is renewed";

  tokens->token = Status(StatusCode::kPermissionDenied, "cannot get a token for ServiceAccount ns/reader");
  r = source->Fetch("n1", std::chrono::milliseconds(1000));
  EXPECT_EQ(r.reason, "NoCredentials");
  EXPECT_NE(r.message.find("cannot get a token"), std::string::npos);
  EXPECT_EQ(http->requests.size(), 2u) << "no call without credentials";

  r = source->Fetch("gone", std::chrono::milliseconds(1000));
  EXPECT_EQ(r.reason, "NotFound");

  tokens->token = std::string("t");
  nodes.Put(json{{"metadata", {{"name", "bare"}}}, {"status", json::object()}});
  r = source->Fetch("bare", std::chrono::milliseconds(1000));
  EXPECT_EQ(r.reason, "NoAddress");
  EXPECT_NE(r.message.find("--kubelet-preferred-address-types"), std::string::npos);
}

TEST(ApiserverProxySourceTest, ReadsThroughTheNodeProxyAndExplainsAForbiddenAnswer) {
  kube::testing::FakeKube kube;
  kube.Put("/api/v1/nodes/n1/proxy/configz", json{{"kubeletconfig", {{"readOnlyPort", 0}}}});
  auto source = NewApiserverProxySource(kube);
  EXPECT_EQ(source->kind(), ConfigzSourceKind::kApiserverProxy);
  ConfigzResult r = source->Fetch("n1", std::chrono::milliseconds(1000));
  ASSERT_TRUE(r.ok) << r.message;
  kube.SetHook([](const std::string&, const std::string&, const std::string&,
                  const json&) -> std::optional<kube::Result> {
    return kube::testing::ErrorResult(403, "Forbidden", "nodes \"n1\" is forbidden");
  });
  r = source->Fetch("n1", std::chrono::milliseconds(1000));
  EXPECT_EQ(r.reason, "Forbidden");
  EXPECT_NE(r.message.find("needs `get nodes/proxy`"), std::string::npos) << r.message;
}

TEST(KubeletConfigzResultTest, BodiesOverTheCapAreTooLarge) {
  const KubeletEndpoint ep{"127.18.0.1", 41234, "Hostname"};
  ConfigzResult r = KubeletConfigzResult(
      ep,
      StatusOr<net::HttpResponse>(ResourceExhausted(
          "GET https://127.18.0.1:41234/configz: response body larger than 4 MiB")),
      "me");
  EXPECT_EQ(r.reason, "TooLarge");
  EXPECT_EQ(r.limit, "bytes");
  EXPECT_NE(r.message.find("the kubelet at Hostname 127.18.0.1:41234"), std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("--configz-max-bytes"), std::string::npos) << r.message;
  // A body that arrived whole is held to the same cap, and to the depth limit.
  const std::string body = R"({"kubeletconfig": {"a": ")" + std::string(2000, 'x') + "\"}}";
  EXPECT_TRUE(KubeletConfigzResult(ep, Response(200, body), "me").ok);
  EXPECT_EQ(KubeletConfigzResult(ep, Response(200, body), "me", 1024).reason, "TooLarge");
  r = KubeletConfigzResult(ep, Response(200, std::string(200'000, '[')), "me");
  EXPECT_EQ(r.reason, "Malformed");
  EXPECT_EQ(r.limit, "depth");
}

TEST(KubeletSourceTest, AsksTheHttpClientForAtMostTheCap) {
  fakes::FakeStore nodes;
  nodes.Put(Node(json::array({Address("InternalIP", "198.18.0.1")})));
  auto http = std::make_shared<FakeHttp>();
  auto tokens = std::make_shared<FakeTokens>();
  auto source = NewKubeletSource(nodes, http, tokens, KubeletSourceOptions{});
  ASSERT_TRUE(source->Fetch("n1", std::chrono::milliseconds(1000)).ok);
  EXPECT_EQ(http->requests.back().max_body_bytes, 4u << 20)
      << "the default, --configz-max-bytes 4Mi";
  KubeletSourceOptions small;
  small.max_body_bytes = 64u << 10;
  source = NewKubeletSource(nodes, http, tokens, small);
  ASSERT_TRUE(source->Fetch("n1", std::chrono::milliseconds(1000)).ok);
  EXPECT_EQ(http->requests.back().max_body_bytes, 64u << 10);
}

TEST(ApiserverProxySourceTest, ReadsAtMostTheCap) {
  kube::testing::FakeKube kube;
  kube.Put("/api/v1/nodes/n1/proxy/configz", json{{"kubeletconfig", {{"readOnlyPort", 0}}}});
  ASSERT_TRUE(NewApiserverProxySource(kube)->Fetch("n1", std::chrono::milliseconds(1000)).ok);
  EXPECT_EQ(kube.last_raw_max_body_bytes(), 4u << 20);
  ASSERT_TRUE(
      NewApiserverProxySource(kube, 64u << 10)->Fetch("n1", std::chrono::milliseconds(1000)).ok);
  EXPECT_EQ(kube.last_raw_max_body_bytes(), 64u << 10);
}

net::HttpResponse Throttled(std::optional<std::string> retry_after) {
  net::HttpResponse r = Response(429, "Too Many Requests");
  if (retry_after) r.headers["retry-after"] = *retry_after;
  return r;
}

TEST(ConfigzThrottlingTest, A429IsThrottledWithABoundedRetryAfterFromEitherSource) {
  struct Case {
    std::optional<std::string> retry_after;
    std::chrono::seconds want;
  };
  const std::vector<Case> cases = {
      {"30", std::chrono::seconds(30)},
      {std::nullopt, std::chrono::seconds(10)},
      {"0", std::chrono::seconds(1)},
      {"86400", std::chrono::seconds(600)},
      {"soon", std::chrono::seconds(10)},
      {"Wed, 21 Oct 2015 07:28:00 GMT", std::chrono::seconds(10)},
  };
  const KubeletEndpoint ep{"127.18.0.1", 41234, "Hostname"};
  // The API server's node proxy hands the 429 back as an answer (kube::Client::GetRaw).
  class ThrottledProxy : public kube::testing::FakeKube {
   public:
    StatusOr<net::HttpResponse> GetRaw(const std::string&, std::chrono::milliseconds,
                                       size_t) override {
      return answer;
    }
    net::HttpResponse answer;
  };
  ThrottledProxy kube;
  auto proxy = NewApiserverProxySource(kube);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.retry_after.value_or("absent"));
    ConfigzResult direct = KubeletConfigzResult(ep, Throttled(c.retry_after), "me");
    kube.answer = Throttled(c.retry_after);
    ConfigzResult proxied = proxy->Fetch("n1", std::chrono::milliseconds(1000));
    for (const ConfigzResult* r : {&direct, &proxied}) {
      EXPECT_FALSE(r->ok);
      EXPECT_EQ(r->reason, "Throttled");
      EXPECT_EQ(r->retry_after, c.want);
      EXPECT_NE(r->message.find("asking again in " + std::to_string(c.want.count()) + " s"),
                std::string::npos)
          << r->message;
    }
    EXPECT_NE(direct.message.find("the kubelet at Hostname 127.18.0.1:41234"), std::string::npos);
    EXPECT_NE(proxied.message.find("the API server's node proxy"), std::string::npos);
  }
}

}  // namespace
}  // namespace kpc::controller
