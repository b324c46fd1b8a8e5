package deploytest

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

var (
	chartDir       = repoPath("deploy", "helm", "kubelet-policy-controller")
	systemNS       = "kubelet-policy-system"
	remediationNS  = "kubelet-policy-remediation"
	controllerName = "kubelet-policy-controller"
)

// overlays are the kustomizations users apply; "deploy" is what `kubectl apply -k deploy/` installs.
var overlays = []string{"deploy", "deploy/overlays/self-managed", "deploy/overlays/cert-manager", "deploy/overlays/out-of-cluster"}

func controllerContainer(t *testing.T, objs []obj) obj {
	t.Helper()
	d := find(t, objs, "Deployment", controllerName)
	cs, _ := get(d, "spec", "template", "spec", "containers").([]any)
	for _, c := range cs {
		if c.(obj)["name"] == "controller" {
			return c.(obj)
		}
	}
	t.Fatal("the Deployment has no container named controller")
	return nil
}

func args(c obj) []string {
	var out []string
	for _, a := range c["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

func envValue(c obj, name string) (string, bool) {
	for _, e := range c["env"].([]any) {
		if e.(obj)["name"] == name {
			v, _ := e.(obj)["value"].(string)
			return v, true
		}
	}
	return "", false
}

func hasArg(c obj, a string) bool {
	for _, x := range args(c) {
		if x == a {
			return true
		}
	}
	return false
}

// TestKustomizeOverlays builds every overlay and checks what each must (and must not) contain.
func TestKustomizeOverlays(t *testing.T) {
	built := map[string][]obj{}
	for _, o := range overlays {
		built[o] = kustomizeBuild(t, repoPath(o))
	}
	if !reflect.DeepEqual(built["deploy"], built["deploy/overlays/self-managed"]) {
		t.Errorf("kubectl apply -k deploy/ must install deploy/overlays/self-managed")
	}
	for _, o := range []string{"deploy/overlays/self-managed", "deploy/overlays/cert-manager"} {
		objs := built[o]
		c := controllerContainer(t, objs)
		// Remediation Jobs run the controller's own image.
		if v, _ := envValue(c, "KPC_AGENT_IMAGE"); v != c["image"] || !hasArg(c, "--agent-image=$(KPC_AGENT_IMAGE)") {
			t.Errorf("%s: KPC_AGENT_IMAGE %q, --agent-image from it %v, want the container image %q", o, v, hasArg(c, "--agent-image=$(KPC_AGENT_IMAGE)"), c["image"])
		}
		if first, _, found := strings.Cut(c["image"].(string), "/"); found && (strings.ContainsAny(first, ".:") || first == "localhost") {
			t.Errorf("%s: image %q names a registry host; manifests carry none", o, c["image"])
		}
		for _, a := range []string{"--leader-elect=true", "--health-addr=:8081", "--metrics-addr=:8080", "--webhook-addr=:9443",
			"--webhook-cert-dir=/var/run/kubelet-policy-controller/webhook-certs", "--remediation-namespace=" + remediationNS} {
			if !hasArg(c, a) {
				t.Errorf("%s: the controller lacks %s", o, a)
			}
		}
		mode := "self-managed"
		if strings.HasSuffix(o, "cert-manager") {
			mode = "cert-manager"
		}
		if !hasArg(c, "--webhook-cert-mode="+mode) {
			t.Errorf("%s: want --webhook-cert-mode=%s in %v", o, mode, args(c))
		}
		sec := get(c, "securityContext").(obj)
		if sec["readOnlyRootFilesystem"] != true || sec["allowPrivilegeEscalation"] != false || sec["runAsNonRoot"] != true ||
			!reflect.DeepEqual(get(sec, "capabilities", "drop"), []any{"ALL"}) || str(sec, "seccompProfile", "type") != "RuntimeDefault" {
			t.Errorf("%s: container securityContext is not restricted: %v", o, sec)
		}
		for _, kind := range []string{"Service", "PodDisruptionBudget", "NetworkPolicy", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
			found := false
			for _, x := range objs {
				found = found || x["kind"] == kind
			}
			if !found {
				t.Errorf("%s: no %s", o, kind)
			}
		}
		// The webhooks call the Service that selects the controller pods.
		for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
			w := find(t, objs, kind, controllerName)
			svc := get(w["webhooks"].([]any)[0], "clientConfig", "service").(obj)
			if svc["name"] != "kubelet-policy-controller-webhook" || svc["namespace"] != systemNS {
				t.Errorf("%s: %s calls %v", o, kind, svc)
			}
			inject := str(w, "metadata", "annotations", "cert-manager.io/inject-ca-from")
			if (mode == "cert-manager") != (inject == systemNS+"/kubelet-policy-controller-webhook") {
				t.Errorf("%s: %s cert-manager.io/inject-ca-from %q", o, kind, inject)
			}
		}
		// Least privilege: the self-managed certificate RBAC exists only where it is used.
		hasCertRBAC := false
		for _, x := range objs {
			hasCertRBAC = hasCertRBAC || str(x, "metadata", "name") == "kubelet-policy-controller-webhook-certs"
		}
		if hasCertRBAC != (mode == "self-managed") {
			t.Errorf("%s: webhook-certs RBAC present=%v", o, hasCertRBAC)
		}
		// No wildcards in any rule.
		for _, x := range objs {
			if x["kind"] != "ClusterRole" && x["kind"] != "Role" {
				continue
			}
			for _, r := range x["rules"].([]any) {
				for _, f := range []string{"apiGroups", "resources", "verbs"} {
					for _, v := range r.(obj)[f].([]any) {
						if strings.Contains(v.(string), "*") {
							t.Errorf("%s: %s has a wildcard %s: %v", o, key(x), f, r)
						}
					}
				}
			}
		}
	}
	// Out of cluster: identity and permissions only.
	for _, x := range built["deploy/overlays/out-of-cluster"] {
		switch x["kind"] {
		case "CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			t.Errorf("out-of-cluster overlay has %s", key(x))
		}
	}
	// The namespaces' Pod Security levels.
	for ns, level := range map[string]string{systemNS: "restricted", remediationNS: "privileged"} {
		n := find(t, built["deploy"], "Namespace", ns)
		if got := str(n, "metadata", "labels", "pod-security.kubernetes.io/enforce"); got != level {
			t.Errorf("namespace %s enforces %q, want %q", ns, got, level)
		}
	}
}

// TestServiceMonitorComponent composes the default overlay with the ServiceMonitor component
// (as a user's kustomization would) and checks it scrapes the metrics Service's port.
func TestServiceMonitorComponent(t *testing.T) {
	dir := t.TempDir()
	rel := func(p string) string { // kustomize refuses absolute paths
		r, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "resources:\n  - " + rel(repoPath("deploy", "overlays", "self-managed")) + "\ncomponents:\n  - " + rel(repoPath("deploy", "components", "servicemonitor")) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := kustomizeBuild(t, dir)
	sm := find(t, objs, "ServiceMonitor", controllerName)
	svc := find(t, objs, "Service", "kubelet-policy-controller-metrics")
	for k, v := range get(sm, "spec", "selector", "matchLabels").(obj) {
		if get(svc, "metadata", "labels", k) != v {
			t.Errorf("the ServiceMonitor selects %s=%v; the metrics Service has %v", k, v, get(svc, "metadata", "labels"))
		}
	}
	if str(get(sm, "spec", "endpoints").([]any)[0].(obj), "port") != str(get(svc, "spec", "ports").([]any)[0].(obj), "name") {
		t.Errorf("the ServiceMonitor's endpoint port is not the metrics Service's port name")
	}
}

// --- Helm --------------------------------------------------------------------------------

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return c
}

// helmTemplate renders the chart like `helm template kubelet-policy-controller CHART
// --namespace kubelet-policy-system --include-crds --set ...`, with schema validation.
func helmTemplate(t *testing.T, c *chart.Chart, vals map[string]any) []obj {
	t.Helper()
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{
		Name: controllerName, Namespace: systemNS, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatalf("helm values: %v", err)
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var all bytes.Buffer
	for _, crd := range c.CRDObjects() {
		all.Write(crd.File.Data)
		all.WriteString("\n---\n")
	}
	for _, name := range sortedKeys(files) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		all.WriteString(files[name])
		all.WriteString("\n---\n")
	}
	objs, err := decodeObjects(all.Bytes())
	if err != nil {
		t.Fatalf("helm template output: %v\n%s", err, all.String())
	}
	return objs
}

// helmOnlyLabels are the labels the chart adds for Helm's sake; the comparison with kustomize
// ignores them (selectors never carry them).
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

func normalize(objs []obj) map[string]obj {
	for _, o := range objs {
		for _, p := range [][]string{{"metadata", "labels"}, {"spec", "template", "metadata", "labels"}} {
			if l, ok := get(o, p...).(obj); ok {
				for _, k := range helmOnlyLabels {
					delete(l, k)
				}
			}
		}
	}
	return byKey(objs)
}

func compareObjects(t *testing.T, what string, helm, kust []obj) {
	t.Helper()
	h, k := normalize(helm), normalize(kust)
	for _, key := range sortedKeys(k) {
		if _, ok := h[key]; !ok {
			t.Errorf("%s: kustomize renders %s, Helm does not", what, key)
		}
	}
	for _, key := range sortedKeys(h) {
		ko, ok := k[key]
		if !ok {
			t.Errorf("%s: Helm renders %s, kustomize does not", what, key)
			continue
		}
		if !reflect.DeepEqual(h[key], ko) {
			t.Errorf("%s: %s differs\n--- helm\n%s--- kustomize\n%s", what, key, toYAML(h[key]), toYAML(ko))
		}
	}
}

func TestHelmLint(t *testing.T) {
	for _, vals := range []map[string]any{
		nil,
		{"certMode": "cert-manager", "serviceMonitor": map[string]any{"enabled": true}, "createNamespace": true},
	} {
		l := lint.AllWithKubeVersion(chartDir, vals, systemNS, nil)
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint (values %v): %s", vals, m)
			} else {
				t.Logf("helm lint (values %v): %s", vals, m)
			}
		}
	}
}

// TestHelmTemplateMatchesKustomize: with default values the chart renders the objects of
// `kubectl kustomize deploy/`, except the release namespace (created by `helm install
// --create-namespace` or by hand, see values.yaml); with createNamespace=true, all of them;
// certMode=cert-manager renders deploy/overlays/cert-manager.
func TestHelmTemplateMatchesKustomize(t *testing.T) {
	c := loadChart(t)
	kust := kustomizeBuild(t, repoPath("deploy"))
	var withoutNS []obj
	for _, o := range kustomizeBuild(t, repoPath("deploy")) {
		if !(o["kind"] == "Namespace" && str(o, "metadata", "name") == systemNS) {
			withoutNS = append(withoutNS, o)
		}
	}
	compareObjects(t, "default values", helmTemplate(t, c, nil), withoutNS)
	compareObjects(t, "createNamespace=true", helmTemplate(t, c, map[string]any{"createNamespace": true}), kust)
	compareObjects(t, "certMode=cert-manager", helmTemplate(t, c, map[string]any{"createNamespace": true, "certMode": "cert-manager"}),
		kustomizeBuild(t, repoPath("deploy", "overlays", "cert-manager")))
}

// TestHelmValues: the values users set reach the objects.
func TestHelmValues(t *testing.T) {
	c := loadChart(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	objs := helmTemplate(t, c, map[string]any{
		"image":                 map[string]any{"repository": "mirror/kubelet-policy-controller", "digest": digest},
		"replicaCount":          3,
		"logFormat":             "text",
		"kubeAPI":               map[string]any{"qps": 100, "burst": 200},
		"configz":               map[string]any{"concurrency": 20, "qps": 80, "timeout": "5s"},
		"remediation":           map[string]any{"namespace": "kpc-jobs"},
		"resources":             map[string]any{"limits": map[string]any{"memory": "1Gi"}},
		"kubeletRestartCommand": "nsenter --target 1 --mount -- systemctl restart kubelet",
		"serviceMonitor":        map[string]any{"enabled": true},
	})
	ctr := controllerContainer(t, objs)
	want := "mirror/kubelet-policy-controller@" + digest
	if ctr["image"] != want {
		t.Errorf("image %v, want %s", ctr["image"], want)
	}
	if v, _ := envValue(ctr, "KPC_AGENT_IMAGE"); v != want {
		t.Errorf("agent image %q, want %s", v, want)
	}
	for _, a := range []string{"--log-format=text", "--kube-api-qps=100", "--kube-api-burst=200", "--configz-concurrency=20",
		"--configz-qps=80", "--configz-timeout=5s", "--remediation-namespace=kpc-jobs",
		"--kubelet-restart-command=nsenter --target 1 --mount -- systemctl restart kubelet"} {
		if !hasArg(ctr, a) {
			t.Errorf("missing %s in %v", a, args(ctr))
		}
	}
	if r := get(find(t, objs, "Deployment", controllerName), "spec", "replicas"); r != float64(3) {
		t.Errorf("replicas %v", r)
	}
	if get(ctr, "resources", "limits", "memory") != "1Gi" {
		t.Errorf("resources %v", get(ctr, "resources"))
	}
	find(t, objs, "Namespace", "kpc-jobs")
	find(t, objs, "Role", "kubelet-policy-controller-remediation")
	if ns := str(find(t, objs, "Role", "kubelet-policy-controller-remediation"), "metadata", "namespace"); ns != "kpc-jobs" {
		t.Errorf("remediation Role in %q", ns)
	}
	find(t, objs, "ServiceMonitor", controllerName)

	// Refused values.
	for _, bad := range []map[string]any{
		{"certMode": "manual"},
		{"logFormat": "xml"},
		{"configz": map[string]any{"qps": 60}}, // above kubeAPI.qps 50
	} {
		rv, err := chartutil.ToRenderValues(c, bad, chartutil.ReleaseOptions{Name: controllerName, Namespace: systemNS, IsInstall: true}, chartutil.DefaultCapabilities)
		if err == nil {
			_, err = engine.Render(c, rv)
		}
		if err == nil {
			t.Errorf("values %v: rendered, want an error", bad)
		}
	}
}

// TestChartCRDIsTheCRD: Helm installs CRDs from the chart's crds/; it must be crds/'s file.
func TestChartCRDIsTheCRD(t *testing.T) {
	want, err := os.ReadFile(repoPath("crds", "kubeletpolicy.io_kubeletpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chartDir, "crds", "kubeletpolicy.io_kubeletpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		if os.Getenv("KPC_UPDATE_GOLDEN") != "" {
			if err := os.WriteFile(filepath.Join(chartDir, "crds", "kubeletpolicy.io_kubeletpolicies.yaml"), want, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("the chart's crds/ differs from crds/ (KPC_UPDATE_GOLDEN=1 copies it)")
	}
}

// TestGitOpsManifests: the Argo CD kustomization builds, with the CRD and namespaces in an
// earlier sync wave than everything else; the paths the Argo CD Applications and the Flux
// Kustomizations point at exist; policies come after the controller.
func TestGitOpsManifests(t *testing.T) {
	objs := kustomizeBuild(t, repoPath("deploy", "gitops", "argocd"))
	for _, o := range objs {
		wave := str(o, "metadata", "annotations", "argocd.argoproj.io/sync-wave")
		early := o["kind"] == "CustomResourceDefinition" || o["kind"] == "Namespace"
		if early != (wave == "-1") {
			t.Errorf("%s: sync wave %q", key(o), wave)
		}
		if o["kind"] == "CustomResourceDefinition" && !strings.Contains(str(o, "metadata", "annotations", "argocd.argoproj.io/sync-options"), "Prune=false") {
			t.Errorf("the CRD must not be pruned by Argo CD")
		}
	}
	b, err := os.ReadFile(repoPath("deploy", "gitops", "argocd", "application.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := decodeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	waves := map[string]string{}
	for _, a := range apps {
		path := str(a, "spec", "source", "path")
		if _, err := os.Stat(repoPath(path)); err != nil {
			t.Errorf("Application %s: path %s: %v", str(a, "metadata", "name"), path, err)
		}
		waves[str(a, "metadata", "name")] = str(a, "metadata", "annotations", "argocd.argoproj.io/sync-wave")
	}
	if !(waves["kubelet-policy-controller"] == "0" && waves["kubelet-policies"] == "1") {
		t.Errorf("Application sync waves %v: the controller must come before the policies", waves)
	}
	b, err = os.ReadFile(repoPath("deploy", "gitops", "flux", "kubelet-policy-controller.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	flux, err := decodeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]any{}
	for _, k := range flux {
		if k["kind"] != "Kustomization" {
			continue
		}
		path := str(k, "spec", "path")
		if _, err := os.Stat(repoPath(path)); err != nil {
			t.Errorf("Flux Kustomization %s: path %s: %v", str(k, "metadata", "name"), path, err)
		}
		deps[str(k, "metadata", "name")], _ = get(k, "spec", "dependsOn").([]any)
	}
	if d := deps["kubelet-policies"]; len(d) != 1 || str(d[0].(obj), "name") != "kubelet-policy-controller" {
		t.Errorf("Flux: kubelet-policies must dependsOn kubelet-policy-controller, got %v", d)
	}
}
