// Package tests exercises e2e/testenv the way its users do: through the up, down and
// kubectl scripts, against one shared environment started by TestMain.
//
//	go test ./...                       # starts an environment in a temp dir, stops it at the end
//	KPC_TESTENV_STATE=/tmp/x go test ./...   # use (or start) the environment in /tmp/x
//	KPC_TESTENV_KEEP=1                  # leave the environment running afterwards
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	scriptDir  string // e2e/testenv
	stateDir   string
	nodesDir   string
	kubeconfig string
)

// Node specs of the shared environment. Each test that changes a node uses its own.
var nodeSpecs = map[string]string{
	// file + a flag that overrides it + a drop-in flags file
	"alpha": `labels: {node-role.kubernetes.io/worker: "", pool: alpha}
configFile:
  path: /etc/kubernetes/kubelet/kubelet-config.json
  content: {streamingConnectionIdleTimeout: 0s, eventRecordQPS: 5, makeIPTablesUtilChains: true,
            authentication: {anonymous: {enabled: false}}, authorization: {mode: Webhook}}
flags: ["--make-iptables-util-chains=false"]
flagsFile: /etc/systemd/system/kubelet.service.d/10-kubelet-args.conf
files:
  - {path: /etc/kubernetes/kubelet.conf, mode: "0644", owner: root, group: root}
`,
	// YAML file, env-file flags
	"beta": `labels: {pool: beta}
configFile:
  path: /var/lib/kubelet/config.yaml
  content: {readOnlyPort: 10255, rotateCertificates: true}
  mode: "0640"
  owner: nobody
flagsFile: /etc/default/kubelet
flags: ["--event-qps=0"]
`,
	// flags only: legacy flag defaults
	"gamma": `labels: {pool: gamma}
flags: ["--kubeconfig=/etc/kubernetes/kubelet.conf"]
`,
	// remediated by a Job in TestJobEditsConfigAndRestartsKubelet
	"delta": `labels: {pool: delta}
configFile:
  path: /var/lib/kubelet/config.yaml
  content: {eventRecordQPS: 0}
flagsFile: /etc/systemd/system/kubelet.service.d/10-kubelet-args.conf
`,
	// the direct endpoint (direct_test.go): webhook authn and authz like a hardened
	// kubelet, with short authorization caches so RBAC changes show quickly
	"direct": `labels: {pool: direct}
configFile:
  path: /var/lib/kubelet/config.yaml
  content:
    authentication:
      anonymous: {enabled: false}
      webhook: {enabled: true, cacheTTL: 10s}
      x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
    authorization: {mode: Webhook, webhook: {cacheAuthorizedTTL: 1s, cacheUnauthorizedTTL: 1s}}
`,
	"garbage-node": "labels: {pool: behaviors}\nbehavior: garbage\nconfigFile: {path: /var/lib/kubelet/config.yaml}\n",
	"refused-node": "labels: {pool: behaviors}\nbehavior: refused\nconfigFile: {path: /var/lib/kubelet/config.yaml}\n",
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	scriptDir = filepath.Dir(filepath.Dir(file))
	owned := false
	stateDir = os.Getenv("KPC_TESTENV_STATE")
	if stateDir == "" {
		// Short: Unix socket paths under the state dir must stay below 108 bytes.
		d, err := os.MkdirTemp("/tmp", "kpc-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		stateDir = filepath.Join(d, "state")
		owned = true
	}
	var err error
	nodesDir, err = os.MkdirTemp("", "kpc-e2e-nodes-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(nodesDir)
	for name, spec := range nodeSpecs {
		if err := os.WriteFile(filepath.Join(nodesDir, name+".yaml"), []byte(spec), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	out, err := upScript()
	if err != nil {
		fmt.Fprintf(os.Stderr, "up failed: %v\n", err)
		return 1
	}
	kubeconfig = lastLine(out)
	code := m.Run()
	if owned && os.Getenv("KPC_TESTENV_KEEP") == "" {
		cmd := exec.Command(filepath.Join(scriptDir, "down"), "--state", stateDir)
		cmd.Stderr = os.Stderr
		_ = cmd.Run()
	}
	return code
}

func upScript() (string, error) {
	cmd := exec.Command(filepath.Join(scriptDir, "up"), "--state", stateDir, "--nodes-dir", nodesDir)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	return stdout.String(), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// kubectl runs the bundled kubectl (e2e/testenv/kubectl) against the shared environment.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(scriptDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "KPC_TESTENV_STATE="+stateDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply creates objects from YAML through kubectl.
func apply(t *testing.T, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-f", f)
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("t-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%100000)
	if len(ns) > 60 {
		ns = ns[len(ns)-60:]
		ns = "t" + strings.TrimLeft(ns, "-")
	}
	mustKubectl(t, "create", "namespace", ns)
	// The admission plugin needs the namespace's default ServiceAccount.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := kubectl(t, "-n", ns, "get", "serviceaccount", "default"); err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	return ns
}

// configz fetches a node's /configz through the API server's node proxy.
func configz(t *testing.T, node string) map[string]any {
	t.Helper()
	out := mustKubectl(t, "get", "--raw", "/api/v1/nodes/"+node+"/proxy/configz")
	var v struct {
		KubeletConfig map[string]any `json:"kubeletconfig"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("configz of %s is not JSON: %v: %s", node, err, out)
	}
	if v.KubeletConfig == nil {
		t.Fatalf("configz of %s has no kubeletconfig: %s", node, out)
	}
	return v.KubeletConfig
}

// field reads a dotted path from a decoded JSON object.
func field(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func readPIDs(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(stateDir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(stateDir, "pids", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		pids[strings.TrimSuffix(e.Name(), ".pid")] = strings.TrimSpace(string(b))
	}
	return pids
}
