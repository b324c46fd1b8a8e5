package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNodesRegisteredWithLabels(t *testing.T) {
	out := mustKubectl(t, "get", "nodes", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Status struct {
				Addresses []struct{ Type, Address string } `json:"addresses"`
				NodeInfo  struct {
					KubeletVersion string `json:"kubeletVersion"`
				} `json:"nodeInfo"`
				DaemonEndpoints struct {
					KubeletEndpoint struct{ Port int } `json:"kubeletEndpoint"`
				} `json:"daemonEndpoints"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range list.Items {
		seen[n.Metadata.Name] = true
		if n.Metadata.Name == "alpha" {
			if _, ok := n.Metadata.Labels["node-role.kubernetes.io/worker"]; !ok || n.Metadata.Labels["pool"] != "alpha" {
				t.Errorf("alpha labels = %v", n.Metadata.Labels)
			}
		}
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == "InternalIP" {
				ip = a.Address
			}
		}
		if parsed := net.ParseIP(ip); parsed == nil || !(parsed.To4()[0] == 198 && (parsed.To4()[1]&0xfe) == 18) {
			t.Errorf("node %s InternalIP %q not in 198.18.0.0/15", n.Metadata.Name, ip)
		}
		if !strings.HasPrefix(n.Status.NodeInfo.KubeletVersion, "v1.34.") {
			t.Errorf("node %s kubeletVersion %q", n.Metadata.Name, n.Status.NodeInfo.KubeletVersion)
		}
		if n.Status.DaemonEndpoints.KubeletEndpoint.Port == 0 {
			t.Errorf("node %s has no kubelet port", n.Metadata.Name)
		}
	}
	for name := range nodeSpecs {
		if !seen[name] {
			t.Errorf("node %s not registered", name)
		}
	}
	wide := mustKubectl(t, "get", "nodes", "-l", "pool=beta", "--show-labels")
	if !strings.Contains(wide, "beta") || !strings.Contains(wide, "Ready") {
		t.Errorf("kubectl get nodes -l pool=beta:\n%s", wide)
	}
}

func TestKubectlVersionShowsRelease(t *testing.T) {
	out := mustKubectl(t, "version")
	if strings.Count(out, "v1.34.") < 2 {
		t.Errorf("kubectl version does not show the release for client and server:\n%s", out)
	}
}

func TestConfigzIsEffectiveConfig(t *testing.T) {
	alpha := configz(t, "alpha")
	// The --make-iptables-util-chains=false flag overrides the file's true.
	if v := field(alpha, "makeIPTablesUtilChains"); v != false {
		t.Errorf("alpha makeIPTablesUtilChains = %v, want false (flag wins over file)", v)
	}
	// 0s in the file: the kubelet defaults it (v1beta1 defaulting) to 4h.
	if v := field(alpha, "streamingConnectionIdleTimeout"); v != "4h0m0s" {
		t.Errorf("alpha streamingConnectionIdleTimeout = %v, want 4h0m0s", v)
	}
	// Unset in the file: kubelet defaults.
	if v := field(alpha, "imageGCHighThresholdPercent"); v != float64(85) {
		t.Errorf("alpha imageGCHighThresholdPercent = %v, want 85", v)
	}
	if v := field(alpha, "authorization.mode"); v != "Webhook" {
		t.Errorf("alpha authorization.mode = %v", v)
	}
	// No kind/apiVersion, like the real kubelet.
	if _, ok := alpha["kind"]; ok {
		t.Errorf("configz has kind")
	}

	beta := configz(t, "beta")
	if v := field(beta, "eventRecordQPS"); v != float64(0) {
		t.Errorf("beta eventRecordQPS = %v, want 0 (--event-qps=0 from /etc/default/kubelet)", v)
	}
	if v := field(beta, "readOnlyPort"); v != float64(10255) {
		t.Errorf("beta readOnlyPort = %v", v)
	}
	if v := field(beta, "rotateCertificates"); v != true {
		t.Errorf("beta rotateCertificates = %v", v)
	}
	// A v1beta1 file defaults anonymous auth to false and authorization to Webhook.
	if v := field(beta, "authentication.anonymous.enabled"); v != false {
		t.Errorf("beta anonymous = %v", v)
	}

	// Flags only: the kubelet's legacy flag defaults.
	gamma := configz(t, "gamma")
	for path, want := range map[string]any{
		"authorization.mode":               "AlwaysAllow",
		"authentication.anonymous.enabled": true,
		"authentication.webhook.enabled":   false,
		"readOnlyPort":                     float64(10255),
	} {
		if v := field(gamma, path); v != want {
			t.Errorf("gamma %s = %v, want %v", path, v, want)
		}
	}
	// rotateCertificates is false and omitted (omitempty), as on a real kubelet.
	if _, ok := gamma["rotateCertificates"]; ok {
		t.Errorf("gamma configz has rotateCertificates: %v", gamma["rotateCertificates"])
	}
}

func TestNodeFilesLaidOut(t *testing.T) {
	root := filepath.Join(stateDir, "nodes", "beta", "root")
	st, err := os.Stat(filepath.Join(root, "var/lib/kubelet/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %o", st.Mode().Perm())
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid == 0 {
		t.Errorf("owner nobody not applied (uid 0)")
	}
	env, err := os.ReadFile(filepath.Join(root, "etc/default/kubelet"))
	if err != nil || !strings.Contains(string(env), `KUBELET_ARGS="--event-qps=0"`) {
		t.Errorf("env file = %q, %v", env, err)
	}
	dropIn, err := os.ReadFile(filepath.Join(stateDir, "nodes", "alpha", "root", "etc/systemd/system/kubelet.service.d/10-kubelet-args.conf"))
	if err != nil || !strings.Contains(string(dropIn), `Environment="KUBELET_ARGS=--make-iptables-util-chains=false"`) {
		t.Errorf("drop-in = %q, %v", dropIn, err)
	}
}

func TestBehaviors(t *testing.T) {
	out, err := kubectl(t, "get", "--raw", "/api/v1/nodes/garbage-node/proxy/configz")
	if err != nil {
		t.Fatalf("garbage node: %v", err)
	}
	if json.Valid([]byte(out)) {
		t.Errorf("garbage node served JSON: %s", out)
	}
	if out, err := kubectl(t, "get", "--raw", "/api/v1/nodes/refused-node/proxy/configz"); err == nil {
		t.Errorf("refused node answered: %s", out)
	} else if !strings.Contains(strings.ToLower(out), "refused") {
		t.Errorf("refused node error does not say refused: %s", out)
	}
}

// fleetCtl posts to the fleet's control socket.
func fleetCtl(t *testing.T, path string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(stateDir, "fleet.sock"))
	}}}
	resp, err := c.Post("http://fleet"+path, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", path, resp.Status)
	}
}

func TestBehaviorChangedAtRuntime(t *testing.T) {
	fleetCtl(t, "/behavior?node=garbage-node&value=unreachable")
	t.Cleanup(func() { fleetCtl(t, "/behavior?node=garbage-node&value=garbage") })
	start := time.Now()
	if out, err := kubectl(t, "get", "--raw", "/api/v1/nodes/garbage-node/proxy/configz", "--request-timeout=3s"); err == nil {
		t.Errorf("unreachable node answered: %s", out)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("unreachable node failed fast (%v), want a timeout", d)
	}
	fleetCtl(t, "/behavior?node=garbage-node&value=slow&delay=2s")
	start = time.Now()
	if _, err := kubectl(t, "get", "--raw", "/api/v1/nodes/garbage-node/proxy/configz"); err != nil {
		t.Errorf("slow node: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("slow node answered in %v", d)
	}
}

func TestEgressProxyRefusesOtherAddresses(t *testing.T) {
	sock := filepath.Join(stateDir, "egress.sock")
	for _, target := range []string{"10.1.2.3:443", "example.invalid:443", "[2001:db8::1]:443"} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT %s: status %d, want 403", target, resp.StatusCode)
		}
		c.Close()
	}
	log, err := os.ReadFile(filepath.Join(stateDir, "logs", "egress.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "REFUSED 10.1.2.3:443") {
		t.Errorf("refusal not logged:\n%s", log)
	}
}

func TestUpTwiceIsNoop(t *testing.T) {
	before := readPIDs(t)
	out, err := upScript()
	if err != nil {
		t.Fatal(err)
	}
	if got := lastLine(out); got != kubeconfig {
		t.Errorf("second up printed %q, want %q", got, kubeconfig)
	}
	after := readPIDs(t)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s pid changed %s -> %s", k, v, after[k])
		}
	}
}

func TestServiceAccountKubeconfig(t *testing.T) {
	ns := namespace(t)
	cmd := execScript("kubeconfig-for-sa", "--state", stateDir, ns, "controller")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubeconfig-for-sa: %v", err)
	}
	path := lastLine(string(out))
	t.Setenv("KUBECONFIG", path)
	// Not authorized yet: RBAC applies to the ServiceAccount, not admin.
	if out, err := kubectlAs(path, "get", "nodes"); err == nil {
		t.Errorf("ServiceAccount could list nodes without RBAC: %s", out)
	}
	if out, err := kubectlAs(path, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"); err != nil || out != "system:serviceaccount:"+ns+":controller" {
		t.Errorf("whoami = %q, %v", out, err)
	}
}
