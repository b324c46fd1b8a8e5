package controllertests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The controller reads /configz straight from each kubelet (the default --configz-source),
// which authorizes `get nodes/configz` for the short-lived token of a ServiceAccount that can do
// nothing else; the controller's own ServiceAccount holds neither nodes/proxy nor nodes/configz.

const kubeletClientSA = "kubelet-policy-controller-kubelet-client"

// saUser is the --as flag for a ServiceAccount of the controller's namespace.
func saUser(name string) string { return "--as=system:serviceaccount:" + systemNamespace + ":" + name }

func TestKubeletAccessIsLeastPrivilege(t *testing.T) {
	controllerSA, reader := saUser(serviceAccount), saUser(kubeletClientSA)
	for _, c := range []struct {
		as   string
		args []string
		want string
	}{
		{controllerSA, []string{"get", "nodes", "--subresource=proxy"}, "no"},
		{controllerSA, []string{"get", "nodes", "--subresource=configz"}, "no"},
		{controllerSA, []string{"create", "serviceaccounts/" + kubeletClientSA, "--subresource=token", "-n", systemNamespace}, "yes"},
		{controllerSA, []string{"create", "serviceaccounts/" + serviceAccount, "--subresource=token", "-n", systemNamespace}, "no"},
		{controllerSA, []string{"create", "serviceaccounts/default", "--subresource=token", "-n", "kube-system"}, "no"},
		{reader, []string{"get", "nodes", "--subresource=configz"}, "yes"},
		{reader, []string{"get", "nodes", "--subresource=proxy"}, "no"},
		{reader, []string{"create", "nodes", "--subresource=proxy"}, "no"},
		{reader, []string{"create", "serviceaccounts/" + kubeletClientSA, "--subresource=token", "-n", systemNamespace}, "no"},
		{reader, []string{"get", "nodes"}, "no"},
		{reader, []string{"get", "pods", "-A"}, "no"},
		{reader, []string{"create", "jobs.batch", "-n", remediationNamespace}, "no"},
		{reader, []string{"get", "kubeletpolicies.kubeletpolicy.io"}, "no"},
	} {
		if got := canI(t, c.as, c.args...); got != c.want {
			t.Errorf("kubectl auth can-i %s as %s: %q, want %q", strings.Join(c.args, " "), c.as, got, c.want)
		}
	}
}

// setFineGrainedAuthz switches a simulated kubelet's KubeletFineGrainedAuthz (off: a pre-1.33
// kubelet that authorizes /configz only as nodes/proxy).
func setFineGrainedAuthz(t *testing.T, node string, on bool) {
	t.Helper()
	sock := filepath.Join(stateDir, "fleet.sock")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	u := fmt.Sprintf("http://fleet/authz?node=%s&fineGrained=%t", url.QueryEscape(node), on)
	resp, err := client.Post(u, "text/plain", nil)
	if err != nil {
		t.Fatalf("fleet authz %s: %v", node, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("fleet authz %s=%t: %s: %s", node, on, resp.Status, b)
	}
}

func requireMessage(t *testing.T, name, node string, parts ...string) {
	t.Helper()
	p, err := getPolicy(t, name)
	if err != nil {
		t.Fatal(err)
	}
	n := p.node(node)
	if n == nil {
		t.Fatalf("kp %s has no status for node %s", name, node)
	}
	t.Logf("%s: %s", node, n.Message)
	for _, w := range parts {
		if !strings.Contains(n.Message, w) {
			t.Errorf("message of %s %q does not say %q", node, n.Message, w)
		}
	}
}

func metricAtLeast(t *testing.T, c *controller, name string, labels map[string]string, min float64) {
	t.Helper()
	_, port := c.ports(t)
	eventually(t, 20*time.Second, name, func() error {
		_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return err
		}
		if v, ok := metricValue(body, name, labels); !ok || v < min {
			return fmt.Errorf("%s%v = %v (present %v), want >= %v", name, labels, v, ok, min)
		}
		return nil
	})
}

// Without `get nodes/configz` for the token it sends, every kubelet refuses the controller:
// the nodes are Unknown with a reason that says what to grant, one Event each, a metric; the
// controller keeps running and recovers as soon as the grant exists.
func TestKubeletRefusesWithoutConfigzRBAC(t *testing.T) {
	sa := "kpc-e2e-no-configz"
	mustKubectl(t, "create", "serviceaccount", sa, "-n", systemNamespace)
	mustKubectl(t, "create", "role", sa+"-token", "-n", systemNamespace, "--verb=create",
		"--resource=serviceaccounts/token", "--resource-name="+sa)
	mustKubectl(t, "create", "rolebinding", sa+"-token", "-n", systemNamespace, "--role="+sa+"-token",
		"--serviceaccount="+systemNamespace+":"+serviceAccount)
	t.Cleanup(func() {
		_, _ = kubectl(t, "delete", "clusterrolebinding", sa, "--ignore-not-found")
		_, _ = kubectl(t, "delete", "-n", systemNamespace, "rolebinding/"+sa+"-token", "role/"+sa+"-token",
			"serviceaccount/"+sa, "--ignore-not-found")
	})
	name := uniqueName("acc-rbac")
	c := startController(t, "no-configz", "--kubelet-client-service-account="+sa)
	applyPolicy(t, name, policyYAML(name, "access", "10s", ruleAnonymous))
	kubectlWaitReady(t, name, 60*time.Second)
	waitStatus(t, name, 20*time.Second, want{selected: 2, unknown: 2,
		nodes:   map[string]wantNode{"acc-1": {"Unknown", nil}, "acc-2": {"Unknown", nil}},
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "Unknown"})
	for _, n := range []string{"acc-1", "acc-2"} {
		requireMessage(t, name, n, "(Forbidden)", "refused nodes/configz to ServiceAccount "+systemNamespace+"/"+sa,
			"grant it `get nodes/configz`", "KubeletFineGrainedAuthz")
		waitEvents(t, name, n, "ConfigzUnavailable", 1, 20*time.Second)
	}
	metricAtLeast(t, c, "kubeletpolicy_configz_fetch_errors_total", map[string]string{"reason": "Forbidden", "source": "kubelet"}, 2)
	// Still failing at later checks, but announced once.
	time.Sleep(12 * time.Second)
	for _, n := range []string{"acc-1", "acc-2"} {
		expectEvents(t, name, n, "ConfigzUnavailable", 1)
	}
	if c.exited() {
		t.Fatalf("the controller exited: %v", c.waitErr)
	}

	start := time.Now()
	mustKubectl(t, "create", "clusterrolebinding", sa, "--clusterrole="+kubeletClientSA,
		"--serviceaccount="+systemNamespace+":"+sa)
	// The kubelets cache a denial for cacheUnauthorizedTTL (30s by default).
	waitStatus(t, name, 90*time.Second, want{selected: 2, compliant: 2,
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "True"})
	t.Logf("granted get nodes/configz -> Compliant in %.1fs", time.Since(start).Seconds())
}

// A kubelet without fine-grained authorization (before 1.33, or the feature off) accepts
// /configz only as nodes/proxy: Unknown with the reason in the default mode, checked with the
// apiserver-proxy opt-in.
func TestKubeletWithoutFineGrainedAuthz(t *testing.T) {
	setFineGrainedAuthz(t, "acc-2", false)
	t.Cleanup(func() { setFineGrainedAuthz(t, "acc-2", true) })
	name := uniqueName("acc-fga")
	c := startController(t, "fine-grained-off")
	applyPolicy(t, name, policyYAML(name, "access", "10s", ruleAnonymous))
	kubectlWaitReady(t, name, 60*time.Second)
	waitStatus(t, name, 20*time.Second, want{selected: 2, compliant: 1, unknown: 1,
		nodes:   map[string]wantNode{"acc-2": {"Unknown", nil}},
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "Unknown"})
	requireMessage(t, name, "acc-2", "refused nodes/configz", "subresource(s)=[proxy]",
		"--configz-source apiserver-proxy")
	if err := c.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("controller exit: %v", err)
	}

	// The opt-in: the component's RBAC (get nodes/proxy) and --configz-source apiserver-proxy.
	grantNodesProxy(t)
	p := startController(t, "apiserver-proxy", "--configz-source=apiserver-proxy")
	waitStatus(t, name, 60*time.Second, want{selected: 2, compliant: 2,
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "True"})
	metricAtLeast(t, p, "kubeletpolicy_configz_fetch_duration_seconds_count", map[string]string{"source": "apiserver-proxy"}, 2)
}

// Kubelet serving certificates are verified: the wrong CA is a TLS reason that names the flags;
// --kubelet-insecure-tls is an explicit, logged opt-in.
func TestKubeletServingCertificates(t *testing.T) {
	name := uniqueName("acc-tls")
	wrong := startController(t, "wrong-ca", "--kubelet-certificate-authority="+filepath.Join(stateDir, "pki", "ca.crt"))
	applyPolicy(t, name, policyYAML(name, "access", "10s", ruleAnonymous))
	kubectlWaitReady(t, name, 60*time.Second)
	waitStatus(t, name, 20*time.Second, want{selected: 2, unknown: 2,
		nodes:   map[string]wantNode{"acc-1": {"Unknown", nil}, "acc-2": {"Unknown", nil}},
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "Unknown"})
	requireMessage(t, name, "acc-1", "(TLSError)", "--kubelet-certificate-authority", "--kubelet-insecure-tls")
	metricAtLeast(t, wrong, "kubeletpolicy_configz_fetch_errors_total", map[string]string{"reason": "TLSError", "source": "kubelet"}, 1)
	if err := wrong.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("controller exit: %v", err)
	}

	insecure := startController(t, "insecure-tls", "--kubelet-insecure-tls")
	waitStatus(t, name, 60*time.Second, want{selected: 2, compliant: 2,
		failing: map[string]int{"anonymous-auth-disabled": 0}, compliantCond: "True"})
	if !strings.Contains(insecure.logs(), "kubelet serving certificates are NOT verified") {
		t.Errorf("no warning about --kubelet-insecure-tls in the log")
	}
}

// grantNodesProxy applies the out-of-cluster install with the apiserver-proxy component (what a
// user opting in does) and restores the default install when the test ends.
func grantNodesProxy(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string { // kustomize refuses absolute paths
		r, err := filepath.Rel(dir, filepath.Join(repoRoot, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
components:
  - %s
`, rel("deploy/overlays/out-of-cluster"), rel("deploy/components/apiserver-proxy"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "--server-side", "-k", dir)
	t.Cleanup(func() {
		if out, err := kubectl(t, "apply", "--server-side", "-k", filepath.Join(repoRoot, "deploy", "overlays", "out-of-cluster")); err != nil {
			t.Errorf("restoring the default install: %v\n%s", err, out)
		}
		if got := canI(t, saUser(serviceAccount), "get", "nodes", "--subresource=proxy"); got != "no" {
			t.Errorf("after restoring the default install, can-i get nodes/proxy: %q", got)
		}
	})
	if got := canI(t, saUser(serviceAccount), "get", "nodes", "--subresource=proxy"); got != "yes" {
		t.Fatalf("with the apiserver-proxy component, can-i get nodes/proxy: %q", got)
	}
}
