package deploytest

import (
	"bytes"
	"fmt"
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

const (
	webhookName       = "kubelet-policy-controller-webhook"
	kubeletClientName = "kubelet-policy-controller-kubelet-client"
)

// container returns the named container of a Deployment.
func container(t *testing.T, objs []obj, deployment, name string) obj {
	t.Helper()
	d := find(t, objs, "Deployment", deployment)
	cs, _ := get(d, "spec", "template", "spec", "containers").([]any)
	for _, c := range cs {
		if c.(obj)["name"] == name {
			return c.(obj)
		}
	}
	t.Fatalf("the Deployment %s has no container named %s", deployment, name)
	return nil
}

// controllerContainer is the operator's (`run`).
func controllerContainer(t *testing.T, objs []obj) obj {
	t.Helper()
	return container(t, objs, controllerName, "controller")
}

// webhookContainer is the admission webhooks' (`webhook`).
func webhookContainer(t *testing.T, objs []obj) obj {
	t.Helper()
	return container(t, objs, webhookName, "webhook")
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
		mode := "self-managed"
		if strings.HasSuffix(o, "cert-manager") {
			mode = "cert-manager"
		}
		c := controllerContainer(t, objs)
		w := webhookContainer(t, objs)
		// Remediation Jobs run the controller's own image; so does the webhook.
		if v, _ := envValue(c, "KPC_AGENT_IMAGE"); v != c["image"] || !hasArg(c, "--agent-image=$(KPC_AGENT_IMAGE)") {
			t.Errorf("%s: KPC_AGENT_IMAGE %q, --agent-image from it %v, want the container image %q", o, v, hasArg(c, "--agent-image=$(KPC_AGENT_IMAGE)"), c["image"])
		}
		if w["image"] != c["image"] {
			t.Errorf("%s: the webhook runs %v, the operator %v", o, w["image"], c["image"])
		}
		if first, _, found := strings.Cut(c["image"].(string), "/"); found && (strings.ContainsAny(first, ".:") || first == "localhost") {
			t.Errorf("%s: image %q names a registry host; manifests carry none", o, c["image"])
		}
		checkProcesses(t, o, objs, mode)
		for _, ctr := range []obj{c, w} {
			sec := get(ctr, "securityContext").(obj)
			if sec["readOnlyRootFilesystem"] != true || sec["allowPrivilegeEscalation"] != false || sec["runAsNonRoot"] != true ||
				!reflect.DeepEqual(get(sec, "capabilities", "drop"), []any{"ALL"}) || str(sec, "seccompProfile", "type") != "RuntimeDefault" {
				t.Errorf("%s: container %s securityContext is not restricted: %v", o, ctr["name"], sec)
			}
		}
		for kind, n := range map[string]int{"Deployment": 2, "Service": 2, "PodDisruptionBudget": 2, "NetworkPolicy": 2, "ServiceAccount": 3,
			"ValidatingWebhookConfiguration": 1, "MutatingWebhookConfiguration": 1} {
			found := 0
			for _, x := range objs {
				if x["kind"] == kind {
					found++
				}
			}
			if found != n {
				t.Errorf("%s: %d %s, want %d", o, found, kind, n)
			}
		}
		// The webhooks call the Service that selects the webhook pods.
		for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
			wh := find(t, objs, kind, controllerName)
			svc := get(wh["webhooks"].([]any)[0], "clientConfig", "service").(obj)
			if svc["name"] != "kubelet-policy-controller-webhook" || svc["namespace"] != systemNS {
				t.Errorf("%s: %s calls %v", o, kind, svc)
			}
			inject := str(wh, "metadata", "annotations", "cert-manager.io/inject-ca-from")
			if (mode == "cert-manager") != (inject == systemNS+"/kubelet-policy-controller-webhook") {
				t.Errorf("%s: %s cert-manager.io/inject-ca-from %q", o, kind, inject)
			}
		}
		// Least privilege: exactly the documented rights for each ServiceAccount, the
		// self-managed certificate RBAC only where it is used, no wildcards.
		checkRBAC(t, o, objs, mode, false)
	}
	// Out of cluster: identity and permissions only, for both processes, as in the default.
	for _, x := range built["deploy/overlays/out-of-cluster"] {
		switch x["kind"] {
		case "CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			t.Errorf("out-of-cluster overlay has %s", key(x))
		}
	}
	find(t, built["deploy/overlays/out-of-cluster"], "ServiceAccount", controllerName)
	find(t, built["deploy/overlays/out-of-cluster"], "ServiceAccount", webhookName)
	find(t, built["deploy/overlays/out-of-cluster"], "ServiceAccount", kubeletClientName)
	checkRBAC(t, "deploy/overlays/out-of-cluster", built["deploy/overlays/out-of-cluster"], "self-managed", false)
	// The namespaces' Pod Security levels.
	for ns, level := range map[string]string{systemNS: "restricted", remediationNS: "privileged"} {
		n := find(t, built["deploy"], "Namespace", ns)
		if got := str(n, "metadata", "labels", "pod-security.kubernetes.io/enforce"); got != level {
			t.Errorf("namespace %s enforces %q, want %q", ns, got, level)
		}
	}
}

// podLabels returns a Deployment's pod template labels.
func podLabels(t *testing.T, objs []obj, deployment string) obj {
	t.Helper()
	return get(find(t, objs, "Deployment", deployment), "spec", "template", "metadata", "labels").(obj)
}

// selects reports whether a label selector (matchLabels or a Service's selector) matches labels.
func selects(selector, labels obj) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func portNames(c obj) []string {
	var out []string
	ports, _ := c["ports"].([]any)
	for _, p := range ports {
		out = append(out, str(p.(obj), "name"))
	}
	return out
}

// checkProcesses: two Deployments, one per subcommand and ServiceAccount; admission traffic
// reaches the webhook pods only; each has its PodDisruptionBudget and NetworkPolicy.
func checkProcesses(t *testing.T, what string, objs []obj, mode string) {
	t.Helper()
	c, w := controllerContainer(t, objs), webhookContainer(t, objs)
	ca, wa := args(c), args(w)
	if len(ca) == 0 || ca[0] != "run" || len(wa) == 0 || wa[0] != "webhook" {
		t.Errorf("%s: the operator runs %v, the webhook %v", what, ca, wa)
	}
	for _, a := range []string{"--leader-elect=true", "--health-addr=:8081", "--metrics-addr=:8080", "--remediation-namespace=" + remediationNS} {
		if !hasArg(c, a) {
			t.Errorf("%s: the operator lacks %s", what, a)
		}
	}
	for _, a := range ca {
		if strings.HasPrefix(a, "--webhook-") || strings.HasPrefix(a, "--local-webhooks") {
			t.Errorf("%s: the operator gets the webhook flag %s", what, a)
		}
	}
	for _, a := range []string{"--leader-elect=true", "--health-addr=:8081", "--metrics-addr=:8080", "--webhook-addr=:9443",
		"--webhook-cert-dir=/var/run/kubelet-policy-controller/webhook-certs", "--webhook-cert-mode=" + mode} {
		if !hasArg(w, a) {
			t.Errorf("%s: the webhook lacks %s in %v", what, a, wa)
		}
	}
	if got := strings.Join(portNames(c), ","); got != "metrics,health" {
		t.Errorf("%s: the operator's ports are %s, want metrics,health (no webhook port)", what, got)
	}
	if got := strings.Join(portNames(w), ","); got != "webhook,metrics,health" {
		t.Errorf("%s: the webhook's ports are %s", what, got)
	}
	for d, sa := range map[string]string{controllerName: controllerName, webhookName: webhookName} {
		if got := str(find(t, objs, "Deployment", d), "spec", "template", "spec", "serviceAccountName"); got != sa {
			t.Errorf("%s: Deployment %s runs as %q, want %q", what, d, got, sa)
		}
	}
	opLabels, whLabels := podLabels(t, objs, controllerName), podLabels(t, objs, webhookName)
	svc := get(find(t, objs, "Service", "kubelet-policy-controller-webhook"), "spec", "selector").(obj)
	if !selects(svc, whLabels) || selects(svc, opLabels) {
		t.Errorf("%s: the webhook Service selects %v; webhook pods %v, operator pods %v", what, svc, whLabels, opLabels)
	}
	metrics := get(find(t, objs, "Service", "kubelet-policy-controller-metrics"), "spec", "selector").(obj)
	if !selects(metrics, whLabels) || !selects(metrics, opLabels) {
		t.Errorf("%s: the metrics Service selects %v: want both Deployments' pods", what, metrics)
	}
	for name, pods := range map[string]obj{controllerName: opLabels, webhookName: whLabels} {
		other := whLabels
		if name == webhookName {
			other = opLabels
		}
		for _, kind := range []string{"PodDisruptionBudget", "NetworkPolicy"} {
			x := find(t, objs, kind, name)
			sel := get(x, "spec", "selector", "matchLabels")
			if kind == "NetworkPolicy" {
				sel = get(x, "spec", "podSelector", "matchLabels")
			}
			if m, _ := sel.(obj); !selects(m, pods) || selects(m, other) {
				t.Errorf("%s: %s %s selects %v", what, kind, name, sel)
			}
		}
	}
	checkNetworkPolicies(t, what, objs)
}

// npPorts lists the ports of a NetworkPolicy's ingress or egress rules, with whether the rule
// has peers (from/to).
func npPorts(np obj, direction string) map[string]bool {
	out := map[string]bool{}
	rules, _ := get(np, "spec", direction).([]any)
	for _, r := range rules {
		peers := r.(obj)["from"] != nil || r.(obj)["to"] != nil
		ports, _ := r.(obj)["ports"].([]any)
		for _, p := range ports {
			out[fmt.Sprint(p.(obj)["port"])] = peers
		}
	}
	return out
}

// checkNetworkPolicies: the operator takes no admission traffic and reaches the API server and
// the kubelets; the webhook takes admission traffic from anywhere and reaches the API server.
func checkNetworkPolicies(t *testing.T, what string, objs []obj) {
	t.Helper()
	op, wh := find(t, objs, "NetworkPolicy", controllerName), find(t, objs, "NetworkPolicy", webhookName)
	if in := npPorts(op, "ingress"); !reflect.DeepEqual(in, map[string]bool{"metrics": true}) {
		t.Errorf("%s: the operator's ingress ports %v, want metrics only (from the monitoring peers)", what, in)
	}
	if eg := npPorts(op, "egress"); !reflect.DeepEqual(eg, map[string]bool{"443": false, "6443": false, "10250": false}) {
		t.Errorf("%s: the operator's egress ports %v, want the API server (443, 6443) and the kubelets (10250)", what, eg)
	}
	if in := npPorts(wh, "ingress"); !reflect.DeepEqual(in, map[string]bool{"webhook": false, "metrics": true}) {
		t.Errorf("%s: the webhook's ingress ports %v, want webhook from anywhere and metrics from the monitoring peers", what, in)
	}
	if eg := npPorts(wh, "egress"); !reflect.DeepEqual(eg, map[string]bool{"443": false, "6443": false}) {
		t.Errorf("%s: the webhook's egress ports %v, want the API server only", what, eg)
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
		{"configzSource": "apiserver-proxy", "kubelet": map[string]any{"insecureTLS": true}},
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
	// The operator and the webhook share the image; each keeps its own ServiceAccount.
	if w := webhookContainer(t, objs); w["image"] != want || !hasArg(w, "--log-format=text") {
		t.Errorf("webhook image %v, args %v", w["image"], args(w))
	}
	for _, a := range args(ctr) {
		if strings.HasPrefix(a, "--kubelet-") && !strings.HasPrefix(a, "--kubelet-restart-command") || strings.HasPrefix(a, "--configz-source") {
			t.Errorf("the default kubelet connection needs no flag, got %s", a)
		}
	}

	// The webhook Deployment's own values.
	objs = helmTemplate(t, c, map[string]any{"webhook": map[string]any{
		"replicaCount": 3, "resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}},
		"extraArgs": []any{"--webhook-cert-sync-period=30s"}}})
	if r := get(find(t, objs, "Deployment", webhookName), "spec", "replicas"); r != float64(3) {
		t.Errorf("webhook replicas %v", r)
	}
	if w := webhookContainer(t, objs); get(w, "resources", "limits", "memory") != "1Gi" || !hasArg(w, "--webhook-cert-sync-period=30s") {
		t.Errorf("webhook resources %v, args %v", get(w, "resources"), args(w))
	}
	if r := get(find(t, objs, "Deployment", controllerName), "spec", "replicas"); r != float64(2) {
		t.Errorf("operator replicas %v: webhook.replicaCount must not change them", r)
	}

	// The kubelet connection: address types, a CA bundle from a ConfigMap (mounted), or a
	// path, or the explicit insecure opt-in.
	objs = helmTemplate(t, c, map[string]any{"kubelet": map[string]any{
		"preferredAddressTypes": []any{"InternalIP", "Hostname"},
		"certificateAuthority":  map[string]any{"configMap": map[string]any{"name": "kubelet-ca", "key": "bundle.pem"}}}})
	ctr = controllerContainer(t, objs)
	for _, a := range []string{"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--kubelet-certificate-authority=/etc/kubelet-policy-controller/kubelet-ca/bundle.pem"} {
		if !hasArg(ctr, a) {
			t.Errorf("missing %s in %v", a, args(ctr))
		}
	}
	vol := get(find(t, objs, "Deployment", controllerName), "spec", "template", "spec", "volumes").([]any)
	if last := vol[len(vol)-1].(obj); str(last, "name") != "kubelet-ca" || str(last, "configMap", "name") != "kubelet-ca" {
		t.Errorf("volumes %v: want the ConfigMap kubelet-ca", vol)
	}
	mounted := false
	for _, m := range ctr["volumeMounts"].([]any) {
		mounted = mounted || (str(m.(obj), "name") == "kubelet-ca" && str(m.(obj), "mountPath") == "/etc/kubelet-policy-controller/kubelet-ca")
	}
	if !mounted {
		t.Errorf("volumeMounts %v: the kubelet CA is not mounted", ctr["volumeMounts"])
	}
	objs = helmTemplate(t, c, map[string]any{"kubelet": map[string]any{"certificateAuthority": map[string]any{"secret": map[string]any{"name": "kca"}}}})
	ctr = controllerContainer(t, objs)
	if !hasArg(ctr, "--kubelet-certificate-authority=/etc/kubelet-policy-controller/kubelet-ca/ca.crt") {
		t.Errorf("Secret CA: args %v", args(ctr))
	}
	objs = helmTemplate(t, c, map[string]any{"kubelet": map[string]any{"certificateAuthority": map[string]any{"path": "/etc/ssl/kubelet.pem"}}})
	if ctr = controllerContainer(t, objs); !hasArg(ctr, "--kubelet-certificate-authority=/etc/ssl/kubelet.pem") {
		t.Errorf("CA path: args %v", args(ctr))
	}
	objs = helmTemplate(t, c, map[string]any{"kubelet": map[string]any{"insecureTLS": true}})
	if ctr = controllerContainer(t, objs); !hasArg(ctr, "--kubelet-insecure-tls") {
		t.Errorf("insecureTLS: args %v", args(ctr))
	}
	checkRBAC(t, "kubelet values", objs, "self-managed", false)
	// Straight to the kubelets, /configz fetches are not API requests: no cap from kubeAPI.qps.
	helmTemplate(t, c, map[string]any{"configz": map[string]any{"qps": 60}})

	// Refused values.
	for _, bad := range []map[string]any{
		{"certMode": "manual"},
		{"logFormat": "xml"},
		// Above kubeAPI.qps 50, where every fetch is an API request.
		{"configzSource": "apiserver-proxy", "configz": map[string]any{"qps": 60}},
		{"configzSource": "direct"},
		{"kubelet": map[string]any{"preferredAddressTypes": []any{"LoopbackIP"}}},
		{"kubelet": map[string]any{"certificateAuthority": map[string]any{
			"configMap": map[string]any{"name": "a"}, "secret": map[string]any{"name": "b"}}}},
		{"kubelet": map[string]any{"insecureTLS": true, "certificateAuthority": map[string]any{"path": "/ca.pem"}}},
		{"kubelet": map[string]any{"certificateAuthority": map[string]any{"path": "relative.pem"}}},
		{"webhook": map[string]any{"replicaCount": 0}},
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
