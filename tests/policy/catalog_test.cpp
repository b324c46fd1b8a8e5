#include "policy/catalog.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "policy/units.h"

namespace kpc::policy {
namespace {

const FieldInfo& Field(const std::string& path) {
  auto parsed = FieldPath::Parse(path);
  EXPECT_TRUE(parsed.ok()) << path;
  auto match = LookupField(*parsed);
  EXPECT_TRUE(match.has_value()) << path;
  static const FieldInfo kMissing;
  if (!match || match->field == nullptr) return kMissing;
  EXPECT_FALSE(match->map_key.has_value()) << path;
  return *match->field;
}

TEST(CatalogTest, StreamingConnectionIdleTimeoutDefaultsToFourHoursEvenWhenZero) {
  const FieldInfo& f = Field("streamingConnectionIdleTimeout");
  EXPECT_EQ(f.type, ValueType::kDuration);
  EXPECT_EQ(f.zero, "0s");
  EXPECT_EQ(f.file_default, "4h0m0s");
  EXPECT_TRUE(f.zero_is_defaulted);
  EXPECT_EQ(f.flag, "streaming-connection-idle-timeout");
  EXPECT_EQ(f.flag_syntax, FlagSyntax::kScalar);
  EXPECT_EQ(f.flag_default, "4h0m0s");
}

TEST(CatalogTest, EventRecordQpsIsAPointerSoAnExplicitZeroStays) {
  const FieldInfo& f = Field("eventRecordQPS");
  EXPECT_EQ(f.type, ValueType::kInt);
  EXPECT_EQ(f.file_default, 50);
  EXPECT_FALSE(f.zero_is_defaulted);
  EXPECT_EQ(f.flag, "event-qps");
  EXPECT_EQ(Field("eventBurst").file_default, 100);
  EXPECT_TRUE(Field("eventBurst").zero_is_defaulted);
}

TEST(CatalogTest, MakeIptablesUtilChainsDefaultsToTrue) {
  const FieldInfo& f = Field("makeIPTablesUtilChains");
  EXPECT_EQ(f.type, ValueType::kBool);
  EXPECT_EQ(f.zero, false);
  EXPECT_EQ(f.file_default, true);
  EXPECT_FALSE(f.zero_is_defaulted);
  EXPECT_EQ(f.flag, "make-iptables-util-chains");
}

TEST(CatalogTest, AnonymousAuthIsOffInFilesButOnForFlagsOnlyKubelets) {
  const FieldInfo& f = Field("authentication.anonymous.enabled");
  EXPECT_EQ(f.flag, "anonymous-auth");
  EXPECT_EQ(f.file_default, false);
  EXPECT_EQ(f.flag_default, true);
  EXPECT_EQ(FindFieldByFlag("anonymous-auth"), &f);
  EXPECT_EQ(Field("authentication.webhook.enabled").flag, "authentication-token-webhook");
  EXPECT_EQ(Field("authentication.webhook.enabled").flag_default, false);
  EXPECT_EQ(Field("authentication.webhook.enabled").file_default, true);
  EXPECT_EQ(Field("authentication.webhook.cacheTTL").file_default, "2m0s");
}

TEST(CatalogTest, AuthorizationModeIsWebhookInFilesAndAlwaysAllowForFlagsOnlyKubelets) {
  const FieldInfo& f = Field("authorization.mode");
  EXPECT_EQ(f.flag, "authorization-mode");
  EXPECT_EQ(f.file_default, "Webhook");
  EXPECT_EQ(f.flag_default, "AlwaysAllow");
  EXPECT_TRUE(f.zero_is_defaulted);
  EXPECT_EQ(Field("authorization.webhook.cacheAuthorizedTTL").file_default, "5m0s");
  EXPECT_EQ(Field("authorization.webhook.cacheUnauthorizedTTL").file_default, "30s");
}

TEST(CatalogTest, ClientCaFileHasNoDefault) {
  const FieldInfo& f = Field("authentication.x509.clientCAFile");
  EXPECT_EQ(f.type, ValueType::kString);
  EXPECT_EQ(f.flag, "client-ca-file");
  EXPECT_TRUE(f.file_default.is_null());
  EXPECT_EQ(f.zero, "");
}

TEST(CatalogTest, RotateCertificatesAndServerBootstrapFlags) {
  EXPECT_EQ(Field("rotateCertificates").flag, "rotate-certificates");
  EXPECT_EQ(Field("rotateCertificates").zero, false);
  EXPECT_TRUE(Field("rotateCertificates").file_default.is_null());
  // The serving-certificate flag is not named after the field.
  EXPECT_EQ(FindFieldByFlag("rotate-server-certificates"), &Field("serverTLSBootstrap"));
}

TEST(CatalogTest, ReadOnlyPortIsDisabledInFilesButLegacyDefaultIs10255) {
  const FieldInfo& f = Field("readOnlyPort");
  EXPECT_TRUE(f.file_default.is_null());
  EXPECT_EQ(f.zero, 0);
  EXPECT_EQ(f.flag_default, 10255);
  EXPECT_EQ(f.flag, "read-only-port");
}

TEST(CatalogTest, FeatureGateKeyResolvesToABoolInsideTheMap) {
  auto path = FieldPath::Parse("featureGates.RotateKubeletServerCertificate");
  ASSERT_TRUE(path.ok());
  auto match = LookupField(*path);
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->field->path, "featureGates");
  EXPECT_EQ(match->map_key, "RotateKubeletServerCertificate");
  EXPECT_EQ(match->type, ValueType::kBool);
  EXPECT_EQ(match->field->flag, "feature-gates");
  EXPECT_EQ(match->field->flag_syntax, FlagSyntax::kMap);
  EXPECT_EQ(match->field->map_separator, '=');
}

TEST(CatalogTest, EvictionHardKeyWithDotsResolvesAndUsesLessThanSeparator) {
  auto path = FieldPath::Parse(R"(evictionHard["memory.available"])");
  ASSERT_TRUE(path.ok());
  auto match = LookupField(*path);
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->field->path, "evictionHard");
  EXPECT_EQ(match->map_key, "memory.available");
  EXPECT_EQ(match->type, ValueType::kString);  // "100Mi" or "10%": not always a quantity
  EXPECT_EQ(match->field->map_separator, '<');
  EXPECT_EQ(match->field->file_default["memory.available"], "100Mi");
  EXPECT_EQ(Field("evictionSoft").map_separator, '<');
  EXPECT_EQ(Field("kubeReserved").map_separator, '=');
  EXPECT_EQ(Field("systemReserved").map_separator, '=');
  EXPECT_EQ(Field("kubeReserved").element_type, ValueType::kQuantity);
}

TEST(CatalogTest, UnknownPathsAndKeysOfNonMapsAreNotFound) {
  for (const char* text : {"noSuchField", "authentication.anonymous.enabled.extra",
                           "streamingConnectionIdleTimeout.x", "authentication.nope"}) {
    auto path = FieldPath::Parse(text);
    ASSERT_TRUE(path.ok()) << text;
    EXPECT_FALSE(LookupField(*path).has_value()) << text;
  }
  EXPECT_FALSE(LookupField(FieldPath()).has_value());
  EXPECT_EQ(FindFieldByFlag("hostname-override"), nullptr);  // KubeletFlags, not configuration
  EXPECT_EQ(FindFieldByFlag("no-such-flag"), nullptr);
  EXPECT_EQ(FindFieldByFlag(""), nullptr);
}

TEST(CatalogTest, CisBenchmarkFieldsAreCatalogued) {
  const std::pair<const char*, const char*> expected[] = {
      {"authentication.anonymous.enabled", "anonymous-auth"},
      {"authentication.webhook.enabled", "authentication-token-webhook"},
      {"authentication.webhook.cacheTTL", "authentication-token-webhook-cache-ttl"},
      {"authentication.x509.clientCAFile", "client-ca-file"},
      {"authorization.mode", "authorization-mode"},
      {"readOnlyPort", "read-only-port"},
      {"streamingConnectionIdleTimeout", "streaming-connection-idle-timeout"},
      {"protectKernelDefaults", "protect-kernel-defaults"},
      {"makeIPTablesUtilChains", "make-iptables-util-chains"},
      {"eventRecordQPS", "event-qps"},
      {"eventBurst", "event-burst"},
      {"tlsCertFile", "tls-cert-file"},
      {"tlsPrivateKeyFile", "tls-private-key-file"},
      {"tlsCipherSuites", "tls-cipher-suites"},
      {"tlsMinVersion", "tls-min-version"},
      {"rotateCertificates", "rotate-certificates"},
      {"featureGates", "feature-gates"},
      {"podPidsLimit", "pod-max-pids"},
      {"evictionHard", "eviction-hard"},
      {"staticPodPath", "pod-manifest-path"},
      {"cgroupDriver", "cgroup-driver"},
      {"maxPods", "max-pods"},
      {"clusterDNS", "cluster-dns"},
      {"clusterDomain", "cluster-domain"},
      {"address", "address"},
      {"port", "port"},
      {"healthzPort", "healthz-port"},
      {"seccompDefault", "seccomp-default"},
  };
  for (const auto& [path, flag] : expected) {
    EXPECT_EQ(Field(path).flag, flag) << path;
  }
  EXPECT_EQ(Field("tlsCipherSuites").type, ValueType::kStringList);
  EXPECT_EQ(Field("tlsCipherSuites").flag_syntax, FlagSyntax::kStringList);
  EXPECT_EQ(Field("clusterDNS").flag_syntax, FlagSyntax::kStringList);
  EXPECT_EQ(Field("podPidsLimit").file_default, -1);
  // Fields without a command-line flag.
  for (const char* path : {"nodeLeaseDurationSeconds", "shutdownGracePeriod", "memoryThrottlingFactor",
                           "enableProfilingHandler", "containerLogMaxWorkers", "failCgroupV1"}) {
    EXPECT_TRUE(Field(path).flag.empty()) << path;
    EXPECT_EQ(Field(path).flag_syntax, FlagSyntax::kNone) << path;
  }
}

TEST(CatalogTest, EveryEntryIsWellFormed) {
  const auto& catalog = KubeletFieldCatalog();
  ASSERT_GT(catalog.size(), 100u);
  std::set<std::string> flags;
  for (size_t i = 0; i < catalog.size(); ++i) {
    const FieldInfo& f = catalog[i];
    SCOPED_TRACE(f.path);
    if (i > 0) {
      EXPECT_LT(catalog[i - 1].path, f.path) << "paths must be unique and sorted";
    }
    auto parsed = FieldPath::Parse(f.path);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->ToString(), f.path);
    auto match = LookupField(*parsed);
    ASSERT_TRUE(match.has_value());
    EXPECT_EQ(match->field, &f);
    EXPECT_NE(f.type, ValueType::kUnknown);
    EXPECT_FALSE(f.description.empty());
    EXPECT_FALSE(f.zero.is_null());
    if (f.type == ValueType::kMap || f.type == ValueType::kStringList) {
      EXPECT_NE(f.element_type, ValueType::kUnknown);
    }
    if (f.zero_is_defaulted) {
      EXPECT_FALSE(f.file_default.is_null());
    }
    // Defaults have the field's shape.
    for (const nlohmann::json* v : {&f.file_default, &f.flag_default, &f.zero}) {
      if (v->is_null()) continue;
      switch (f.type) {
        case ValueType::kBool: EXPECT_TRUE(v->is_boolean()); break;
        case ValueType::kInt: EXPECT_TRUE(v->is_number_integer()); break;
        case ValueType::kFloat: EXPECT_TRUE(v->is_number()); break;
        case ValueType::kDuration:
          ASSERT_TRUE(v->is_string());
          EXPECT_TRUE(ParseGoDuration(v->get<std::string>()).has_value()) << *v;
          // Defaults are written the way the kubelet prints them in /configz.
          EXPECT_EQ(FormatGoDuration(*ParseGoDuration(v->get<std::string>())), *v);
          break;
        case ValueType::kString:
        case ValueType::kQuantity: EXPECT_TRUE(v->is_string()); break;
        case ValueType::kStringList: EXPECT_TRUE(v->is_array()); break;
        case ValueType::kMap:
        case ValueType::kObject: EXPECT_TRUE(v->is_object()); break;
        case ValueType::kUnknown: break;
      }
    }
    // Only the four legacy values of options.applyLegacyDefaults differ without --config.
    static const std::set<std::string> kLegacy = {"authentication.anonymous.enabled",
                                                  "authentication.webhook.enabled",
                                                  "authorization.mode", "readOnlyPort"};
    if (kLegacy.count(f.path) == 0) {
      EXPECT_EQ(f.flag_default, f.file_default);
    }
    if (f.flag.empty()) {
      EXPECT_EQ(f.flag_syntax, FlagSyntax::kNone);
      continue;
    }
    EXPECT_TRUE(flags.insert(f.flag).second) << "duplicate flag " << f.flag;
    EXPECT_EQ(f.flag.find_first_of("=_ "), std::string::npos);
    EXPECT_NE(f.flag[0], '-');
    EXPECT_EQ(FindFieldByFlag(f.flag), &f);
    switch (f.type) {
      case ValueType::kStringList: EXPECT_EQ(f.flag_syntax, FlagSyntax::kStringList); break;
      case ValueType::kMap:
        EXPECT_EQ(f.flag_syntax, FlagSyntax::kMap);
        EXPECT_TRUE(f.map_separator == '=' || f.map_separator == '<');
        break;
      default: EXPECT_EQ(f.flag_syntax, FlagSyntax::kScalar); break;
    }
  }
  // options.go AddKubeletConfigFlags registers 100 configuration flags; 97 are catalogued here
  // (manifest-url-header, reserved-memory and register-with-taints take structured values), plus
  // logging-format, log-flush-frequency, v from logsapi.AddFlags and KubeletFlags' seccomp-default.
  EXPECT_EQ(flags.size(), 101u);
}

TEST(CatalogTest, FeatureGateDefaultsFollowTheVersionedSpecs) {
  EXPECT_EQ(DefaultKubeletMinor(), 34);
  for (int minor = 26; minor <= 35; ++minor) {
    SCOPED_TRACE(minor);
    EXPECT_EQ(FeatureGateDefault("RotateKubeletServerCertificate", minor), true);
    EXPECT_EQ(FeatureGateDefault("SeccompDefault", minor), true);  // beta-on 1.25, GA 1.27, removed
    EXPECT_EQ(FeatureGateDefault("GracefulNodeShutdown", minor), true);
    EXPECT_EQ(FeatureGateDefault("CPUManager", minor), true);
    EXPECT_EQ(FeatureGateDefault("MemoryManager", minor), true);
    EXPECT_EQ(FeatureGateDefault("DisableAcceleratorUsageMetrics", minor), true);
    EXPECT_EQ(FeatureGateDefault("KubeletTracing", minor), minor >= 27);
    EXPECT_EQ(FeatureGateDefault("KubeletPodResourcesGet", minor),
              minor >= 27 ? std::optional<bool>(minor >= 34) : std::nullopt);
    EXPECT_EQ(FeatureGateDefault("AllowInsecureKubeletCertificateSigningRequests", minor), minor < 31);
    EXPECT_EQ(FeatureGateDefault("NodeSwap", minor), minor >= 30);
    EXPECT_EQ(FeatureGateDefault("KubeletFineGrainedAuthz", minor),
              minor >= 32 ? std::optional<bool>(minor >= 33) : std::nullopt);
  }
  EXPECT_EQ(FeatureGateDefault("RotateKubeletServerCertificate", 11), false);
  EXPECT_EQ(FeatureGateDefault("RotateKubeletServerCertificate", 6), std::nullopt);  // before alpha
  EXPECT_EQ(FeatureGateDefault("ReloadKubeletServerCertificateFile", 30), std::nullopt);
  EXPECT_EQ(FeatureGateDefault("ReloadKubeletServerCertificateFile", 31), true);
  EXPECT_EQ(FeatureGateDefault("NoSuchGate", 34), std::nullopt);
  EXPECT_EQ(FeatureGateDefault("seccompdefault", 34), std::nullopt);  // gate names are case-sensitive
}

}  // namespace
}  // namespace kpc::policy
