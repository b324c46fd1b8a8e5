package deploytest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// The kinds of objects the overlays may carry whose CRDs e2e/testenv does not have
// (cert-manager, Prometheus Operator). They are built and checked offline
// (TestKustomizeOverlays, TestServiceMonitorComponent) but cannot be validated by this API
// server; any other kind it does not serve fails the test.
var notInTestenv = map[string]bool{"cert-manager.io/v1": true, "monitoring.coreos.com/v1": true}

// installIdentity applies what the controller e2e tests apply (CRD, namespaces, both
// ServiceAccounts, RBAC): the live tests need the namespaces and the CRD to exist.
func installIdentity(t *testing.T, env *liveEnv) {
	t.Helper()
	env.mustKubectl(t, nil, "apply", "--server-side", "-k", repoPath("deploy", "overlays", "out-of-cluster"))
	env.mustKubectl(t, nil, "wait", "--for=condition=Established", "crd/kubeletpolicies.kubeletpolicy.io", "--timeout=60s")
}

func servedAPIVersions(t *testing.T, env *liveEnv) map[string]bool {
	t.Helper()
	served := map[string]bool{}
	for _, v := range strings.Fields(env.mustKubectl(t, nil, "api-versions")) {
		served[v] = true
	}
	return served
}

func marshalAll(t *testing.T, objs []obj) []byte {
	t.Helper()
	var b []byte
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, "---\n"...)
		b = append(b, y...)
	}
	return b
}

var applyLine = regexp.MustCompile(`(?m)^\S+ serverside-applied \(server dry run\)$`)

// TestLiveApplyOverlays: `kubectl apply --server-side --dry-run=server` of every overlay (and
// of the default with the ServiceMonitor component) against the real API server: schema and
// CEL validation, admission (Pod Security), server-side apply conflicts - of every object,
// except the kinds in notInTestenv, which are listed as skipped. Dry run, because the
// Service-backed webhook configurations cannot be reached in e2e/testenv (its egress refuses
// everything but loopback and node addresses) and, registered for real, would refuse every
// KubeletPolicy write in a shared environment.
func TestLiveApplyOverlays(t *testing.T) {
	env := needEnv(t)
	installIdentity(t, env)
	served := servedAPIVersions(t, env)
	for _, o := range overlays {
		t.Run(strings.ReplaceAll(o, "/", "_"), func(t *testing.T) {
			objs := kustomizeBuild(t, repoPath(o))
			var apply []obj
			var skipped []string
			for _, x := range objs {
				av := str(x, "apiVersion")
				switch {
				case served[av]:
					apply = append(apply, x)
				case notInTestenv[av]:
					skipped = append(skipped, key(x))
				default:
					t.Errorf("%s: the API server does not serve %s", key(x), av)
				}
			}
			if len(skipped) > 0 {
				t.Logf("skipped (no CRD in e2e/testenv): %s", strings.Join(skipped, ", "))
			}
			// kubectl's own kustomize must build what the library builds (the offline tests
			// use the library).
			kout := env.mustKubectl(t, nil, "kustomize", repoPath(o))
			if kobjs, err := decodeObjects([]byte(kout)); err != nil || !reflect.DeepEqual(byKey(kobjs), byKey(objs)) {
				t.Errorf("kubectl kustomize %s differs from the kustomize library's build (%v)", o, err)
			}
			// `kubectl apply -k` itself where every kind is served; the served objects only
			// (the same build) where some are not.
			dry := []string{"apply", "--server-side", "--dry-run=server", "--field-manager=kubelet-policy-deploy-test"}
			var stdin []byte
			if len(skipped) == 0 {
				dry = append(dry, "-k", repoPath(o))
			} else {
				dry = append(dry, "-f", "-")
				stdin = marshalAll(t, apply)
			}
			out, stderr, err := env.kubectl2(stdin, dry...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if n := len(applyLine.FindAllString(out, -1)); n != len(apply) {
				t.Errorf("%d of %d objects applied:\n%s", n, len(apply), out)
			}
			if strings.Contains(stderr, "Warning") {
				t.Errorf("warnings from the API server (Pod Security?):\n%s", stderr)
			}
			t.Logf("%s: %d objects validated by the API server (server-side apply, dry run), %d skipped", o, len(apply), len(skipped))
		})
	}
	// The README's literal command, client-side apply (last-applied annotations: the CRD must
	// fit in one), server dry run.
	if out, err := env.kubectl(nil, "apply", "-k", repoPath("deploy"), "--dry-run=server"); err != nil {
		t.Errorf("kubectl apply -k deploy/ (client-side): %v\n%s", err, out)
	}
}

// TestLivePodSecurity: the controller's pods are admitted under the `restricted` Pod Security
// level for real - the Deployments of the default overlay (operator and webhook) are applied
// (without the webhook configurations) and the ReplicaSet controller must create 2 pods of
// each in the restricted namespace (e2e/testenv has no scheduler: they stay Pending). And the namespace labels are
// in force: a privileged pod is refused there and admitted in the remediation namespace.
func TestLivePodSecurity(t *testing.T) {
	env := needEnv(t)
	installIdentity(t, env)
	var apply []obj
	for _, x := range kustomizeBuild(t, repoPath("deploy")) {
		switch x["kind"] {
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
		default:
			apply = append(apply, x)
		}
	}
	t.Cleanup(func() {
		for _, r := range []string{"deployment/kubelet-policy-controller", "deployment/kubelet-policy-controller-webhook",
			"service/kubelet-policy-controller-webhook", "service/kubelet-policy-controller-metrics",
			"poddisruptionbudget/kubelet-policy-controller", "poddisruptionbudget/kubelet-policy-controller-webhook",
			"networkpolicy/kubelet-policy-controller", "networkpolicy/kubelet-policy-controller-webhook"} {
			if out, err := env.kubectl(nil, "-n", systemNS, "delete", r, "--ignore-not-found", "--wait=true"); err != nil {
				t.Logf("cleanup: %v\n%s", err, out)
			}
		}
	})
	_, stderr, err := env.kubectl2(marshalAll(t, apply), "apply", "--server-side", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr, "PodSecurity") {
		t.Errorf("Pod Security warnings:\n%s", stderr)
	}
	for _, component := range []string{"controller", "webhook"} {
		eventually(t, 60*time.Second, "the ReplicaSet controller creates 2 "+component+" pods", func() error {
			out, err := env.kubectl(nil, "-n", systemNS, "get", "pods", "-l", "app.kubernetes.io/name=kubelet-policy-controller,app.kubernetes.io/component="+component, "-o", "name")
			if err != nil {
				return err
			}
			if n := len(strings.Fields(out)); n != 2 {
				ev, _ := env.kubectl(nil, "-n", systemNS, "get", "events", "--field-selector", "reason=FailedCreate", "-o", "custom-columns=MSG:.message", "--no-headers")
				return fmt.Errorf("%d pods (FailedCreate events: %s)", n, strings.TrimSpace(ev))
			}
			return nil
		})
	}
	// The pod the ReplicaSet created carries the restricted settings and the agent image.
	out := env.mustKubectl(t, nil, "-n", systemNS, "get", "pods", "-l", "app.kubernetes.io/component=controller", "-o", "json")
	var pods struct{ Items []obj }
	if err := json.Unmarshal([]byte(out), &pods); err != nil {
		t.Fatal(err)
	}
	c := get(pods.Items[0], "spec", "containers").([]any)[0].(obj)
	if v, _ := envValue(c, "KPC_AGENT_IMAGE"); v != c["image"] {
		t.Errorf("pod: KPC_AGENT_IMAGE %q, image %q", v, c["image"])
	}

	privileged := func(ns string) []byte {
		return []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kpc-deploy-test-privileged","namespace":%q},
"spec":{"hostPID":true,"containers":[{"name":"agent","image":"kubelet-policy-controller:0.1.0","securityContext":{"privileged":true},
"volumeMounts":[{"name":"host","mountPath":"/host"}]}],"volumes":[{"name":"host","hostPath":{"path":"/"}}]}}`, ns))
	}
	if out, err := env.kubectl(privileged(systemNS), "create", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "violates PodSecurity \"restricted") {
		t.Errorf("a privileged pod in %s: %v\n%s\nwant it refused by Pod Security restricted", systemNS, err, out)
	}
	if out, err := env.kubectl(privileged(remediationNS), "create", "--dry-run=server", "-f", "-"); err != nil {
		t.Errorf("a privileged pod (like a remediation Job's) in %s: %v\n%s", remediationNS, err, out)
	}
}

// --- kstatus ------------------------------------------------------------------------------

const kstatusLabel = "kpc-e2e=deploytests"

func policyManifest(name string) []byte {
	// Selects no node (no node has this label), so a controller running against the same
	// environment has nothing to check; the test writes the status itself.
	return []byte(fmt.Sprintf(`apiVersion: kubeletpolicy.io/v1alpha1
kind: KubeletPolicy
metadata:
  name: %s
  labels: {kpc-e2e: deploytests}
spec:
  nodeSelector: {matchLabels: {kpc-e2e-deploytests: none}}
  rules:
    - id: streaming-connection-idle-timeout
      config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: 0s}
      remediation: {value: 4h0m0s}
`, name))
}

func condition(typ, st, reason, msg string, gen int64) map[string]any {
	return map[string]any{"type": typ, "status": st, "reason": reason, "message": msg,
		"observedGeneration": gen, "lastTransitionTime": "2026-11-22T08:00:00Z"}
}

// statusLike returns a status in the shape controller/policy_status.cpp ComputeStatus writes.
func statusLike(phase string, gen int64) map[string]any {
	counts := "3 nodes selected: 2 compliant, 1 non-compliant, 0 unknown"
	s := map[string]any{
		"observedGeneration": gen,
		"summary":            map[string]any{"selectedNodes": 3, "compliantNodes": 2, "nonCompliantNodes": 1, "unknownNodes": 0, "remediatingNodes": 0},
		"rules":              []any{map[string]any{"id": "streaming-connection-idle-timeout", "failingNodes": 1}},
		"nodesTruncated":     false,
	}
	switch phase {
	case "ready":
		s["conditions"] = []any{condition("Ready", "True", "Checked", counts, gen), condition("Reconciling", "False", "Checked", "", gen),
			condition("Stalled", "False", "AsExpected", "", gen), condition("Compliant", "False", "NonCompliantNodes", "1 node does not comply: "+counts, gen)}
	case "checking":
		s["summary"] = map[string]any{"selectedNodes": 3, "compliantNodes": 1, "nonCompliantNodes": 0, "unknownNodes": 2, "remediatingNodes": 0}
		s["conditions"] = []any{condition("Ready", "False", "Checking", "checking nodes: 1/3 checked", gen),
			condition("Reconciling", "True", "Checking", "checking nodes: 1/3 checked", gen),
			condition("Stalled", "False", "AsExpected", "", gen), condition("Compliant", "Unknown", "Checking", "checking nodes", gen)}
	case "invalid":
		msg := `spec.rules[0].config.path: unknown kubelet field "streamingConnectionIdleTimeut"`
		delete(s, "summary")
		s["conditions"] = []any{condition("Ready", "False", "InvalidSpec", msg, gen), condition("Reconciling", "False", "InvalidSpec", "", gen),
			condition("Stalled", "True", "InvalidSpec", msg, gen), condition("Compliant", "Unknown", "InvalidSpec", "the policy cannot be evaluated", gen)}
	}
	return s
}

// TestLiveKstatus computes sigs.k8s.io/cli-utils kstatus (what Flux health checks and
// `kubectl wait`-style tools use) of live KubeletPolicy objects whose status is written
// through the status subresource as the controller writes it, and the Argo CD health of the
// same objects.
func TestLiveKstatus(t *testing.T) {
	env := needEnv(t)
	installIdentity(t, env)
	env.mustKubectl(t, nil, "delete", "kubeletpolicies", "-l", kstatusLabel, "--ignore-not-found", "--wait=true")
	t.Cleanup(func() { _, _ = env.kubectl(nil, "delete", "kubeletpolicies", "-l", kstatusLabel, "--ignore-not-found") })
	script := readHealthScript(t)

	live := func(t *testing.T, name string) obj {
		t.Helper()
		out := env.mustKubectl(t, nil, "get", "kubeletpolicy", name, "-o", "json")
		var o obj
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	writeStatus := func(t *testing.T, name string, st map[string]any) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"status": st})
		env.mustKubectl(t, nil, "patch", "kubeletpolicy", name, "--subresource=status", "--type=merge", "-p", string(b))
	}
	check := func(t *testing.T, name string, want status.Status, wantArgo string) {
		t.Helper()
		o := live(t, name)
		// kstatus wants the API machinery's JSON decoding (integers as int64).
		raw, _ := json.Marshal(o)
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		res, err := status.Compute(u)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != want {
			t.Errorf("%s: kstatus %s (%q), want %s; status:\n%s", name, res.Status, res.Message, want, toYAML(o["status"]))
		}
		hs := runHealthLua(t, script, o)
		if hs.Status != wantArgo {
			t.Errorf("%s: Argo CD health %+v, want %s", name, hs, wantArgo)
		}
		t.Logf("%s: kstatus %s %q; Argo CD %s %q", name, res.Status, res.Message, hs.Status, hs.Message)
	}
	generation := func(t *testing.T, name string) int64 {
		return int64(get(live(t, name), "metadata", "generation").(float64))
	}

	for _, tc := range []struct {
		name, phase string
		want        status.Status
		argo        string
	}{
		{"kpc-deploytest-current", "ready", status.CurrentStatus, "Healthy"},
		{"kpc-deploytest-inprogress", "checking", status.InProgressStatus, "Progressing"},
		{"kpc-deploytest-failed", "invalid", status.FailedStatus, "Degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.mustKubectl(t, policyManifest(tc.name), "apply", "-f", "-")
			writeStatus(t, tc.name, statusLike(tc.phase, generation(t, tc.name)))
			check(t, tc.name, tc.want, tc.argo)
		})
	}

	t.Run("stale observedGeneration", func(t *testing.T) {
		// A spec change after the last status write: generation moves past observedGeneration.
		name := "kpc-deploytest-current"
		before := generation(t, name)
		env.mustKubectl(t, nil, "patch", "kubeletpolicy", name, "--type=merge", "-p", `{"spec":{"checkInterval":"10m"}}`)
		if after := generation(t, name); after != before+1 {
			t.Fatalf("generation %d -> %d", before, after)
		}
		check(t, name, status.InProgressStatus, "Progressing")
		// The controller catches up: Current again.
		writeStatus(t, name, statusLike("ready", generation(t, name)))
		check(t, name, status.CurrentStatus, "Healthy")
	})

	t.Run("no status yet", func(t *testing.T) {
		// kstatus calls an object with neither status nor conditions Current; Argo CD's check
		// says Progressing. The Flux example (deploy/gitops/flux) therefore uses
		// healthCheckExprs that wait for Ready=True at the current generation.
		name := "kpc-deploytest-new"
		env.mustKubectl(t, policyManifest(name), "apply", "-f", "-")
		check(t, name, status.CurrentStatus, "Progressing")
	})
}
