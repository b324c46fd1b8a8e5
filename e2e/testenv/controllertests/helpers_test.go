package controllertests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ---- the controller and webhook processes ------------------------------------------------

// controller is a kubelet-policy-controller process: `run` (the operator) or `webhook` (the
// admission webhooks).
type controller struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// Short leader-election timings so that a SIGKILLed leader is replaced quickly, but not so
// short that a slow, shared machine loses the lease by accident.
var leaderFlags = []string{
	"--leader-elect-lease-duration=10s",
	"--leader-elect-renew-deadline=7s",
	"--leader-elect-retry-period=1s",
}

// kubeletFlags reach the simulated kubelets directly: on their Hostname address (127.x; the
// InternalIP 198.18.x is only for the API server's egress proxy and must never be dialed),
// verified with the testenv's kubelet CA unless the test chooses its own TLS flags.
func kubeletFlags(extra []string) []string {
	flags := []string{"--kubelet-preferred-address-types=Hostname"}
	for _, e := range extra {
		if strings.HasPrefix(e, "--kubelet-insecure-tls") || strings.HasPrefix(e, "--kubelet-certificate-authority") {
			return flags
		}
	}
	return append(flags, "--kubelet-certificate-authority="+filepath.Join(stateDir, "pki", "kubelet-ca.crt"))
}

// startController starts `kubelet-policy-controller run` as its ServiceAccount. Its log goes to
// a file in the test's temp dir and is printed when the test fails. It is stopped (SIGTERM)
// when the test ends unless the test already stopped it. It serves no admission webhooks
// (startWebhook does).
func startController(t *testing.T, name string, extra ...string) *controller {
	t.Helper()
	args := []string{"run",
		"--kubeconfig", saKubeconfig,
		"--leader-elect-namespace", systemNamespace,
		"--health-addr", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0",
		"--log-format", "json",
		"--configz-timeout=5s",
	}
	args = append(args, leaderFlags...)
	args = append(args, kubeletFlags(extra)...)
	return startProcess(t, name, append(args, extra...))
}

// startWebhook starts `kubelet-policy-controller webhook` as the webhook's ServiceAccount (its
// Lease: kubelet-policy-controller-webhook), like startController. Tests pass the serving
// flags (--local-webhooks, --webhook-addr, ...).
func startWebhook(t *testing.T, name string, extra ...string) *controller {
	t.Helper()
	args := []string{"webhook",
		"--kubeconfig", webhookKubeconfig,
		"--leader-elect-namespace", systemNamespace,
		"--webhook-namespace", systemNamespace,
		"--health-addr", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0",
		"--log-format", "json",
	}
	args = append(args, leaderFlags...)
	return startProcess(t, name, append(args, extra...))
}

// startProcess starts the binary with args; see startController.
func startProcess(t *testing.T, name string, args []string) *controller {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(controllerBinary, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	// A test binary that dies must not leave a process behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatal(err)
	}
	c := &controller{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, controllerBinary, strings.Join(args, " "))
	t.Cleanup(func() {
		if !c.exited() {
			c.signal(syscall.SIGTERM)
			select {
			case <-c.done:
			case <-time.After(30 * time.Second):
				c.signal(syscall.SIGKILL)
				<-c.done
			}
		}
		if t.Failed() {
			t.Logf("---- log of %s (%s) ----\n%s", name, logPath, tail(c.logs(), 300))
		}
	})
	return c
}

func (c *controller) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *controller) signal(sig syscall.Signal) { _ = c.cmd.Process.Signal(sig) }

// stop sends sig and waits for the process to end; returns the exit error (nil = exit 0).
func (c *controller) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	c.signal(sig)
	select {
	case <-c.done:
		return c.waitErr
	case <-time.After(30 * time.Second):
		t.Fatalf("controller %s did not stop within 30s of %v", c.name, sig)
		return nil
	}
}

func (c *controller) logs() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

var portsRe = regexp.MustCompile(`serving /healthz and /readyz on port (\d+), /metrics on port (\d+)`)
var identityRe = regexp.MustCompile(`leader election: Lease \S+ as (\S+?)"`)

// ports returns the health and metrics ports parsed from the controller's log.
func (c *controller) ports(t *testing.T) (health, metrics int) {
	t.Helper()
	eventually(t, 30*time.Second, "controller "+c.name+" logs its ports", func() error {
		if c.exited() {
			t.Fatalf("controller %s exited: %v", c.name, c.waitErr)
		}
		m := portsRe.FindStringSubmatch(c.logs())
		if m == nil {
			return fmt.Errorf("no %q line yet", portsRe.String())
		}
		health, _ = strconv.Atoi(m[1])
		metrics, _ = strconv.Atoi(m[2])
		return nil
	})
	return
}

// identity returns the controller's leader-election identity, parsed from its log.
func (c *controller) identity(t *testing.T) string {
	t.Helper()
	var id string
	eventually(t, 30*time.Second, "controller "+c.name+" logs its identity", func() error {
		if c.exited() {
			t.Fatalf("controller %s exited: %v", c.name, c.waitErr)
		}
		m := identityRe.FindStringSubmatch(c.logs())
		if m == nil {
			return fmt.Errorf("no leader election line yet")
		}
		id = m[1]
		return nil
	})
	return id
}

func (c *controller) statusWrites(policy string) int {
	return strings.Count(c.logs(), "kubeletpolicy "+policy+": status written")
}

// leaseHolder returns spec.holderIdentity of the controller's Lease ("" when free or absent).
func leaseHolder(t *testing.T) (string, error) {
	t.Helper()
	return leaseHolderOf(t, leaseName)
}

// leaseHolderOf returns spec.holderIdentity of a Lease in the system namespace.
func leaseHolderOf(t *testing.T, lease string) (string, error) {
	t.Helper()
	out, err := kubectl(t, "get", "lease", "-n", systemNamespace, lease, "-o", "jsonpath={.spec.holderIdentity}")
	return strings.TrimSpace(out), err
}

// waitLeader waits until the controller c holds the controller's Lease.
func waitLeader(t *testing.T, c *controller, timeout time.Duration) time.Duration {
	t.Helper()
	return waitLeaseHolder(t, c, leaseName, timeout)
}

// waitLeaseHolder waits until c holds the Lease named lease (the controller's or the webhook's).
func waitLeaseHolder(t *testing.T, c *controller, lease string, timeout time.Duration) time.Duration {
	t.Helper()
	id := c.identity(t)
	return eventually(t, timeout, c.name+" holds the Lease "+lease, func() error {
		if c.exited() {
			t.Fatalf("%s exited: %v", c.name, c.waitErr)
		}
		h, err := leaseHolderOf(t, lease)
		if err != nil {
			return err
		}
		if h != id {
			return fmt.Errorf("holder is %q, want %q", h, id)
		}
		return nil
	})
}

// ---- HTTP endpoints of the controller ------------------------------------------------------

func httpGet(u string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metricValue finds the sample `name{labels...}` whose labels include all of want.
func metricValue(body, name string, want map[string]string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		n, labels := series, ""
		if i := strings.IndexByte(series, '{'); i >= 0 {
			n, labels = series[:i], strings.TrimSuffix(series[i+1:], "}")
		}
		if n != name {
			continue
		}
		got := map[string]string{}
		for _, kv := range regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(labels, -1) {
			got[kv[1]] = kv[2]
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		return f, true
	}
	return 0, false
}

// ---- KubeletPolicy objects ---------------------------------------------------------------

type condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string `json:"reason"`
	Message            string `json:"message"`
	ObservedGeneration int64  `json:"observedGeneration"`
	LastTransitionTime string `json:"lastTransitionTime"`
}

type nodeStatus struct {
	Name        string   `json:"name"`
	State       string   `json:"state"`
	FailedRules []string `json:"failedRules"`
	Message     string   `json:"message"`
	LastChecked string   `json:"lastChecked"`
}

type kubeletPolicy struct {
	Metadata struct {
		Name       string `json:"name"`
		UID        string `json:"uid"`
		Generation int64  `json:"generation"`
	} `json:"metadata"`
	Status struct {
		ObservedGeneration int64       `json:"observedGeneration"`
		Conditions         []condition `json:"conditions"`
		Summary            struct {
			SelectedNodes     int `json:"selectedNodes"`
			CompliantNodes    int `json:"compliantNodes"`
			NonCompliantNodes int `json:"nonCompliantNodes"`
			UnknownNodes      int `json:"unknownNodes"`
			RemediatingNodes  int `json:"remediatingNodes"`
		} `json:"summary"`
		Rules []struct {
			ID           string `json:"id"`
			FailingNodes int    `json:"failingNodes"`
		} `json:"rules"`
		Nodes          []nodeStatus `json:"nodes"`
		NodesTruncated bool         `json:"nodesTruncated"`
	} `json:"status"`
}

func (p *kubeletPolicy) condition(typ string) condition {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return condition{Type: typ, Status: "<absent>"}
}

func (p *kubeletPolicy) node(name string) *nodeStatus {
	for i := range p.Status.Nodes {
		if p.Status.Nodes[i].Name == name {
			return &p.Status.Nodes[i]
		}
	}
	return nil
}

func getPolicy(t *testing.T, name string) (*kubeletPolicy, error) {
	t.Helper()
	out, err := kubectl(t, "get", "kubeletpolicy", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var p kubeletPolicy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, fmt.Errorf("kubectl get kp %s -o json: %v", name, err)
	}
	return &p, nil
}

// want is the exact expected status of a policy.
type want struct {
	selected, compliant, nonCompliant, unknown int
	// nodes listed in status.nodes: name -> state and failed rules (in rule order)
	nodes map[string]wantNode
	// failing nodes per rule; rules not named must have 0
	failing map[string]int
	// Compliant condition status: True, False or Unknown
	compliantCond string
}

type wantNode struct {
	state string
	rules []string
}

// check compares the policy's status with w; it also requires observedGeneration ==
// metadata.generation and Ready=True for that generation.
func (p *kubeletPolicy) check(w want) error {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	st := p.Status
	if st.ObservedGeneration != p.Metadata.Generation {
		add("observedGeneration %d, metadata.generation %d", st.ObservedGeneration, p.Metadata.Generation)
	}
	if r := p.condition("Ready"); r.Status != "True" || r.ObservedGeneration != p.Metadata.Generation {
		add("Ready=%s (generation %d, reason %s: %s)", r.Status, r.ObservedGeneration, r.Reason, r.Message)
	}
	s := st.Summary
	if s.SelectedNodes != w.selected || s.CompliantNodes != w.compliant || s.NonCompliantNodes != w.nonCompliant || s.UnknownNodes != w.unknown {
		add("summary selected/compliant/nonCompliant/unknown = %d/%d/%d/%d, want %d/%d/%d/%d",
			s.SelectedNodes, s.CompliantNodes, s.NonCompliantNodes, s.UnknownNodes, w.selected, w.compliant, w.nonCompliant, w.unknown)
	}
	for _, r := range st.Rules {
		if r.FailingNodes != w.failing[r.ID] {
			add("rule %s: failingNodes %d, want %d", r.ID, r.FailingNodes, w.failing[r.ID])
		}
	}
	for id := range w.failing {
		found := false
		for _, r := range st.Rules {
			found = found || r.ID == id
		}
		if !found {
			add("rule %s missing from status.rules", id)
		}
	}
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		wn, ok := w.nodes[n.Name]
		if !ok {
			add("unexpected node %s in status.nodes (%s %v: %s)", n.Name, n.State, n.FailedRules, n.Message)
			continue
		}
		if n.State != wn.state || strings.Join(n.FailedRules, ",") != strings.Join(wn.rules, ",") {
			add("node %s: %s %v, want %s %v (message %q)", n.Name, n.State, n.FailedRules, wn.state, wn.rules, n.Message)
		}
		if n.Message == "" {
			add("node %s: empty message", n.Name)
		}
	}
	if !sort.StringsAreSorted(names) {
		add("status.nodes not sorted by name: %v", names)
	}
	for name := range w.nodes {
		if p.node(name) == nil {
			add("node %s missing from status.nodes", name)
		}
	}
	if w.compliantCond != "" {
		if c := p.condition("Compliant"); c.Status != w.compliantCond {
			add("Compliant=%s (%s: %s), want %s", c.Status, c.Reason, c.Message, w.compliantCond)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kp %s: %s", p.Metadata.Name, strings.Join(errs, "; "))
	}
	return nil
}

// waitStatus waits until the policy's status matches w exactly; returns how long it took.
func waitStatus(t *testing.T, name string, timeout time.Duration, w want) time.Duration {
	t.Helper()
	return eventually(t, timeout, "status of kp "+name, func() error {
		p, err := getPolicy(t, name)
		if err != nil {
			return err
		}
		return p.check(w)
	})
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%04x", prefix, rand.Intn(1<<16))
}

// applyManifest applies YAML or JSON through kubectl and deletes the policy at the end of the test.
func applyPolicy(t *testing.T, name, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-f", f)
	t.Cleanup(func() {
		if _, err := kubectl(t, "delete", "kubeletpolicy", name, "--ignore-not-found", "--wait=false"); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

// policyYAML is a policy selecting the nodes of one pool of this package.
func policyYAML(name, pool, interval, rules string) string {
	return fmt.Sprintf(`apiVersion: kubeletpolicy.io/v1alpha1
kind: KubeletPolicy
metadata:
  name: %s
  labels: {kpc-e2e: controllertests}
spec:
  nodeSelector:
    matchLabels: {e2e: controller, e2e-pool: %s}
  checkInterval: %s
  enforcement: Audit
  rules:
%s`, name, pool, interval, rules)
}

const (
	ruleAnonymous = `    - id: anonymous-auth-disabled
      severity: Critical
      config: {path: authentication.anonymous.enabled, operator: Equals, value: false}
`
	ruleStreaming = `    - id: streaming-connection-idle-timeout
      severity: Low
      config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: 0s}
`
)

// kubectlWaitReady runs `kubectl wait --for=condition=Ready kp/NAME`.
func kubectlWaitReady(t *testing.T, name string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if out, err := kubectl(t, "wait", "--for=condition=Ready", "kp/"+name, fmt.Sprintf("--timeout=%ds", int(timeout.Seconds()))); err != nil {
		p, _ := getPolicy(t, name)
		t.Fatalf("kubectl wait --for=condition=Ready kp/%s: %v\n%s\nstatus: %+v", name, err, out, p)
	}
	return time.Since(start)
}

// ---- Events ------------------------------------------------------------------------------

type event struct {
	InvolvedObject struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"involvedObject"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Count   int    `json:"count"`
	Series  *struct {
		Count int `json:"count"`
	} `json:"series"`
}

func (e event) n() int {
	if e.Series != nil && e.Series.Count > e.Count {
		return e.Series.Count
	}
	if e.Count < 1 {
		return 1
	}
	return e.Count
}

func listEvents(t *testing.T) ([]event, error) {
	t.Helper()
	out, err := kubectl(t, "get", "events", "-n", "default", "-o", "json")
	if err != nil {
		return nil, err
	}
	var l struct {
		Items []event `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// eventCounts returns, for the policy and one node, how many times (summing aggregated
// counts) reason was recorded about the node on the policy and on the Node.
func eventCounts(t *testing.T, policy, node, reason string) (onPolicy, onNode int, err error) {
	t.Helper()
	evs, err := listEvents(t)
	if err != nil {
		return 0, 0, err
	}
	nodeWord := regexp.MustCompile(`\bnode ` + regexp.QuoteMeta(node) + `\b[^-]`)
	policyWord := regexp.MustCompile(`\b` + regexp.QuoteMeta(policy) + `\b`)
	for _, e := range evs {
		if e.Reason != reason || !nodeWord.MatchString(e.Message+" ") || !policyWord.MatchString(e.Message) {
			continue
		}
		switch {
		case e.InvolvedObject.Kind == "KubeletPolicy" && e.InvolvedObject.Name == policy:
			onPolicy += e.n()
		case e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == node:
			onNode += e.n()
		}
	}
	return onPolicy, onNode, nil
}

// waitEvents waits until reason was recorded exactly n times about node, on the policy
// and on the Node; failing at once when there are more.
func waitEvents(t *testing.T, policy, node, reason string, n int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d %s Event(s) about %s from %s", n, reason, node, policy), func() error {
		p, nd, err := eventCounts(t, policy, node, reason)
		if err != nil {
			return err
		}
		if p > n || nd > n {
			t.Fatalf("%s about node %s from policy %s: %d on the policy, %d on the Node; want exactly %d (duplicate transition Events)",
				reason, node, policy, p, nd, n)
		}
		if p != n || nd != n {
			return fmt.Errorf("%d on the policy, %d on the Node", p, nd)
		}
		return nil
	})
}

// expectEvents asserts the counts now, without waiting.
func expectEvents(t *testing.T, policy, node, reason string, n int) {
	t.Helper()
	p, nd, err := eventCounts(t, policy, node, reason)
	if err != nil {
		t.Fatal(err)
	}
	if p != n || nd != n {
		t.Errorf("%s about node %s from policy %s: %d on the policy, %d on the Node; want exactly %d", reason, node, policy, p, nd, n)
	}
}

// ---- simulated nodes ----------------------------------------------------------------------

// setBehavior changes a simulated kubelet's behaviour through the fleet's control socket.
func setBehavior(t *testing.T, node, behavior string) {
	t.Helper()
	sock := filepath.Join(stateDir, "fleet.sock")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	u := "http://fleet/behavior?node=" + url.QueryEscape(node) + "&value=" + url.QueryEscape(behavior)
	resp, err := client.Post(u, "text/plain", nil)
	if err != nil {
		t.Fatalf("fleet behavior %s=%s: %v", node, behavior, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("fleet behavior %s=%s: %s: %s", node, behavior, resp.Status, b)
	}
}

// kubeletConfig is the KubeletConfiguration of this package's node specs (nodes/*.yaml),
// compliant with the CIS sample except for anonymous auth when anonymous is true.
func kubeletConfig(anonymous bool) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: %t
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
eventRecordQPS: 5
makeIPTablesUtilChains: true
podPidsLimit: 4096
protectKernelDefaults: true
readOnlyPort: 0
rotateCertificates: true
seccompDefault: true
streamingConnectionIdleTimeout: 4h0m0s
tlsCertFile: /var/lib/kubelet/pki/kubelet.crt
tlsCipherSuites:
- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key
`, anonymous)
}

// setNodeConfig rewrites the node's kubelet config file under its root and restarts its
// kubelet (which re-reads it), like an administrator editing the node.
func setNodeConfig(t *testing.T, node, content string) {
	t.Helper()
	path := filepath.Join(stateDir, "nodes", node, "root", "var", "lib", "kubelet", "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	restartKubelet(t, node)
}

func restartKubelet(t *testing.T, node string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenvDir, "restart-kubelet"), "--state", stateDir, "--node", node)
	cmd.Env = append(os.Environ(), "KPC_TESTENV_STATE="+stateDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restart-kubelet %s: %v\n%s", node, err, out)
	}
}

// configzAnonymous reads authentication.anonymous.enabled from the node's live /configz.
func configzAnonymous(t *testing.T, node string) (bool, error) {
	t.Helper()
	out, err := kubectl(t, "get", "--raw", "/api/v1/nodes/"+node+"/proxy/configz")
	if err != nil {
		return false, err
	}
	var v struct {
		KubeletConfig struct {
			Authentication struct {
				Anonymous struct {
					Enabled bool `json:"enabled"`
				} `json:"anonymous"`
			} `json:"authentication"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return false, err
	}
	return v.KubeletConfig.Authentication.Anonymous.Enabled, nil
}

// ensureNodeAnonymous puts the node's config in the given state (the tests that change a
// node start from its spec, even on an environment reused from an earlier run).
func ensureNodeAnonymous(t *testing.T, node string, anonymous bool) {
	t.Helper()
	if got, err := configzAnonymous(t, node); err == nil && got == anonymous {
		return
	}
	setNodeConfig(t, node, kubeletConfig(anonymous))
	eventually(t, 30*time.Second, "configz of "+node+" after the reset", func() error {
		got, err := configzAnonymous(t, node)
		if err != nil {
			return err
		}
		if got != anonymous {
			return fmt.Errorf("anonymous %v, want %v", got, anonymous)
		}
		return nil
	})
}

func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
		return false
	}
	return true
}
