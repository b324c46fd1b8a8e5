#include "policy/catalog.h"

#include <algorithm>
#include <map>
#include <utility>

namespace kpc::policy {
namespace {

// Sources, read through the code search index (stored revisions, not always the newest):
//  [T] staging/src/k8s.io/kubelet/config/v1beta1/types.go - JSON names, pointer vs value fields
//      (a v1.26-era revision; later fields taken from the defaulting code below).
//  [D] pkg/kubelet/apis/config/v1beta1/defaults.go, SetDefaults_KubeletConfiguration: the
//      kubernetes/kubernetes revision of v1.30, cross-checked against a verbatim port pinned to
//      release-1.34 (adds mergeDefaultEvictionSettings, failCgroupV1); defaults_linux.go for
//      DefaultEvictionHard (memory.available, nodefs.available, nodefs.inodesFree, imagefs.available).
//  [O] cmd/kubelet/app/options/options.go: AddKubeletConfigFlags (flag <-> field, a v1.29/v1.30
//      revision), KubeletFlags.AddFlags (--seccomp-default, --hostname-override, --node-ip are
//      not configuration), applyLegacyDefaults (anonymous auth on, webhook authn off, AlwaysAllow,
//      read-only port 10255: identical in every stored revision).
//  [S] cmd/kubelet/app/server.go, kubeletConfigFlagPrecedence: flags are re-parsed over the
//      defaulted file; only featureGates are merged back, other map flags replace the map.
//  [F] pkg/features/kube_features.go: the v1.35 revision's versioned specs carry each gate's
//      history; gates removed before v1.35 from the v1.25 and v1.27/28 revisions.
//
// "Zero is defaulted" follows the shape of the Go field in [T] and the test in [D]: a
// non-pointer field is defaulted with `if obj.X == zero`, so an explicit zero in a file is
// replaced too; a pointer field is defaulted with `if obj.X == nil`, so an explicit zero stays.

nlohmann::json ZeroOf(ValueType t) {
  switch (t) {
    case ValueType::kBool: return false;
    case ValueType::kInt: return 0;
    case ValueType::kFloat: return 0.0;
    case ValueType::kDuration: return "0s";
    case ValueType::kString:
    case ValueType::kQuantity: return "";
    case ValueType::kStringList: return nlohmann::json::array();
    case ValueType::kMap:
    case ValueType::kObject: return nlohmann::json::object();
    case ValueType::kUnknown: break;
  }
  return nullptr;
}

// Fluent construction keeps each catalog row on a few readable lines.
class Row {
 public:
  Row(const char* path, ValueType type, const char* description) {
    info_.path = path;
    info_.type = type;
    info_.zero = ZeroOf(type);
    info_.description = description;
  }
  Row& Elem(ValueType t) { info_.element_type = t; return *this; }
  // v1beta1 default of an absent field; also the flags-only default unless Legacy() says otherwise.
  Row& Default(nlohmann::json v) {
    info_.file_default = v;
    if (!legacy_set_) info_.flag_default = std::move(v);
    return *this;
  }
  Row& ZeroDefaulted() { info_.zero_is_defaulted = true; return *this; }
  // options.applyLegacyDefaults overrides the v1beta1 default for a kubelet without --config.
  Row& Legacy(nlohmann::json v) { info_.flag_default = std::move(v); legacy_set_ = true; return *this; }
  Row& Flag(const char* name, char map_separator = '=') {
    info_.flag = name;
    info_.map_separator = map_separator;
    switch (info_.type) {
      case ValueType::kStringList: info_.flag_syntax = FlagSyntax::kStringList; break;
      case ValueType::kMap: info_.flag_syntax = FlagSyntax::kMap; break;
      default: info_.flag_syntax = FlagSyntax::kScalar; break;
    }
    return *this;
  }
  FieldInfo Build() && { return std::move(info_); }

 private:
  FieldInfo info_;
  bool legacy_set_ = false;
};

using VT = ValueType;

std::vector<FieldInfo> BuildCatalog() {
  std::vector<Row> rows = {
      // --- server, authentication, authorization (CIS 4.2.x / 3.2.x) ---
      Row("enableServer", VT::kBool, "serve the kubelet's secured API").Default(true).Flag("enable-server"),
      Row("address", VT::kString, "IP address the kubelet serves on")
          .Default("0.0.0.0").ZeroDefaulted().Flag("address"),
      Row("port", VT::kInt, "port of the kubelet's authenticated API")
          .Default(10250).ZeroDefaulted().Flag("port"),
      // Not defaulted in [D] (0 = disabled); the flags-only kubelet serves 10255 ([O] applyLegacyDefaults).
      Row("readOnlyPort", VT::kInt, "unauthenticated read-only port (0 disables)")
          .Legacy(10255).Flag("read-only-port"),
      Row("authentication.anonymous.enabled", VT::kBool, "allow anonymous requests to the kubelet API")
          .Default(false).Legacy(true).Flag("anonymous-auth"),
      Row("authentication.webhook.enabled", VT::kBool, "authenticate bearer tokens with TokenReview")
          .Default(true).Legacy(false).Flag("authentication-token-webhook"),
      Row("authentication.webhook.cacheTTL", VT::kDuration, "cache duration of webhook authentication")
          .Default("2m0s").ZeroDefaulted().Flag("authentication-token-webhook-cache-ttl"),
      Row("authentication.x509.clientCAFile", VT::kString, "CA bundle for client certificate authentication")
          .Flag("client-ca-file"),
      Row("authorization.mode", VT::kString, "authorization mode: AlwaysAllow or Webhook")
          .Default("Webhook").ZeroDefaulted().Legacy("AlwaysAllow").Flag("authorization-mode"),
      Row("authorization.webhook.cacheAuthorizedTTL", VT::kDuration, "cache duration of 'authorized' answers")
          .Default("5m0s").ZeroDefaulted().Flag("authorization-webhook-cache-authorized-ttl"),
      Row("authorization.webhook.cacheUnauthorizedTTL", VT::kDuration, "cache duration of 'unauthorized' answers")
          .Default("30s").ZeroDefaulted().Flag("authorization-webhook-cache-unauthorized-ttl"),
      Row("tlsCertFile", VT::kString, "serving certificate file").Flag("tls-cert-file"),
      Row("tlsPrivateKeyFile", VT::kString, "serving private key file").Flag("tls-private-key-file"),
      Row("tlsCipherSuites", VT::kStringList, "allowed TLS cipher suites")
          .Elem(VT::kString).Flag("tls-cipher-suites"),
      Row("tlsMinVersion", VT::kString, "minimum TLS version").Flag("tls-min-version"),
      Row("rotateCertificates", VT::kBool, "rotate the kubelet client certificate").Flag("rotate-certificates"),
      // The flag name differs from the field name ([O]).
      Row("serverTLSBootstrap", VT::kBool, "request and rotate the serving certificate through CSRs")
          .Flag("rotate-server-certificates"),

      // --- pod sources ---
      Row("staticPodPath", VT::kString, "directory or file of static pods").Flag("pod-manifest-path"),
      Row("staticPodURL", VT::kString, "URL of additional static pods").Flag("manifest-url"),
      Row("syncFrequency", VT::kDuration, "max period between syncs of running containers")
          .Default("1m0s").ZeroDefaulted().Flag("sync-frequency"),
      Row("fileCheckFrequency", VT::kDuration, "period of static pod file checks")
          .Default("20s").ZeroDefaulted().Flag("file-check-frequency"),
      Row("httpCheckFrequency", VT::kDuration, "period of static pod URL checks")
          .Default("20s").ZeroDefaulted().Flag("http-check-frequency"),

      // --- rate limits ---
      Row("registryPullQPS", VT::kInt, "image pulls per second (0 = unlimited)")
          .Default(5).Flag("registry-qps"),
      Row("registryBurst", VT::kInt, "burst of image pulls")
          .Default(10).ZeroDefaulted().Flag("registry-burst"),
      // Pointer field: an explicit 0 (no limit) survives defaulting; [T]'s comment says 5 but [D] sets 50.
      Row("eventRecordQPS", VT::kInt, "event creations per second (0 = unlimited)")
          .Default(50).Flag("event-qps"),
      Row("eventBurst", VT::kInt, "burst of event creations")
          .Default(100).ZeroDefaulted().Flag("event-burst"),
      Row("kubeAPIQPS", VT::kInt, "QPS towards the API server").Default(50).Flag("kube-api-qps"),
      Row("kubeAPIBurst", VT::kInt, "burst towards the API server")
          .Default(100).ZeroDefaulted().Flag("kube-api-burst"),
      Row("contentType", VT::kString, "content type of API requests")
          .Default("application/vnd.kubernetes.protobuf").ZeroDefaulted().Flag("kube-api-content-type"),

      // --- debugging / health ---
      Row("enableDebuggingHandlers", VT::kBool, "serve logs, exec, attach and port-forward endpoints")
          .Default(true).Flag("enable-debugging-handlers"),
      Row("enableContentionProfiling", VT::kBool, "lock contention profiling").Flag("contention-profiling"),
      Row("enableProfilingHandler", VT::kBool, "serve /debug/pprof").Default(true),
      Row("enableDebugFlagsHandler", VT::kBool, "serve /debug/flags/v").Default(true),
      Row("enableSystemLogHandler", VT::kBool, "serve /logs").Default(true),
      Row("enableSystemLogQuery", VT::kBool, "node log query through /logs (NodeLogQuery gate)"),
      Row("healthzPort", VT::kInt, "localhost healthz port (0 disables)").Default(10248).Flag("healthz-port"),
      Row("healthzBindAddress", VT::kString, "healthz bind address")
          .Default("127.0.0.1").ZeroDefaulted().Flag("healthz-bind-address"),
      Row("oomScoreAdj", VT::kInt, "oom_score_adj of the kubelet").Default(-999).Flag("oom-score-adj"),

      // --- DNS / networking ---
      Row("clusterDomain", VT::kString, "cluster DNS domain").Flag("cluster-domain"),
      Row("clusterDNS", VT::kStringList, "cluster DNS server IPs").Elem(VT::kString).Flag("cluster-dns"),
      Row("resolvConf", VT::kString, "resolver configuration for pods")
          .Default("/etc/resolv.conf").Flag("resolv-conf"),
      Row("hairpinMode", VT::kString, "hairpin NAT mode")
          .Default("promiscuous-bridge").ZeroDefaulted().Flag("hairpin-mode"),
      Row("podCIDR", VT::kString, "pod CIDR (standalone mode)").Flag("pod-cidr"),
      Row("makeIPTablesUtilChains", VT::kBool, "ensure the iptables utility chains exist")
          .Default(true).Flag("make-iptables-util-chains"),
      Row("iptablesMasqueradeBit", VT::kInt, "fwmark bit for SNAT (no effect)")
          .Default(14).Flag("iptables-masquerade-bit"),
      Row("iptablesDropBit", VT::kInt, "fwmark bit for dropping (no effect)")
          .Default(15).Flag("iptables-drop-bit"),

      // --- streaming, node status ---
      Row("streamingConnectionIdleTimeout", VT::kDuration, "idle timeout of exec/attach/port-forward streams")
          .Default("4h0m0s").ZeroDefaulted().Flag("streaming-connection-idle-timeout"),
      Row("nodeStatusUpdateFrequency", VT::kDuration, "period of node status computation")
          .Default("10s").ZeroDefaulted().Flag("node-status-update-frequency"),
      // Default is nodeStatusUpdateFrequency when that is set explicitly ([D]); handled in
      // effective_config.cpp.
      Row("nodeStatusReportFrequency", VT::kDuration, "period of unchanged node status reports")
          .Default("5m0s").ZeroDefaulted(),
      Row("nodeLeaseDurationSeconds", VT::kInt, "duration of the node Lease").Default(40).ZeroDefaulted(),
      Row("nodeStatusMaxImages", VT::kInt, "images reported in node status (-1 = no cap)")
          .Default(50).Flag("node-status-max-images"),
      Row("providerID", VT::kString, "cloud provider ID of the node").Flag("provider-id"),
      Row("registerNode", VT::kBool, "register the node with the API server").Default(true).Flag("register-node"),

      // --- images, garbage collection ---
      Row("imageMinimumGCAge", VT::kDuration, "minimum age of an unused image before GC")
          .Default("2m0s").ZeroDefaulted().Flag("minimum-image-ttl-duration"),
      Row("imageMaximumGCAge", VT::kDuration, "maximum age of an unused image (0 = none)"),
      Row("imageGCHighThresholdPercent", VT::kInt, "disk usage that always triggers image GC")
          .Default(85).Flag("image-gc-high-threshold"),
      Row("imageGCLowThresholdPercent", VT::kInt, "disk usage image GC frees down to")
          .Default(80).Flag("image-gc-low-threshold"),
      // Default depends on maxParallelImagePulls ([D]); handled in effective_config.cpp.
      Row("serializeImagePulls", VT::kBool, "pull one image at a time")
          .Default(true).Flag("serialize-image-pulls"),
      Row("maxParallelImagePulls", VT::kInt, "maximum parallel image pulls"),
      Row("volumeStatsAggPeriod", VT::kDuration, "period of volume disk usage calculation")
          .Default("1m0s").ZeroDefaulted().Flag("volume-stats-agg-period"),
      Row("volumePluginDir", VT::kString, "directory of flex volume plugins")
          .Default("/usr/libexec/kubernetes/kubelet-plugins/volume/exec/").ZeroDefaulted()
          .Flag("volume-plugin-dir"),

      // --- cgroups, resource managers ---
      Row("kubeletCgroups", VT::kString, "cgroup of the kubelet").Flag("kubelet-cgroups"),
      Row("systemCgroups", VT::kString, "cgroup of non-kernel system processes").Flag("system-cgroups"),
      Row("cgroupRoot", VT::kString, "root cgroup for pods").Flag("cgroup-root"),
      Row("cgroupsPerQOS", VT::kBool, "QoS cgroup hierarchy").Default(true).Flag("cgroups-per-qos"),
      Row("cgroupDriver", VT::kString, "cgroup driver: cgroupfs or systemd")
          .Default("cgroupfs").ZeroDefaulted().Flag("cgroup-driver"),
      Row("cpuManagerPolicy", VT::kString, "CPU manager policy")
          .Default("none").ZeroDefaulted().Flag("cpu-manager-policy"),
      // --cpu-manager-policy-options is a NoSplit map: one key=value per flag occurrence.
      Row("cpuManagerPolicyOptions", VT::kMap, "CPU manager policy options")
          .Elem(VT::kString).Flag("cpu-manager-policy-options"),
      Row("cpuManagerReconcilePeriod", VT::kDuration, "CPU manager reconcile period")
          .Default("10s").ZeroDefaulted().Flag("cpu-manager-reconcile-period"),
      Row("memoryManagerPolicy", VT::kString, "memory manager policy")
          .Default("None").ZeroDefaulted().Flag("memory-manager-policy"),
      Row("topologyManagerPolicy", VT::kString, "topology manager policy")
          .Default("none").ZeroDefaulted().Flag("topology-manager-policy"),
      Row("topologyManagerScope", VT::kString, "topology manager scope")
          .Default("container").ZeroDefaulted().Flag("topology-manager-scope"),
      Row("topologyManagerPolicyOptions", VT::kMap, "topology manager policy options")
          .Elem(VT::kString).Flag("topology-manager-policy-options"),
      Row("qosReserved", VT::kMap, "memory reserved per QoS tier").Elem(VT::kString).Flag("qos-reserved"),
      Row("reservedSystemCPUs", VT::kString, "CPUs reserved for the system").Flag("reserved-cpus"),
      Row("cpuCFSQuota", VT::kBool, "enforce CPU CFS quota").Default(true).Flag("cpu-cfs-quota"),
      Row("cpuCFSQuotaPeriod", VT::kDuration, "CPU CFS quota period")
          .Default("100ms").Flag("cpu-cfs-quota-period"),
      Row("memoryThrottlingFactor", VT::kFloat, "memory.high factor for MemoryQoS").Default(0.9),
      Row("runtimeRequestTimeout", VT::kDuration, "timeout of CRI requests")
          .Default("2m0s").ZeroDefaulted().Flag("runtime-request-timeout"),
      Row("maxPods", VT::kInt, "maximum pods on the node").Default(110).ZeroDefaulted().Flag("max-pods"),
      Row("podsPerCore", VT::kInt, "maximum pods per core (0 = no limit)").Flag("pods-per-core"),
      // nil or negative becomes -1 ([D]); handled in effective_config.cpp.
      Row("podPidsLimit", VT::kInt, "maximum PIDs per pod (-1 = node allocatable)")
          .Default(-1).Flag("pod-max-pids"),
      Row("maxOpenFiles", VT::kInt, "open files limit of the kubelet")
          .Default(1000000).ZeroDefaulted().Flag("max-open-files"),
      Row("runOnce", VT::kBool, "run static pods once and exit").Flag("runonce"),
      Row("failSwapOn", VT::kBool, "refuse to start when swap is on").Default(true).Flag("fail-swap-on"),
      Row("memorySwap.swapBehavior", VT::kString, "swap available to workloads (NodeSwap)"),
      Row("failCgroupV1", VT::kBool, "refuse to start on cgroup v1").Default(false),
      Row("localStorageCapacityIsolation", VT::kBool, "local ephemeral storage isolation")
          .Default(true).Flag("local-storage-capacity-isolation"),
      Row("kernelMemcgNotification", VT::kBool, "memcg notifications for memory eviction")
          .Flag("kernel-memcg-notification"),
      Row("enableControllerAttachDetach", VT::kBool, "let the attach/detach controller manage volumes")
          .Default(true).Flag("enable-controller-attach-detach"),
      Row("allowedUnsafeSysctls", VT::kStringList, "unsafe sysctls pods may set")
          .Elem(VT::kString).Flag("allowed-unsafe-sysctls"),
      Row("protectKernelDefaults", VT::kBool, "fail instead of changing kernel tunables")
          .Flag("protect-kernel-defaults"),
      // --seccomp-default is a KubeletFlags flag ([O]); the kubelet ORs it with this field, so the
      // flag can turn the behaviour on but not off (effective_config.cpp).
      Row("seccompDefault", VT::kBool, "RuntimeDefault seccomp profile for all workloads")
          .Default(false).Flag("seccomp-default"),

      // --- eviction, node allocatable ---
      // '<' separated on the command line (cliflag.NewLangleSeparatedMapStringString in [O]).
      Row("evictionHard", VT::kMap, "hard eviction thresholds")
          .Elem(VT::kString)
          .Default({{"memory.available", "100Mi"}, {"nodefs.available", "10%"},
                    {"nodefs.inodesFree", "5%"}, {"imagefs.available", "15%"}})
          .Flag("eviction-hard", '<'),
      Row("evictionSoft", VT::kMap, "soft eviction thresholds").Elem(VT::kString).Flag("eviction-soft", '<'),
      Row("evictionSoftGracePeriod", VT::kMap, "grace periods of soft eviction thresholds")
          .Elem(VT::kDuration).Flag("eviction-soft-grace-period"),
      Row("evictionPressureTransitionPeriod", VT::kDuration, "wait before leaving an eviction pressure condition")
          .Default("5m0s").ZeroDefaulted().Flag("eviction-pressure-transition-period"),
      Row("evictionMaxPodGracePeriod", VT::kInt, "max grace period for soft evictions (seconds)")
          .Flag("eviction-max-pod-grace-period"),
      Row("evictionMinimumReclaim", VT::kMap, "minimum reclaim per eviction signal")
          .Elem(VT::kString).Flag("eviction-minimum-reclaim"),
      Row("mergeDefaultEvictionSettings", VT::kBool, "merge default eviction thresholds into evictionHard")
          .Default(false),
      Row("systemReserved", VT::kMap, "resources reserved for the OS").Elem(VT::kQuantity).Flag("system-reserved"),
      Row("kubeReserved", VT::kMap, "resources reserved for Kubernetes daemons")
          .Elem(VT::kQuantity).Flag("kube-reserved"),
      Row("systemReservedCgroup", VT::kString, "cgroup enforcing systemReserved").Flag("system-reserved-cgroup"),
      Row("kubeReservedCgroup", VT::kString, "cgroup enforcing kubeReserved").Flag("kube-reserved-cgroup"),
      Row("enforceNodeAllocatable", VT::kStringList, "node allocatable enforcement levels")
          .Elem(VT::kString).Default(nlohmann::json::array({"pods"})).Flag("enforce-node-allocatable"),

      // --- container logs, runtime ---
      Row("containerLogMaxSize", VT::kQuantity, "container log size before rotation")
          .Default("10Mi").ZeroDefaulted().Flag("container-log-max-size"),
      Row("containerLogMaxFiles", VT::kInt, "rotated container log files kept")
          .Default(5).Flag("container-log-max-files"),
      Row("containerLogMaxWorkers", VT::kInt, "concurrent log rotation workers").Default(1),
      Row("containerLogMonitorInterval", VT::kDuration, "container log monitoring period").Default("10s"),
      Row("podLogsDir", VT::kString, "directory of pod logs").Default("/var/log/pods").ZeroDefaulted(),
      Row("containerRuntimeEndpoint", VT::kString, "CRI runtime endpoint")
          .Default("unix:///run/containerd/containerd.sock").ZeroDefaulted()
          .Flag("container-runtime-endpoint"),
      Row("imageServiceEndpoint", VT::kString, "CRI image service endpoint").Flag("image-service-endpoint"),
      Row("configMapAndSecretChangeDetectionStrategy", VT::kString, "Get, Cache or Watch")
          .Default("Watch").ZeroDefaulted(),
      Row("shutdownGracePeriod", VT::kDuration, "node shutdown delay for pods (GracefulNodeShutdown)"),
      Row("shutdownGracePeriodCriticalPods", VT::kDuration, "part of shutdownGracePeriod for critical pods"),

      // --- feature gates, logging ---
      Row("featureGates", VT::kMap, "feature gates; an absent gate has its version default")
          .Elem(VT::kBool).Flag("feature-gates"),
      // logsapi.SetRecommendedLoggingConfiguration defaults format and flushFrequency on zero.
      Row("logging.format", VT::kString, "log format").Default("text").ZeroDefaulted().Flag("logging-format"),
      Row("logging.flushFrequency", VT::kDuration, "log flush period")
          .Default("5s").ZeroDefaulted().Flag("log-flush-frequency"),
      Row("logging.verbosity", VT::kInt, "log verbosity (-v)").Flag("v"),
  };
  std::vector<FieldInfo> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r).Build());
  std::sort(out.begin(), out.end(),
            [](const FieldInfo& a, const FieldInfo& b) { return a.path < b.path; });
  return out;
}

struct Index {
  std::vector<FieldInfo> fields;
  std::map<std::vector<std::string>, const FieldInfo*> by_segments;
  std::map<std::string, const FieldInfo*, std::less<>> by_flag;
};

const Index& TheIndex() {
  static const Index* index = [] {
    auto* idx = new Index;
    idx->fields = BuildCatalog();
    for (const auto& f : idx->fields) {
      auto parsed = FieldPath::Parse(f.path);
      if (parsed.ok()) idx->by_segments.emplace(parsed->segments(), &f);
      if (!f.flag.empty()) idx->by_flag.emplace(f.flag, &f);
    }
    return idx;
  }();
  return *index;
}

// One step of a gate's history: from kubelet 1.<minor> on, the default is `enabled`.
struct GateStep {
  int minor;
  bool enabled;
};
struct GateHistory {
  const char* name;
  std::vector<GateStep> steps;  // ascending
};

// From [F] (v1.35 kube_features.go's versioned specs, which keep each gate's history). Gates
// that were removed after GA (SeccompDefault, CPUManager, DisableAcceleratorUsageMetrics) keep
// their locked value: the feature is permanently on, and such a gate cannot be set any more.
// Steps at minor 0 are "1.0" entries: behaviour before the gate existed.
const std::vector<GateHistory>& GateTable() {
  static const auto* table = new std::vector<GateHistory>{
      {"AllowDNSOnlyNodeCSR", {{0, true}, {31, false}}},
      {"AllowInsecureKubeletCertificateSigningRequests", {{0, true}, {31, false}}},
      // v1.31 file: alpha 1.8, beta 1.10, GA (locked) 1.26; gone from the v1.35 file.
      {"CPUManager", {{8, false}, {10, true}}},
      {"CPUManagerPolicyAlphaOptions", {{23, false}}},
      {"CPUManagerPolicyBetaOptions", {{23, true}}},
      {"CPUManagerPolicyOptions", {{22, false}, {23, true}}},
      {"ContainerCheckpoint", {{25, false}, {30, true}}},
      // v1.25 and v1.27 files: GA, locked true; gone from later files. The alpha/beta steps
      // before 1.25 are from the KEP's history, not re-read in a source file.
      {"DisableAcceleratorUsageMetrics", {{19, false}, {20, true}}},
      {"GracefulNodeShutdown", {{20, false}, {21, true}}},
      {"GracefulNodeShutdownBasedOnPodPriority", {{23, false}, {24, true}}},
      {"ImageMaximumGCAge", {{29, false}, {30, true}}},
      {"KubeletCgroupDriverFromCRI", {{28, false}, {31, true}}},
      {"KubeletCrashLoopBackOffMax", {{32, false}, {35, true}}},
      {"KubeletEnsureSecretPulledImages", {{33, false}, {35, true}}},
      {"KubeletFineGrainedAuthz", {{32, false}, {33, true}}},
      {"KubeletInUserNamespace", {{22, false}}},
      {"KubeletPSI", {{33, false}, {34, true}}},
      {"KubeletPodResourcesDynamicResources", {{27, false}, {34, true}}},
      {"KubeletPodResourcesGet", {{27, false}, {34, true}}},
      {"KubeletRegistrationGetOnExistsOnly", {{0, true}, {32, false}}},
      {"KubeletSeparateDiskGC", {{29, false}, {31, true}}},
      {"KubeletServiceAccountTokenForCredentialProviders", {{33, false}, {34, true}}},
      {"KubeletTracing", {{25, false}, {27, true}}},  // GA (locked) in 1.34
      {"MemoryManager", {{21, false}, {22, true}}},   // GA (locked) in 1.32
      {"MemoryQoS", {{22, false}}},
      {"NodeSwap", {{22, false}, {30, true}}},        // GA (locked) in 1.34
      {"ReloadKubeletServerCertificateFile", {{31, true}}},
      {"RotateKubeletServerCertificate", {{7, false}, {12, true}}},
      // v1.25 file: beta, default true; v1.27/v1.28 files: GA, locked true, "remove in 1.29".
      // The 1.22 alpha step is from the KEP's history, not re-read in a source file.
      {"SeccompDefault", {{22, false}, {25, true}}},
  };
  return *table;
}

}  // namespace

const std::vector<FieldInfo>& KubeletFieldCatalog() { return TheIndex().fields; }

std::optional<FieldMatch> LookupField(const FieldPath& path) {
  const auto& idx = TheIndex();
  if (path.empty()) return std::nullopt;
  auto it = idx.by_segments.find(path.segments());
  if (it != idx.by_segments.end()) {
    return FieldMatch{it->second, std::nullopt, it->second->type};
  }
  // A key inside a map field: featureGates.SeccompDefault, evictionHard["memory.available"].
  if (path.size() >= 2) {
    auto parent = idx.by_segments.find(path.Prefix(path.size() - 1).segments());
    if (parent != idx.by_segments.end() && parent->second->type == ValueType::kMap) {
      return FieldMatch{parent->second, path.segments().back(), parent->second->element_type};
    }
  }
  return std::nullopt;
}

const FieldInfo* FindFieldByFlag(std::string_view flag) {
  const auto& idx = TheIndex();
  auto it = idx.by_flag.find(flag);
  return it == idx.by_flag.end() ? nullptr : it->second;
}

std::optional<bool> FeatureGateDefault(std::string_view gate, int kubelet_minor) {
  for (const auto& g : GateTable()) {
    if (gate != g.name) continue;
    std::optional<bool> result;
    for (const auto& step : g.steps) {
      if (step.minor <= kubelet_minor) result = step.enabled;
    }
    return result;
  }
  return std::nullopt;
}

int DefaultKubeletMinor() { return 34; }

}  // namespace kpc::policy
