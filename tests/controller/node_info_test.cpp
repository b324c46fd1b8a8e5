#include "controller/node_info.h"

#include <gtest/gtest.h>

#include "tests/kube/fake_client.h"

namespace kpc::controller {
namespace {

TEST(NodeInfoTest, TransformKeepsOnlyWhatTheControllerNeeds) {
  auto node = nlohmann::json::parse(R"({
    "metadata": {"name": "w1", "uid": "u1", "resourceVersion": "7", "labels": {"pool": "a"},
                 "managedFields": [{"manager": "x"}], "annotations": {"big": "..."}},
    "status": {"nodeInfo": {"kubeletVersion": "v1.34.10", "osImage": "x"},
               "images": [{"names": ["a"]}],
               "conditions": [{"type": "MemoryPressure", "status": "False"},
                              {"type": "Ready", "status": "True", "lastHeartbeatTime": "t"}]}})");
  auto t = TransformNode(node);
  EXPECT_FALSE(t["metadata"].contains("managedFields"));
  EXPECT_FALSE(t["metadata"].contains("annotations"));
  EXPECT_FALSE(t["status"].contains("images"));
  EXPECT_EQ(t["status"]["conditions"].size(), 1u);
  EXPECT_FALSE(t["status"]["conditions"][0].contains("lastHeartbeatTime")) << "heartbeats are not changes";
  NodeInfo n = NodeInfoFromJson(t);
  EXPECT_EQ(n.name, "w1");
  EXPECT_EQ(n.labels.at("pool"), "a");
  EXPECT_TRUE(n.ready);
  EXPECT_EQ(n.kubelet_minor, 34);
}

TEST(NodeInfoTest, TransformKeepsTheKubeletEndpointBounded) {
  nlohmann::json node = {{"metadata", {{"name", "w1"}}},
                         {"status",
                          {{"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
                           {"addresses", nlohmann::json::array()}}}};
  auto& addresses = node["status"]["addresses"];
  addresses.push_back({{"type", "InternalIP"}, {"address", "10.0.0.1"}, {"extra", "dropped"}});
  addresses.push_back({{"type", "Hostname"}, {"address", std::string(257, 'h')}});  // too long
  addresses.push_back({{"type", "Hostname"}, {"address", 7}});                     // not a string
  for (int i = 0; i < 40; ++i) addresses.push_back({{"type", "ExternalIP"}, {"address", "192.0.2.1"}});
  auto t = TransformNode(node);
  EXPECT_EQ(t["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
  ASSERT_EQ(t["status"]["addresses"].size(), 16u);
  EXPECT_EQ(t["status"]["addresses"][0], (nlohmann::json{{"type", "InternalIP"}, {"address", "10.0.0.1"}}));
  EXPECT_EQ(t["status"]["addresses"][1]["type"], "ExternalIP");
}

TEST(NodeInfoTest, KubeletMinorVersions) {
  EXPECT_EQ(MinorOfVersion("v1.30.2-eks-1552ad0"), 30);
  EXPECT_EQ(MinorOfVersion("v1.28.14"), 28);
  EXPECT_EQ(MinorOfVersion("garbage"), std::nullopt);
  EXPECT_EQ(MinorOfVersion("v1."), std::nullopt);
}

TEST(NodeInfoTest, ConfigzResultClassification) {
  auto ok = ConfigzResultFrom(std::string(R"({"kubeletconfig": {"readOnlyPort": 0}})"));
  EXPECT_TRUE(ok.ok);
  // Parsed once, here: copies share the configuration.
  ASSERT_NE(ok.config, nullptr);
  EXPECT_EQ(ok.config->config["readOnlyPort"], 0);
  EXPECT_TRUE(ok.config->live);
  ConfigzResult copy = ok;
  EXPECT_EQ(copy.config.get(), ok.config.get());
  auto garbage = ConfigzResultFrom(std::string("<html>oops</html>"));
  EXPECT_FALSE(garbage.ok);
  EXPECT_EQ(garbage.reason, "Malformed");
  EXPECT_EQ(garbage.config, nullptr);
  EXPECT_NE(garbage.message.find("configz malformed"), std::string::npos);
  auto unreachable = ConfigzResultFrom(StatusOr<std::string>(Unavailable("dial tcp 198.18.0.9:10250: connection refused")));
  EXPECT_EQ(unreachable.reason, "Unreachable");
  EXPECT_NE(unreachable.message.find("connection refused"), std::string::npos);
  auto slow = ConfigzResultFrom(StatusOr<std::string>(Status(StatusCode::kDeadlineExceeded, "timed out")));
  EXPECT_EQ(slow.reason, "Timeout");
}

TEST(NodeInfoTest, ConfigzOverALimitIsTooLargeOrMalformedAndNamesTheLimit) {
  // 200,000 levels of "[": refused before parsing, never recursed on.
  auto deep = ConfigzResultFrom(std::string(200'000, '['));
  EXPECT_FALSE(deep.ok);
  EXPECT_EQ(deep.reason, "Malformed");
  EXPECT_EQ(deep.limit, "depth");
  EXPECT_EQ(deep.message, "configz malformed: /configz nests deeper than 64 levels (at byte 65)");

  auto nested = [](size_t depth) {
    return R"({"kubeletconfig": {"a": )" + std::string(depth - 2, '[') +
           std::string(depth - 2, ']') + "}}";
  };
  EXPECT_TRUE(ConfigzResultFrom(nested(64)).ok);
  EXPECT_EQ(ConfigzResultFrom(nested(65)).limit, "depth");

  auto sized = [](size_t n) {
    std::string head = R"({"kubeletconfig": {"a": ")", tail = "\"}}";
    return head + std::string(n - head.size() - tail.size(), 'x') + tail;
  };
  EXPECT_TRUE(ConfigzResultFrom(sized(4u << 20)).ok);
  auto big = ConfigzResultFrom(sized((4u << 20) + 1));
  EXPECT_EQ(big.reason, "TooLarge");
  EXPECT_EQ(big.limit, "bytes");
  EXPECT_EQ(big.message,
            "configz unavailable (TooLarge): /configz is 4194305 bytes, over the 4 MiB limit");
  // The limits given (--configz-max-bytes) are the ones that apply.
  EXPECT_EQ(ConfigzResultFrom(sized(2048), {1024, 64}).reason, "TooLarge");
  EXPECT_TRUE(ConfigzResultFrom(sized(2048), {2048, 64}).ok);

  // The HTTP client's cap, hit while the body was arriving.
  auto capped = ConfigzResultFrom(
      StatusOr<std::string>(ResourceExhausted("GET x: response body larger than 4 MiB")));
  EXPECT_EQ(capped.reason, "TooLarge");
  EXPECT_EQ(capped.limit, "bytes");
  EXPECT_NE(capped.message.find("response body larger than 4 MiB"), std::string::npos)
      << capped.message;
  EXPECT_NE(capped.message.find("--configz-max-bytes"), std::string::npos) << capped.message;
  // Other failures name no limit.
  EXPECT_EQ(ConfigzResultFrom(std::string("<html>")).limit, "");
  EXPECT_EQ(ConfigzResultFrom(StatusOr<std::string>(Unavailable("x"))).limit, "");
}

TEST(NodeInfoTest, FetchNodeConfigzReadsAtMostTheCap) {
  kube::testing::FakeKube kube;
  kube.Put("/api/v1/nodes/n1/proxy/configz",
           nlohmann::json{{"kubeletconfig", {{"readOnlyPort", 0}}}});
  EXPECT_TRUE(FetchNodeConfigz(kube, "n1", std::chrono::seconds(1)).ok);
  EXPECT_EQ(kube.last_raw_max_body_bytes(), 4u << 20);
  EXPECT_TRUE(FetchNodeConfigz(kube, "n1", std::chrono::seconds(1), 1u << 20).ok);
  EXPECT_EQ(kube.last_raw_max_body_bytes(), 1u << 20);
  EXPECT_EQ(FetchNodeConfigz(kube, "n1", std::chrono::seconds(1), 16).reason, "TooLarge");
}

}  // namespace
}  // namespace kpc::controller
