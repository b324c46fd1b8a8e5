package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubeletEndpoint reads a Node's direct endpoint: its Hostname address and kubelet port.
func kubeletEndpoint(t *testing.T, node string) (internalIP, host string, port int) {
	t.Helper()
	var n struct {
		Status struct {
			Addresses       []struct{ Type, Address string } `json:"addresses"`
			DaemonEndpoints struct {
				KubeletEndpoint struct{ Port int } `json:"kubeletEndpoint"`
			} `json:"daemonEndpoints"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(mustKubectl(t, "get", "node", node, "-o", "json")), &n); err != nil {
		t.Fatal(err)
	}
	if len(n.Status.Addresses) == 0 || n.Status.Addresses[0].Type != "InternalIP" {
		t.Fatalf("node %s: first address is not the InternalIP: %v", node, n.Status.Addresses)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == "Hostname" {
			host = a.Address
		}
	}
	return n.Status.Addresses[0].Address, host, n.Status.DaemonEndpoints.KubeletEndpoint.Port
}

func kubeletCAFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		KubeletCAFile string `json:"kubeletCAFile"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.KubeletCAFile == "" {
		t.Fatalf("env.json has no kubeletCAFile: %v %s", err, b)
	}
	return env.KubeletCAFile
}

type directRequest struct {
	url    string
	caFile string
	token  string
	admin  bool // present the admin client certificate (cluster CA)
}

// get fetches a kubelet URL directly (no API server), verifying the server against caFile.
func (d directRequest) get() (int, string, error) {
	pem, err := os.ReadFile(d.caFile)
	if err != nil {
		return 0, "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool}
	if d.admin {
		pair, err := tls.LoadX509KeyPair(filepath.Join(stateDir, "pki", "admin.crt"), filepath.Join(stateDir, "pki", "admin.key"))
		if err != nil {
			return 0, "", err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", d.url, nil)
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// eventually retries get until its status is want (authorization caches expire).
func (d directRequest) eventually(t *testing.T, want int, bodyPart string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := d.get()
		if err == nil && code == want && strings.Contains(body, bodyPart) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %q %v; want %d containing %q", d.url, code, body, err, want, bodyPart)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// fleetNode is a node's row in the fleet's GET /nodes.
func fleetNode(t *testing.T, name string) (row struct {
	Name, Address    string
	Port             int
	FineGrainedAuthz bool
}) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(stateDir, "fleet.sock"))
	}}}
	resp, err := c.Get("http://fleet/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []struct {
		Name, Address    string
		Port             int
		FineGrainedAuthz bool
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("GET /nodes does not list %s", name)
	return
}

func grant(t *testing.T, ns, sa, subresource string) {
	t.Helper()
	role := ns + "-" + subresource
	mustKubectl(t, "create", "clusterrole", role, "--verb=get", "--resource=nodes/"+subresource)
	mustKubectl(t, "create", "clusterrolebinding", role, "--clusterrole="+role, "--serviceaccount="+ns+":"+sa)
	t.Cleanup(func() {
		_, _ = kubectl(t, "delete", "clusterrolebinding", role)
		_, _ = kubectl(t, "delete", "clusterrole", role)
	})
}

func TestDirectKubeletEndpoint(t *testing.T) {
	ns := namespace(t)
	mustKubectl(t, "-n", ns, "create", "serviceaccount", "reader")
	token := strings.TrimSpace(mustKubectl(t, "-n", ns, "create", "token", "reader"))
	ca := kubeletCAFile(t)
	ip, host, port := kubeletEndpoint(t, "direct")
	url := fmt.Sprintf("https://%s/configz", net.JoinHostPort(host, fmt.Sprint(port)))
	user := "system:serviceaccount:" + ns + ":reader"
	req := directRequest{url: url, caFile: ca, token: token}

	t.Run("NodeStatusPublishesTheEndpoint", func(t *testing.T) {
		want := "127." + strings.TrimPrefix(ip, "198.")
		if !strings.HasPrefix(ip, "198.18.") || host != want {
			t.Errorf("InternalIP %s, Hostname %s; want Hostname %s", ip, host, want)
		}
		if port <= 0 || port == 10250 {
			t.Errorf("kubelet port %d, want an ephemeral port", port)
		}
	})
	t.Run("ClusterCADoesNotVerifyTheKubelet", func(t *testing.T) {
		wrong := req
		wrong.caFile = filepath.Join(stateDir, "pki", "ca.crt")
		_, _, err := wrong.get()
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("verifying with the cluster CA: %v, want an unknown-authority error", err)
		}
	})
	t.Run("NoTokenIsUnauthorized", func(t *testing.T) {
		anon := req
		anon.token = ""
		if code, body, err := anon.get(); err != nil || code != 401 || body != "Unauthorized" {
			t.Errorf("no token: %d %q %v, want 401 Unauthorized", code, body, err)
		}
	})
	t.Run("WithoutRBACForbiddenNamingConfigz", func(t *testing.T) {
		want := fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=[configz proxy])\n", user)
		if code, body, err := req.get(); err != nil || code != 403 || body != want {
			t.Errorf("no RBAC: %d %q %v, want 403 %q", code, body, err, want)
		}
	})
	t.Run("GetNodesConfigzAllows", func(t *testing.T) {
		grant(t, ns, "reader", "configz")
		body := req.eventually(t, 200, "kubeletconfig")
		viaAPI := mustKubectl(t, "get", "--raw", "/api/v1/nodes/direct/proxy/configz")
		if strings.TrimSpace(body) != strings.TrimSpace(viaAPI) {
			t.Errorf("direct configz differs from the API server path:\n%s\n%s", body, viaAPI)
		}
		t.Run("CoarseAuthzNeedsProxy", func(t *testing.T) {
			fleetCtl(t, "/authz?node=direct&fineGrained=false")
			t.Cleanup(func() { fleetCtl(t, "/authz?node=direct&fineGrained=true") })
			if row := fleetNode(t, "direct"); row.FineGrainedAuthz || row.Port != port || row.Address != host {
				t.Errorf("GET /nodes: %+v", row)
			}
			req.eventually(t, 403, "subresource(s)=[proxy])")
			grant(t, ns, "reader", "proxy")
			req.eventually(t, 200, "kubeletconfig")
		})
		// Back to fine-grained: configz alone is enough again.
		req.eventually(t, 200, "kubeletconfig")
	})
	t.Run("ClientCertificateOfTheClusterCA", func(t *testing.T) {
		admin := directRequest{url: url, caFile: ca, admin: true}
		if code, body, err := admin.get(); err != nil || code != 200 {
			t.Errorf("admin client certificate: %d %q %v", code, body, err)
		}
	})
	t.Run("FlagsOnlyKubeletAllowsAnonymous", func(t *testing.T) {
		_, h, p := kubeletEndpoint(t, "gamma")
		anon := directRequest{url: fmt.Sprintf("https://%s/configz", net.JoinHostPort(h, fmt.Sprint(p))), caFile: ca}
		if code, body, err := anon.get(); err != nil || code != 200 || !strings.Contains(body, `"AlwaysAllow"`) {
			t.Errorf("gamma anonymous: %d %q %v", code, body, err)
		}
	})
}

func TestDirectEndpointRestartAndBehaviors(t *testing.T) {
	_, host, port := kubeletEndpoint(t, "direct")
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	healthz := directRequest{url: "https://" + addr + "/healthz", caFile: kubeletCAFile(t), admin: true}
	healthz.eventually(t, 200, "ok")

	if out, err := execScript("restart-kubelet", "--state", stateDir, "--node", "direct").CombinedOutput(); err != nil {
		t.Fatalf("restart-kubelet: %v %s", err, out)
	}
	if _, _, p := kubeletEndpoint(t, "direct"); p != port {
		t.Errorf("port after restart %d, want %d", p, port)
	}
	healthz.eventually(t, 200, "ok")

	fleetCtl(t, "/behavior?node=direct&value=refused")
	t.Cleanup(func() { fleetCtl(t, "/behavior?node=direct&value=normal") })
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("refused node: dial %s: %v, want connection refused", addr, err)
	}
	fleetCtl(t, "/behavior?node=direct&value=unreachable")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("unreachable node: TCP connection not accepted: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("unreachable node: TLS handshake %v, want a timeout", err)
	}
	c.Close()
	fleetCtl(t, "/behavior?node=direct&value=normal")
	healthz.eventually(t, 200, "ok")
	if _, _, p := kubeletEndpoint(t, "direct"); p != port {
		t.Errorf("port after refused %d, want %d", p, port)
	}
}
