package controllertests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The controller's RBAC from deploy/ grants exactly what it needs: checked against golden
// files (cluster scope, and its namespace where the Lease rules live). Every other test runs
// the controller with this ServiceAccount's token, so missing permissions fail them too.
func TestRBACIsLeastPrivilege(t *testing.T) {
	checkCanIGoldens(t, serviceAccount, "")
	as := "--as=system:serviceaccount:" + systemNamespace + ":" + serviceAccount
	// Spot checks of what must stay forbidden.
	for _, deny := range [][]string{
		{"get", "secrets", "-A"},
		{"list", "secrets", "-n", systemNamespace},
		{"get", "secrets/some-other-secret", "-n", systemNamespace},
		// The webhook's certificates are the webhook's ServiceAccount's business.
		{"get", "secrets/kubelet-policy-controller-webhook-tls", "-n", systemNamespace},
		{"create", "secrets", "-n", systemNamespace},
		{"create", "validatingwebhookconfigurations.admissionregistration.k8s.io"},
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/kubelet-policy-controller"},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/kubelet-policy-controller"},
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/some-other-webhook"},
		{"create", "pods", "-n", systemNamespace},
		{"create", "pods", "-n", remediationNamespace},
		{"create", "jobs.batch", "-n", systemNamespace},
		{"create", "jobs.batch", "-n", "default"},
		{"update", "kubeletpolicies.kubeletpolicy.io"},
		{"patch", "nodes"},
		// nodes/proxy is exec-equivalent (the kubelet's exec/attach handshake is a GET): the
		// default install reads /configz from the kubelet with nodes/configz instead.
		{"get", "nodes", "--subresource=proxy"},
		{"create", "nodes", "--subresource=proxy"},
		// Not even nodes/configz: kubelets get short-lived tokens of the kubelet-client
		// ServiceAccount, never the controller's own (kubelet_access_test.go).
		{"get", "nodes", "--subresource=configz"},
		{"create", "leases.coordination.k8s.io", "-n", "kube-system"},
		{"delete", "leases.coordination.k8s.io", "-n", systemNamespace},
		// Its Lease only, not the webhook's.
		{"update", "leases.coordination.k8s.io/" + webhookLeaseName, "-n", systemNamespace},
	} {
		if got := canI(t, as, deny...); got != "no" {
			t.Errorf("kubectl auth can-i %s as the controller: %q, want no", strings.Join(deny, " "), got)
		}
	}
	for _, allow := range [][]string{
		{"create", "serviceaccounts/" + kubeletClientSA, "--subresource=token", "-n", systemNamespace},
		{"list", "nodes"},
		{"update", "kubeletpolicies.kubeletpolicy.io", "--subresource=status"},
		{"update", "leases.coordination.k8s.io/" + leaseName, "-n", systemNamespace},
		{"create", "jobs.batch", "-n", remediationNamespace},
	} {
		if got := canI(t, as, allow...); got != "yes" {
			t.Errorf("kubectl auth can-i %s as the controller: %q, want yes", strings.Join(allow, " "), got)
		}
	}
	// And the kubeconfig the controller runs with really is the ServiceAccount.
	out, err := kubectlWith(saKubeconfig, nil, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || strings.TrimSpace(out) != "system:serviceaccount:"+systemNamespace+":"+serviceAccount {
		t.Errorf("kubectl auth whoami with the controller's kubeconfig: %q, %v", out, err)
	}
}

// checkCanIGoldens compares `kubectl auth can-i --list` as the ServiceAccount sa (cluster
// scope, the system namespace, the remediation namespace) with testdata/can-i-list-PREFIX*.golden;
// KPC_UPDATE_GOLDEN=1 rewrites them.
func checkCanIGoldens(t *testing.T, sa, prefix string) {
	t.Helper()
	as := "--as=system:serviceaccount:" + systemNamespace + ":" + sa
	for _, c := range []struct{ golden, ns string }{
		{"can-i-list-" + prefix + "cluster.golden", ""},
		{"can-i-list-" + prefix + "kubelet-policy-system.golden", systemNamespace},
		{"can-i-list-" + prefix + "kubelet-policy-remediation.golden", remediationNamespace},
	} {
		args := []string{"auth", "can-i", "--list", as}
		if c.ns != "" {
			args = append(args, "-n", c.ns)
		}
		got := normalizeCanI(mustKubectl(t, args...))
		path := filepath.Join(pkgDir, "testdata", c.golden)
		if os.Getenv("KPC_UPDATE_GOLDEN") != "" {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := normalizeCanI(string(b)); got != want {
			t.Errorf("kubectl %s differs from %s (KPC_UPDATE_GOLDEN=1 rewrites it):\n--- got\n%s--- want\n%s", strings.Join(args, " "), c.golden, got, want)
		}
	}
}

// canI returns the answer ("yes" or "no") of `kubectl auth can-i` as the given --as flag (exit
// status 1 means "no"; kubectlRaw appends stderr warnings on failure, hence the first line).
// A subresource needs --subresource: `nodes/proxy` would ask about the node named "proxy".
func canI(t *testing.T, as string, args ...string) string {
	t.Helper()
	out, _ := kubectl(t, append([]string{"auth", "can-i", as}, args...)...)
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}

// normalizeCanI makes `kubectl auth can-i --list` output comparable: one rule per line with
// single spaces, duplicates dropped (the default discovery roles repeat some URLs), sorted.
func normalizeCanI(s string) string {
	seen := map[string]bool{}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" || strings.HasPrefix(l, "Resources ") || seen[l] {
			continue
		}
		seen[l] = true
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// The CIS sample (deploy/samples/cis-kubeadm.yaml) with its selector narrowed to this
// test's nodes: Ready, exact summary / per-rule counts / node list, printer columns,
// observedGeneration, NodeNonCompliant Events on the policy and on the Node, metrics.
func TestCISSample(t *testing.T) {
	name := uniqueName("ctl-cis")
	// The sample itself, through kubectl's client-side dry run, with the selector patched.
	out := mustKubectl(t, "create", "--dry-run=client", "-o", "json", "-f", filepath.Join(repoRoot, "deploy", "samples", "cis-kubeadm.yaml"))
	var obj map[string]any
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatal(err)
	}
	md := obj["metadata"].(map[string]any)
	md["name"] = name
	labels, _ := md["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	labels["kpc-e2e"] = "controllertests"
	md["labels"] = labels
	spec := obj["spec"].(map[string]any)
	if spec["enforcement"] != "Audit" {
		t.Fatalf("the sample's enforcement is %v; this test expects Audit", spec["enforcement"])
	}
	spec["nodeSelector"] = map[string]any{"matchLabels": map[string]any{"e2e": "controller", "e2e-pool": "cis"}}
	var configRules []string
	for _, r := range spec["rules"].([]any) {
		if rm := r.(map[string]any); rm["config"] != nil {
			configRules = append(configRules, rm["id"].(string))
		}
	}
	manifest, _ := json.MarshalIndent(obj, "", "  ")

	c := startController(t, "cis")
	start := time.Now()
	applyPolicy(t, name, string(manifest))
	waited := kubectlWaitReady(t, name, 60*time.Second)
	t.Logf("kubectl apply -> Ready: %.1fs (kubectl wait %.1fs)", time.Since(start).Seconds(), waited.Seconds())

	// ctl-cis-ok: compliant; ctl-cis-zero-file: 0s in the file = the kubelet's 4h default;
	// ctl-cis-legacy: anonymous auth on but exempt (pool: legacy-monitoring);
	// ctl-cis-timeout-flag: --streaming-connection-idle-timeout=0 overrides the file;
	// ctl-cis-anon: anonymous auth on.
	w := want{
		selected: 5, compliant: 3, nonCompliant: 2, unknown: 0,
		nodes: map[string]wantNode{
			"ctl-cis-anon":         {"NonCompliant", []string{"anonymous-auth-disabled"}},
			"ctl-cis-timeout-flag": {"NonCompliant", []string{"streaming-connection-idle-timeout"}},
		},
		failing:       map[string]int{"anonymous-auth-disabled": 1, "streaming-connection-idle-timeout": 1},
		compliantCond: "False",
	}
	for _, id := range configRules {
		if _, ok := w.failing[id]; !ok {
			w.failing[id] = 0
		}
	}
	p, err := getPolicy(t, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.check(w); err != nil {
		t.Fatal(err)
	}
	if len(p.Status.Rules) != len(spec["rules"].([]any)) {
		t.Errorf("status.rules has %d entries, the policy %d rules", len(p.Status.Rules), len(spec["rules"].([]any)))
	}
	if m := p.node("ctl-cis-timeout-flag").Message; !strings.Contains(m, "streamingConnectionIdleTimeout") {
		t.Errorf("message of ctl-cis-timeout-flag does not name the field: %q", m)
	}
	if m := p.node("ctl-cis-anon").Message; !strings.Contains(m, "authentication.anonymous.enabled") {
		t.Errorf("message of ctl-cis-anon does not name the field: %q", m)
	}
	for _, typ := range []string{"Reconciling", "Stalled"} {
		if c := p.condition(typ); c.Status != "False" {
			t.Errorf("condition %s=%s (%s), want False", typ, c.Status, c.Reason)
		}
	}

	// Printer columns: NAME ENFORCEMENT NODES COMPLIANT NONCOMPLIANT UNKNOWN READY AGE
	table := mustKubectl(t, "get", "kp", name)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get kp %s:\n%s", name, table)
	}
	if h := strings.Fields(lines[0]); strings.Join(h, " ") != "NAME ENFORCEMENT NODES COMPLIANT NONCOMPLIANT UNKNOWN READY AGE" {
		t.Errorf("printer columns: %v", h)
	}
	if f := strings.Fields(lines[1]); len(f) != 8 || strings.Join(f[:7], " ") != name+" Audit 5 3 2 0 True" {
		t.Errorf("kubectl get kp row: %q, want %q", lines[1], name+" Audit 5 3 2 0 True <age>")
	}

	// Transition Events, once per non-compliant node, on the policy and on the Node.
	waitEvents(t, name, "ctl-cis-anon", "NodeNonCompliant", 1, 30*time.Second)
	waitEvents(t, name, "ctl-cis-timeout-flag", "NodeNonCompliant", 1, 30*time.Second)
	for _, n := range []string{"ctl-cis-ok", "ctl-cis-zero-file", "ctl-cis-legacy"} {
		expectEvents(t, name, n, "NodeNonCompliant", 0)
		expectEvents(t, name, n, "NodeCompliant", 0) // compliant from the start: no transition
	}
	evs, _ := listEvents(t)
	for _, e := range evs {
		if e.InvolvedObject.Kind == "KubeletPolicy" && e.InvolvedObject.Name == name {
			if e.InvolvedObject.UID != p.Metadata.UID {
				t.Errorf("Event %s involvedObject.uid %q, policy uid %q", e.Reason, e.InvolvedObject.UID, p.Metadata.UID)
			}
			if e.Reason == "NodeNonCompliant" && e.Type != "Warning" {
				t.Errorf("NodeNonCompliant Event of type %s", e.Type)
			}
		}
	}

	// Metrics and health endpoints.
	health, metrics := c.ports(t)
	if code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", health)); err != nil || code != 200 {
		t.Errorf("/readyz: %d %q %v", code, body, err)
	}
	if code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/healthz", health)); err != nil || code != 200 {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}
	eventually(t, 15*time.Second, "metrics match the status", func() error {
		code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics))
		if err != nil || code != 200 {
			return fmt.Errorf("/metrics: %d %v", code, err)
		}
		var errs []string
		for state, n := range map[string]int{"compliant": 3, "noncompliant": p.Status.Summary.NonCompliantNodes, "unknown": 0} {
			v, ok := metricValue(body, "kubeletpolicy_nodes", map[string]string{"policy": name, "state": state})
			if !ok || v != float64(n) {
				errs = append(errs, fmt.Sprintf("kubeletpolicy_nodes{policy=%q,state=%q} = %v (present %v), want %d", name, state, v, ok, n))
			}
		}
		for rule, n := range map[string]int{"anonymous-auth-disabled": 1, "streaming-connection-idle-timeout": 1, "read-only-port-disabled": 0} {
			v, ok := metricValue(body, "kubeletpolicy_rule_failing_nodes", map[string]string{"policy": name, "rule": rule})
			if !ok || v != float64(n) {
				errs = append(errs, fmt.Sprintf("kubeletpolicy_rule_failing_nodes{policy=%q,rule=%q} = %v (present %v), want %d", name, rule, v, ok, n))
			}
		}
		if v, ok := metricValue(body, "kubeletpolicy_leader", nil); !ok || v != 1 {
			errs = append(errs, fmt.Sprintf("kubeletpolicy_leader = %v (present %v), want 1", v, ok))
		}
		if _, ok := metricValue(body, "kubeletpolicy_configz_fetch_duration_seconds_count", nil); !ok {
			errs = append(errs, "no kubeletpolicy_configz_fetch_duration_seconds histogram")
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return nil
	})

	// `check --kubeconfig`: the same verdicts from the live cluster, policies read from the
	// cluster (this one among them), printed as check's JSON; exit 1 because nodes fail.
	cmd := exec.Command(controllerBinary, "check", "--kubeconfig", kubeconfig, "--output", "json")
	outBytes, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("check --kubeconfig exited %d (err %v), want 1; output:\n%s", code, err, outBytes)
	}
	var report struct {
		Results []struct{ Node, Policy, Rule, Result, Source string } `json:"results"`
	}
	if err := json.Unmarshal(outBytes, &report); err != nil {
		t.Fatalf("check --kubeconfig: %v\n%s", err, outBytes)
	}
	failing := map[string][]string{}
	rows := 0
	for _, r := range report.Results {
		if r.Policy != name {
			continue
		}
		rows++
		if r.Result == "Fail" {
			failing[r.Node] = append(failing[r.Node], r.Rule)
		}
	}
	if rows == 0 {
		t.Fatalf("check --kubeconfig evaluated nothing for %s:\n%s", name, outBytes)
	}
	wantFailing := map[string][]string{
		"ctl-cis-anon":         {"anonymous-auth-disabled"},
		"ctl-cis-timeout-flag": {"streaming-connection-idle-timeout"},
	}
	if fmt.Sprint(failing) != fmt.Sprint(wantFailing) {
		t.Errorf("check --kubeconfig failing rules = %v, want %v (as the controller's status)", failing, wantFailing)
	}
}

// A node's config changes: status and Events follow within the checkInterval (10s), both ways.
func TestConfigChange(t *testing.T) {
	const node = "ctl-change"
	ensureNodeAnonymous(t, node, true)
	name := uniqueName("ctl-change")
	startController(t, "change")
	applyPolicy(t, name, policyYAML(name, "change", "10s", ruleAnonymous+ruleStreaming))
	kubectlWaitReady(t, name, 60*time.Second)
	nonCompliant := want{selected: 1, nonCompliant: 1,
		nodes:         map[string]wantNode{node: {"NonCompliant", []string{"anonymous-auth-disabled"}}},
		failing:       map[string]int{"anonymous-auth-disabled": 1, "streaming-connection-idle-timeout": 0},
		compliantCond: "False"}
	compliant := want{selected: 1, compliant: 1, nodes: map[string]wantNode{},
		failing:       map[string]int{"anonymous-auth-disabled": 0, "streaming-connection-idle-timeout": 0},
		compliantCond: "True"}
	waitStatus(t, name, 10*time.Second, nonCompliant)
	waitEvents(t, name, node, "NodeNonCompliant", 1, 30*time.Second)
	p, _ := getPolicy(t, name)
	readySince := p.condition("Ready").LastTransitionTime

	// Fix the node: edit its config file, restart its kubelet.
	start := time.Now()
	setNodeConfig(t, node, kubeletConfig(false))
	waitStatus(t, name, 20*time.Second, compliant)
	t.Logf("NonCompliant -> Compliant in status %.1fs after the config edit", time.Since(start).Seconds())
	waitEvents(t, name, node, "NodeCompliant", 1, 20*time.Second)
	t.Logf("NodeCompliant Events %.1fs after the config edit", time.Since(start).Seconds())
	expectEvents(t, name, node, "NodeNonCompliant", 1)

	// And back: a second NonCompliant transition, so exactly 2 NodeNonCompliant in total
	// (identical messages aggregate into one Event with count 2).
	start = time.Now()
	setNodeConfig(t, node, kubeletConfig(true))
	waitStatus(t, name, 20*time.Second, nonCompliant)
	waitEvents(t, name, node, "NodeNonCompliant", 2, 20*time.Second)
	t.Logf("Compliant -> NonCompliant (status and Events) in %.1fs", time.Since(start).Seconds())
	expectEvents(t, name, node, "NodeCompliant", 1)
	// Ready stayed True throughout: its lastTransitionTime did not move.
	p, _ = getPolicy(t, name)
	if got := p.condition("Ready").LastTransitionTime; got != readySince {
		t.Errorf("Ready lastTransitionTime moved from %s to %s although Ready stayed True", readySince, got)
	}
}

// A node relabelled out of the selector, a node labelled into it, a node deleted and a node
// added: the counts follow.
func TestNodeSetChanges(t *testing.T) {
	// Start from the node specs even on a reused environment.
	mustKubectl(t, "label", "node", "ctl-move-a", "e2e-pool=move", "--overwrite")
	mustKubectl(t, "label", "node", "ctl-move-spare", "e2e-pool=spare", "--overwrite")
	nodeJSON := mustKubectl(t, "get", "node", "ctl-move-b", "-o", "json")
	t.Cleanup(func() {
		_, _ = kubectl(t, "label", "node", "ctl-move-a", "e2e-pool=move", "--overwrite")
		_, _ = kubectl(t, "label", "node", "ctl-move-spare", "e2e-pool=spare", "--overwrite")
		if _, err := kubectl(t, "get", "node", "ctl-move-b"); err != nil {
			recreateNode(t, nodeJSON)
		}
	})

	name := uniqueName("ctl-move")
	startController(t, "move")
	applyPolicy(t, name, policyYAML(name, "move", "10s", ruleAnonymous))
	kubectlWaitReady(t, name, 60*time.Second)
	bNonCompliant := map[string]wantNode{"ctl-move-b": {"NonCompliant", []string{"anonymous-auth-disabled"}}}
	waitStatus(t, name, 10*time.Second, want{selected: 2, compliant: 1, nonCompliant: 1, nodes: bNonCompliant,
		failing: map[string]int{"anonymous-auth-disabled": 1}, compliantCond: "False"})

	mustKubectl(t, "label", "node", "ctl-move-a", "e2e-pool=elsewhere", "--overwrite")
	d := waitStatus(t, name, 15*time.Second, want{selected: 1, compliant: 0, nonCompliant: 1, nodes: bNonCompliant,
		failing: map[string]int{"anonymous-auth-disabled": 1}, compliantCond: "False"})
	t.Logf("relabelled out: counts followed in %.1fs", d.Seconds())

	mustKubectl(t, "label", "node", "ctl-move-spare", "e2e-pool=move", "--overwrite")
	d = waitStatus(t, name, 15*time.Second, want{selected: 2, compliant: 1, nonCompliant: 1, nodes: bNonCompliant,
		failing: map[string]int{"anonymous-auth-disabled": 1}, compliantCond: "False"})
	t.Logf("labelled in: counts followed in %.1fs", d.Seconds())

	mustKubectl(t, "delete", "node", "ctl-move-b")
	d = waitStatus(t, name, 15*time.Second, want{selected: 1, compliant: 1, nonCompliant: 0, nodes: map[string]wantNode{},
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "True"})
	t.Logf("deleted: counts followed in %.1fs", d.Seconds())

	// Added (again): the same Node object re-created, its kubelet restarted so it reports Ready.
	recreateNode(t, nodeJSON)
	d = waitStatus(t, name, 20*time.Second, want{selected: 2, compliant: 1, nonCompliant: 1, nodes: bNonCompliant,
		failing: map[string]int{"anonymous-auth-disabled": 1}, compliantCond: "False"})
	t.Logf("added: counts followed in %.1fs", d.Seconds())
	// ctl-move-b was NonCompliant, deleted, and NonCompliant again when added: 2 transitions.
	// (The Node events of the deleted object may be garbage; count the policy's only.)
	eventually(t, 20*time.Second, "2 NodeNonCompliant Events about ctl-move-b on the policy", func() error {
		p, _, err := eventCounts(t, name, "ctl-move-b", "NodeNonCompliant")
		if err != nil {
			return err
		}
		if p != 2 {
			return fmt.Errorf("%d", p)
		}
		return nil
	})
}

// recreateNode creates a Node from its saved JSON (status included: the addresses the node
// proxy needs) and restarts its simulated kubelet so that it reports Ready again.
func recreateNode(t *testing.T, nodeJSON string) {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(nodeJSON), &obj); err != nil {
		t.Fatal(err)
	}
	md := obj["metadata"].(map[string]any)
	for _, k := range []string{"resourceVersion", "uid", "creationTimestamp", "managedFields"} {
		delete(md, k)
	}
	b, _ := json.Marshal(obj)
	if out, err := kubectlRaw(b, "create", "-f", "-"); err != nil {
		t.Fatalf("re-create node: %v\n%s", err, out)
	}
	restartKubelet(t, md["name"].(string))
}

// A policy edit: observedGeneration follows, and the nodes are re-checked against the new rules.
func TestPolicyEdit(t *testing.T) {
	name := uniqueName("ctl-edit")
	startController(t, "edit")
	applyPolicy(t, name, policyYAML(name, "cis", "5m", ruleStreaming))
	kubectlWaitReady(t, name, 60*time.Second)
	waitStatus(t, name, 10*time.Second, want{selected: 5, compliant: 4, nonCompliant: 1,
		nodes:   map[string]wantNode{"ctl-cis-timeout-flag": {"NonCompliant", []string{"streaming-connection-idle-timeout"}}},
		failing: map[string]int{"streaming-connection-idle-timeout": 1}, compliantCond: "False"})
	p, _ := getPolicy(t, name)
	if p.Metadata.Generation != 1 {
		t.Fatalf("generation %d after create", p.Metadata.Generation)
	}

	// Generation 2: anonymous auth is checked too (no exception in this policy, so the
	// legacy-monitoring node fails it as well).
	start := time.Now()
	applyPolicy(t, name, policyYAML(name, "cis", "5m", ruleStreaming+ruleAnonymous))
	d := waitStatus(t, name, 30*time.Second, want{selected: 5, compliant: 2, nonCompliant: 3,
		nodes: map[string]wantNode{
			"ctl-cis-timeout-flag": {"NonCompliant", []string{"streaming-connection-idle-timeout"}},
			"ctl-cis-anon":         {"NonCompliant", []string{"anonymous-auth-disabled"}},
			"ctl-cis-legacy":       {"NonCompliant", []string{"anonymous-auth-disabled"}},
		},
		failing: map[string]int{"streaming-connection-idle-timeout": 1, "anonymous-auth-disabled": 1 + 1}, compliantCond: "False"})
	t.Logf("generation 2 reflected in status %.1fs after the edit (checkInterval 5m: re-checked on the generation change)", d.Seconds())
	p, _ = getPolicy(t, name)
	if p.Metadata.Generation != 2 || p.Status.ObservedGeneration != 2 {
		t.Errorf("generation %d, observedGeneration %d, want 2/2", p.Metadata.Generation, p.Status.ObservedGeneration)
	}
	for _, c := range p.Status.Conditions {
		if c.ObservedGeneration != 2 {
			t.Errorf("condition %s observedGeneration %d, want 2", c.Type, c.ObservedGeneration)
		}
	}
	waitEvents(t, name, "ctl-cis-anon", "NodeNonCompliant", 1, 20*time.Second)
	waitEvents(t, name, "ctl-cis-legacy", "NodeNonCompliant", 1, 20*time.Second)
	expectEvents(t, name, "ctl-cis-timeout-flag", "NodeNonCompliant", 1) // no new transition for it
	if _, err := kubectl(t, "wait", "--for=condition=Ready", "kp/"+name, "--timeout=10s"); err != nil {
		t.Errorf("kubectl wait Ready after the edit: %v", err)
	}
	_ = start
}

// An unreachable kubelet and one that answers garbage are Unknown with a clear message and a
// ConfigzUnavailable Event; the healthy node of the same policy is unaffected.
func TestUnreachableAndGarbage(t *testing.T) {
	setBehavior(t, "ctl-unreachable", "unreachable")
	setBehavior(t, "ctl-garbage", "garbage")
	setBehavior(t, "ctl-faulty-ok", "normal")
	t.Cleanup(func() { setBehavior(t, "ctl-faulty-ok", "normal") })
	name := uniqueName("ctl-faulty")
	c := startController(t, "faulty")
	applyPolicy(t, name, policyYAML(name, "faulty", "10s", ruleAnonymous+ruleStreaming))
	kubectlWaitReady(t, name, 60*time.Second)
	rules0 := map[string]int{"anonymous-auth-disabled": 0, "streaming-connection-idle-timeout": 0}
	waitStatus(t, name, 10*time.Second, want{selected: 3, compliant: 1, unknown: 2,
		nodes: map[string]wantNode{
			"ctl-garbage":     {"Unknown", nil},
			"ctl-unreachable": {"Unknown", nil},
		},
		failing: rules0, compliantCond: "Unknown"})
	p, _ := getPolicy(t, name)
	for n, words := range map[string][]string{
		"ctl-garbage":     {"configz", "malformed"},
		"ctl-unreachable": {"configz", "unavailable"},
	} {
		m := p.node(n).Message
		t.Logf("%s: %s", n, m)
		for _, w := range words {
			if !strings.Contains(strings.ToLower(m), w) {
				t.Errorf("message of %s %q does not say %q", n, m, w)
			}
		}
	}
	if cc := p.condition("Compliant"); cc.Reason != "UnknownNodes" {
		t.Errorf("Compliant reason %s (%s)", cc.Reason, cc.Message)
	}
	waitEvents(t, name, "ctl-garbage", "ConfigzUnavailable", 1, 20*time.Second)
	waitEvents(t, name, "ctl-unreachable", "ConfigzUnavailable", 1, 20*time.Second)
	expectEvents(t, name, "ctl-faulty-ok", "ConfigzUnavailable", 0)

	// The healthy node starts answering 500: Unknown at the next periodic check (no Node
	// update triggers it), then back.
	start := time.Now()
	setBehavior(t, "ctl-faulty-ok", "error")
	waitStatus(t, name, 25*time.Second, want{selected: 3, unknown: 3,
		nodes: map[string]wantNode{
			"ctl-garbage":     {"Unknown", nil},
			"ctl-unreachable": {"Unknown", nil},
			"ctl-faulty-ok":   {"Unknown", nil},
		},
		failing: rules0, compliantCond: "Unknown"})
	t.Logf("behavior error -> Unknown in %.1fs (checkInterval 10s)", time.Since(start).Seconds())
	waitEvents(t, name, "ctl-faulty-ok", "ConfigzUnavailable", 1, 20*time.Second)
	start = time.Now()
	setBehavior(t, "ctl-faulty-ok", "normal")
	waitStatus(t, name, 25*time.Second, want{selected: 3, compliant: 1, unknown: 2,
		nodes: map[string]wantNode{
			"ctl-garbage":     {"Unknown", nil},
			"ctl-unreachable": {"Unknown", nil},
		},
		failing: rules0, compliantCond: "Unknown"})
	t.Logf("behavior normal -> Compliant in %.1fs", time.Since(start).Seconds())
	waitEvents(t, name, "ctl-faulty-ok", "NodeCompliant", 1, 20*time.Second)
	// Repeated failures of the same nodes are not re-announced.
	expectEvents(t, name, "ctl-garbage", "ConfigzUnavailable", 1)
	expectEvents(t, name, "ctl-unreachable", "ConfigzUnavailable", 1)

	_, metrics := c.ports(t)
	_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metricValue(body, "kubeletpolicy_nodes", map[string]string{"policy": name, "state": "unknown"}); !ok || v != 2 {
		t.Errorf("kubeletpolicy_nodes{state=unknown} = %v (present %v), want 2", v, ok)
	}
	if v, ok := metricValue(body, "kubeletpolicy_configz_fetch_errors_total", map[string]string{"reason": "Malformed"}); !ok || v < 1 {
		t.Errorf("kubeletpolicy_configz_fetch_errors_total{reason=Malformed} = %v (present %v), want >= 1", v, ok)
	}
}

// Two replicas: exactly one holds the Lease and writes status; SIGKILL of the leader hands
// over within ~20s; the new leader keeps status updated; no duplicate transition Events.
func TestLeaderElection(t *testing.T) {
	setBehavior(t, "ctl-ha-ok", "normal")
	t.Cleanup(func() { setBehavior(t, "ctl-ha-ok", "normal") })
	a := startController(t, "replica-a")
	waitLeader(t, a, 40*time.Second) // a Lease left by an earlier test expires within 10s
	b := startController(t, "replica-b")
	idA, idB := a.identity(t), b.identity(t)
	if idA == idB {
		t.Fatalf("both replicas use identity %q", idA)
	}
	_, metricsB := b.ports(t)

	name := uniqueName("ctl-ha")
	applyPolicy(t, name, policyYAML(name, "ha", "10s", ruleStreaming))
	kubectlWaitReady(t, name, 60*time.Second)
	ncOnly := map[string]wantNode{"ctl-ha-nc": {"NonCompliant", []string{"streaming-connection-idle-timeout"}}}
	waitStatus(t, name, 10*time.Second, want{selected: 2, compliant: 1, nonCompliant: 1, nodes: ncOnly,
		failing: map[string]int{"streaming-connection-idle-timeout": 1}, compliantCond: "False"})
	waitEvents(t, name, "ctl-ha-nc", "NodeNonCompliant", 1, 20*time.Second)

	if h, _ := leaseHolder(t); h != idA {
		t.Fatalf("Lease holder %q, want replica-a %q", h, idA)
	}
	if n := a.statusWrites(name); n == 0 {
		t.Errorf("the leader logged no status write for %s", name)
	}
	if n := b.statusWrites(name); n != 0 {
		t.Errorf("the follower logged %d status writes for %s", n, name)
	}
	if strings.Contains(b.logs(), "became leader") {
		t.Errorf("the follower logged that it became leader")
	}
	if _, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsB)); err != nil {
		t.Error(err)
	} else if v, ok := metricValue(body, "kubeletpolicy_leader", nil); !ok || v != 0 {
		t.Errorf("follower kubeletpolicy_leader = %v (present %v), want 0", v, ok)
	}

	// SIGKILL the leader: no release, the follower takes over when the Lease expires (10s).
	killed := time.Now()
	a.signal(syscall.SIGKILL)
	<-a.done
	eventually(t, 25*time.Second, "replica-b takes the Lease", func() error {
		h, err := leaseHolder(t)
		if err != nil {
			return err
		}
		if h != idB {
			return fmt.Errorf("holder %q", h)
		}
		return nil
	})
	handover := time.Since(killed)
	t.Logf("handover after SIGKILL of the leader: %.1fs (lease duration 10s)", handover.Seconds())
	if handover > 20*time.Second {
		t.Errorf("handover took %.1fs, want <= 20s", handover.Seconds())
	}

	// The new leader keeps the status up to date.
	setBehavior(t, "ctl-ha-ok", "garbage")
	d := waitStatus(t, name, 30*time.Second, want{selected: 2, compliant: 0, nonCompliant: 1, unknown: 1,
		nodes:   map[string]wantNode{"ctl-ha-nc": ncOnly["ctl-ha-nc"], "ctl-ha-ok": {"Unknown", nil}},
		failing: map[string]int{"streaming-connection-idle-timeout": 1}, compliantCond: "False"})
	t.Logf("new leader reported ctl-ha-ok Unknown %.1fs after its kubelet turned to garbage", d.Seconds())
	if n := b.statusWrites(name); n == 0 {
		t.Errorf("the new leader logged no status write")
	}
	waitEvents(t, name, "ctl-ha-ok", "ConfigzUnavailable", 1, 20*time.Second)
	// No duplicate: the new leader continued from the status, ctl-ha-nc did not change.
	expectEvents(t, name, "ctl-ha-nc", "NodeNonCompliant", 1)

	// SIGTERM: the leader releases the Lease on its way out.
	if err := b.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("replica-b exit after SIGTERM: %v", err)
	}
	if h, err := leaseHolder(t); err != nil || h != "" {
		t.Errorf("Lease holder after SIGTERM of the leader: %q %v, want released (\"\")", h, err)
	}
	if !strings.Contains(b.logs(), "released the lease") {
		t.Errorf("replica-b did not log the release of the Lease")
	}
}

// The kube-apiserver restarted mid-watch: the controller recovers without restarting; after
// the restart a node config change, a policy edit (the policy watch) and a node relabel (the
// node watch) are all picked up.
func TestAPIServerRestart(t *testing.T) {
	const node = "ctl-apirestart"
	ensureNodeAnonymous(t, node, false)
	mustKubectl(t, "label", "node", node, "e2e-pool=apirestart", "--overwrite")
	name := uniqueName("ctl-apirestart")
	c := startController(t, "apirestart")
	applyPolicy(t, name, policyYAML(name, "apirestart", "10s", ruleAnonymous))
	kubectlWaitReady(t, name, 60*time.Second)
	waitStatus(t, name, 10*time.Second, want{selected: 1, compliant: 1, nodes: map[string]wantNode{},
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "True"})
	waitLeader(t, c, 10*time.Second)
	pid := c.cmd.Process.Pid

	restartAPIServer(t)

	if c.exited() {
		t.Fatalf("the controller exited during the API server restart: %v", c.waitErr)
	}
	// A config change after the restart.
	start := time.Now()
	setNodeConfig(t, node, kubeletConfig(true))
	t.Cleanup(func() { setNodeConfig(t, node, kubeletConfig(false)) })
	nc := want{selected: 1, nonCompliant: 1,
		nodes:   map[string]wantNode{node: {"NonCompliant", []string{"anonymous-auth-disabled"}}},
		failing: map[string]int{"anonymous-auth-disabled": 1}, compliantCond: "False"}
	d := waitStatus(t, name, 60*time.Second, nc)
	t.Logf("config change after the API server restart reflected in %.1fs (%.1fs after the edit began)", d.Seconds(), time.Since(start).Seconds())
	waitEvents(t, name, node, "NodeNonCompliant", 1, 20*time.Second)

	// A policy edit: seen only through a working KubeletPolicy watch.
	applyPolicy(t, name, policyYAML(name, "apirestart", "10s", ruleAnonymous+ruleStreaming))
	nc.failing["streaming-connection-idle-timeout"] = 0
	d = waitStatus(t, name, 30*time.Second, nc)
	t.Logf("policy edit (generation 2) after the API server restart reflected in %.1fs", d.Seconds())

	// A relabel out of the selector: seen only through a working Node watch (periodic checks
	// do not re-list nodes).
	mustKubectl(t, "label", "node", node, "e2e-pool=elsewhere", "--overwrite")
	t.Cleanup(func() { _, _ = kubectl(t, "label", "node", node, "e2e-pool=apirestart", "--overwrite") })
	d = waitStatus(t, name, 15*time.Second, want{selected: 0, nodes: map[string]wantNode{},
		failing: map[string]int{"anonymous-auth-disabled": 0, "streaming-connection-idle-timeout": 0}, compliantCond: "True"})
	t.Logf("node relabel after the API server restart reflected in %.1fs", d.Seconds())

	if c.exited() || c.cmd.Process.Pid != pid {
		t.Errorf("the controller restarted or exited: %v", c.waitErr)
	}
	health, _ := c.ports(t)
	if code, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", health)); err != nil || code != 200 {
		t.Errorf("/readyz after the API server restart: %d %v", code, err)
	}
	logs := c.logs()
	t.Logf("controller log during the test: lost leadership %d times, became leader %d times, %d warnings",
		strings.Count(logs, "lost leadership: stopped reconciling"), strings.Count(logs, "became leader"), strings.Count(logs, `"level":"warning"`))
}

// restartAPIServer stops the environment's kube-apiserver (SIGTERM, by its pid file) and
// starts it again with the same command line, in its own session, logging where it did,
// and updates the pid file (so `down` stops the new one).
func restartAPIServer(t *testing.T) {
	t.Helper()
	pidPath := filepath.Join(stateDir, "pids", "kube-apiserver.pid")
	b, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !processAlive(pid) {
		t.Fatalf("kube-apiserver pid file %s: %q: not running", pidPath, b)
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if len(argv) < 3 || argv[1] != "kube-apiserver" {
		t.Fatalf("pid %d is not the testenv kube-apiserver: %q", pid, argv)
	}
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Its graceful shutdown waits up to 60s for open HTTP/2 streams (watches); like `down`,
	// SIGKILL it when that takes long.
	how := "SIGTERM"
	for processAlive(pid) && time.Since(t0) < 15*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	if processAlive(pid) {
		how = "SIGKILL after 15s of SIGTERM"
		_ = syscall.Kill(pid, syscall.SIGKILL)
		eventually(t, 30*time.Second, "kube-apiserver exits after SIGKILL", func() error {
			if processAlive(pid) {
				return fmt.Errorf("pid %d still running", pid)
			}
			return nil
		})
	}
	t.Logf("kube-apiserver (pid %d) stopped in %.1fs (%s)", pid, time.Since(t0).Seconds(), how)

	lf, err := os.OpenFile(filepath.Join(stateDir, "logs", "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = cwd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart kube-apiserver: %v", err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it ends while the tests run
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := eventually(t, 3*time.Minute, "kube-apiserver /readyz after the restart", func() error {
		out, err := kubectl(t, "get", "--raw", "/readyz")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "ok" {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	t.Logf("kube-apiserver restarted (pid %d), ready after %.1fs; down %.1fs in total", cmd.Process.Pid, d.Seconds(), time.Since(t0).Seconds())
}
