package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/version"
)

const (
	defaultStateDir = "/tmp/kpc-testenv"
	serviceCIDR     = "10.96.0.0/16" // allocated only; never routed or dialed
	serviceIP       = "10.96.0.1"
	markerFile      = ".kpc-testenv"
)

// daemons in start order; down stops them in reverse order.
var daemonOrder = []string{"etcd", "kube-apiserver", "fleet", "kube-controller-manager"}

// envInfo is DIR/env.json: what up decided, for down, status and the helpers.
type envInfo struct {
	StateDir      string `json:"stateDir"`
	Binary        string `json:"binary"`
	Version       string `json:"version"`
	APIServerPort int    `json:"apiServerPort"`
	APIServerURL  string `json:"apiServerURL"`
	EtcdPort      int    `json:"etcdPort"`
	EtcdPeerPort  int    `json:"etcdPeerPort"`
	Nodes         int    `json:"nodes"`
	EgressSocket  string `json:"egressSocket"`
	FleetSocket   string `json:"fleetSocket"`
	Kubeconfig    string `json:"kubeconfig"`
	// The CA of the kubelets' serving certificates (not the cluster CA).
	KubeletCAFile string `json:"kubeletCAFile"`
	StartedAt     string `json:"startedAt"`
}

func stateDirFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("KPC_TESTENV_STATE")
	if def == "" {
		def = defaultStateDir
	}
	return fs.String("state", def, "state directory")
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "testenv: "+format+"\n", a...) }

func readEnvInfo(dir string) (*envInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "env.json"))
	if err != nil {
		return nil, err
	}
	var e envInfo
	return &e, json.Unmarshal(b, &e)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func pidFile(dir, name string) string { return filepath.Join(dir, "pids", name+".pid") }

// daemonPID returns the pid of a recorded daemon if that process is still alive and is ours.
func daemonPID(dir, name string) int {
	b, err := os.ReadFile(pidFile(dir, name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !processAlive(pid, name) {
		return 0
	}
	return pid
}

// processAlive reports whether pid runs and its command line names want (guards pid reuse).
func processAlive(pid int, want string) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		// field 3 is the state; a zombie is not running.
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
			return false
		}
	}
	return want == "" || strings.Contains(string(cmd), want)
}

// startDaemon starts `binary sub args...` in its own session with output to DIR/logs/NAME.log.
func startDaemon(dir, binary, name string, args []string) (int, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer lf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(binary, append([]string{name}, args...)...)
	cmd.Stdin = devnull
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Dir = dir
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	if err := os.WriteFile(pidFile(dir, name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return pid, err
	}
	return pid, nil
}

func writeKubeconfig(path, server, caFile, certFile, keyFile, token, user string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kpc-testenv"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	ai := &clientcmdapi.AuthInfo{Token: token}
	if certFile != "" {
		if ai.ClientCertificateData, err = os.ReadFile(certFile); err != nil {
			return err
		}
		if ai.ClientKeyData, err = os.ReadFile(keyFile); err != nil {
			return err
		}
	}
	cfg.AuthInfos[user] = ai
	cfg.Contexts["kpc-testenv"] = &clientcmdapi.Context{Cluster: "kpc-testenv", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "kpc-testenv"
	return clientcmd.WriteToFile(*cfg, path)
}

func tlsClient(dir string) (*http.Client, error) {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(ca)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", "admin.crt"), filepath.Join(dir, "pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
	}}, nil
}

func httpOK(c *http.Client, url string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == 200
}

// waitFor polls cond until it holds, the deadline passes or the named daemon dies.
func waitFor(dir, what string, daemon string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if daemon != "" && daemonPID(dir, daemon) == 0 {
			return fmt.Errorf("%s exited while waiting for %s; see %s", daemon, what, filepath.Join(dir, "logs", daemon+".log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// envRunning reports whether every daemon of dir is alive and the API server answers.
func envRunning(dir string) bool {
	for _, d := range daemonOrder {
		if daemonPID(dir, d) == 0 {
			return false
		}
	}
	info, err := readEnvInfo(dir)
	if err != nil {
		return false
	}
	c, err := tlsClient(dir)
	if err != nil {
		return false
	}
	return httpOK(c, info.APIServerURL+"/readyz")
}

func parseImageMap(entries []string) (map[string]string, error) {
	m := map[string]string{}
	for _, e := range entries {
		for _, kv := range strings.Split(e, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("bad image map entry %q (want IMAGE=PATH)", kv)
			}
			if abs, err := filepath.Abs(v); err == nil {
				v = abs
			}
			m[k] = v
		}
	}
	return m, nil
}

// mergeImageMap adds entries to DIR/image-map.json, which the fleet reads at every container start.
func mergeImageMap(dir string, add map[string]string) error {
	path := filepath.Join(dir, "image-map.json")
	m := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	for k, v := range add {
		m[k] = v
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	state := stateDirFlag(fs)
	nodesDir := fs.String("nodes-dir", "", "directory of node spec files NAME.yaml")
	nodes := fs.Int("nodes", 0, "generate N compliant nodes (default 3 when --nodes-dir is not given)")
	var images multiFlag
	fs.Var(&images, "image-map", "IMAGE=PATH (repeatable, comma-separated): run IMAGE's containers from PATH")
	timeout := fs.Duration("timeout", 15*time.Minute, "how long to wait for readiness")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		logf("up: unexpected arguments %v", fs.Args())
		return 2
	}
	if env := os.Getenv("KPC_TESTENV_IMAGE_MAP"); env != "" {
		images = append(multiFlag{env}, images...)
	}
	imageMap, err := parseImageMap(images)
	if err != nil {
		logf("up: %v", err)
		return 2
	}
	dir, err := filepath.Abs(*state)
	if err != nil {
		logf("up: %v", err)
		return 1
	}
	if *nodesDir != "" && *nodes > 0 {
		logf("up: --nodes-dir and --nodes are exclusive")
		return 2
	}
	if envRunning(dir) {
		if err := mergeImageMap(dir, imageMap); err != nil {
			logf("up: %v", err)
		}
		logf("already running (state %s); nothing to do", dir)
		fmt.Println(filepath.Join(dir, "kubeconfig"))
		return 0
	}
	if err := up(dir, *nodesDir, *nodes, imageMap, *timeout); err != nil {
		logf("up failed: %v", err)
		logf("logs: %s", filepath.Join(dir, "logs"))
		return 1
	}
	fmt.Println(filepath.Join(dir, "kubeconfig"))
	return 0
}

// prepareStateDir stops leftovers of an earlier run and empties dir.
func prepareStateDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		entries, _ := os.ReadDir(dir)
		if len(entries) > 0 {
			if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
				return fmt.Errorf("%s exists, is not empty and is not a testenv state directory; refusing to use it", dir)
			}
			stopAll(dir, 20*time.Second)
			// Container mounts live in private namespaces, so nothing is mounted here.
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
	}
	for _, d := range stateEntries {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("kubelet-policy-controller test environment\n"), 0o644)
}

func up(dir, nodesDir string, nodes int, imageMap map[string]string, timeout time.Duration) error {
	t0 := time.Now()
	if len(dir) > 80 {
		return fmt.Errorf("state dir %q is too long: Unix socket paths under it must stay below 108 bytes", dir)
	}
	if err := prepareStateDir(dir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return err
	}
	// The environment runs its own copy of the binary: the build cache may prune or
	// replace the cached one while this environment (and its pods) still use it.
	own := filepath.Join(dir, "bin", "testenv")
	if err := linkOrCopy(self, own); err != nil {
		return fmt.Errorf("install binary: %w", err)
	}
	self = own
	_ = os.Symlink("testenv", filepath.Join(dir, "bin", "kubectl"))

	// Node specs: copied, so the environment is self-contained, or generated.
	specDir := filepath.Join(dir, "node-specs")
	count := 0
	if nodesDir != "" {
		entries, err := os.ReadDir(nodesDir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(nodesDir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(specDir, e.Name()), b, 0o644); err != nil {
				return err
			}
			if err := copyBehaviorBody(dir, filepath.Join(nodesDir, e.Name()), specDir); err != nil {
				return err
			}
			count++
		}
		if count == 0 {
			return fmt.Errorf("no *.yaml node specs in %s", nodesDir)
		}
	} else {
		if nodes <= 0 {
			nodes = 3
		}
		if err := generateNodeSpecs(specDir, nodes); err != nil {
			return err
		}
		count = nodes
	}
	defaults := map[string]string{
		"testenv/shell":   "/bin/sh",
		"testenv/testenv": filepath.Join(dir, "bin", "testenv"),
	}
	for k, v := range imageMap {
		defaults[k] = v
	}
	if err := mergeImageMap(dir, defaults); err != nil {
		return err
	}

	pkiDir := filepath.Join(dir, "pki")
	if err := generateClusterPKI(pkiDir); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	info := &envInfo{
		StateDir: dir, Binary: self, Version: version.Get().GitVersion,
		EtcdPort: ports[0], EtcdPeerPort: ports[1], APIServerPort: ports[2],
		APIServerURL:  fmt.Sprintf("https://127.0.0.1:%d", ports[2]),
		Nodes:         count,
		EgressSocket:  filepath.Join(dir, "egress.sock"),
		FleetSocket:   filepath.Join(dir, "fleet.sock"),
		Kubeconfig:    filepath.Join(dir, "kubeconfig"),
		KubeletCAFile: filepath.Join(pkiDir, kubeletCAName+".crt"),
		StartedAt:     time.Now().UTC().Format(time.RFC3339),
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "env.json"), b, 0o644); err != nil {
		return err
	}
	ca := filepath.Join(pkiDir, "ca.crt")
	p := func(n string) string { return filepath.Join(pkiDir, n) }
	for _, kc := range []struct{ path, cert, user string }{
		{info.Kubeconfig, "admin", "kubernetes-admin"},
		{filepath.Join(dir, "kubeconfigs", "controller-manager.kubeconfig"), "controller-manager", "system:kube-controller-manager"},
		{filepath.Join(dir, "kubeconfigs", "fleet.kubeconfig"), "fleet", "kpc-testenv-fleet"},
	} {
		if err := writeKubeconfig(kc.path, info.APIServerURL, ca, p(kc.cert+".crt"), p(kc.cert+".key"), "", kc.user); err != nil {
			return err
		}
	}
	egress := fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %s
`, info.EgressSocket)
	egressFile := filepath.Join(dir, "egress-selector.yaml")
	if err := os.WriteFile(egressFile, []byte(egress), 0o644); err != nil {
		return err
	}
	tPrep := time.Since(t0)

	// etcd
	if _, err := startDaemon(dir, self, "etcd", []string{
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client", fmt.Sprintf("127.0.0.1:%d", info.EtcdPort),
		"--listen-peer", fmt.Sprintf("127.0.0.1:%d", info.EtcdPeerPort),
	}); err != nil {
		return err
	}
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(dir, "etcd", "etcd", 60*time.Second, func() bool {
		return httpOK(plain, fmt.Sprintf("http://127.0.0.1:%d/health", info.EtcdPort))
	}); err != nil {
		return err
	}
	tEtcd := time.Since(t0)

	// kube-apiserver
	if _, err := startDaemon(dir, self, "kube-apiserver", []string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", info.EtcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(info.APIServerPort),
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--tls-cert-file=" + p("apiserver.crt"),
		"--tls-private-key-file=" + p("apiserver.key"),
		"--client-ca-file=" + ca,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p("sa.pub"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + info.KubeletCAFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--egress-selector-config-file=" + egressFile,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}); err != nil {
		return err
	}
	client, err := tlsClient(dir)
	if err != nil {
		return err
	}
	if err := waitFor(dir, "kube-apiserver /readyz", "kube-apiserver", 3*time.Minute, func() bool {
		return httpOK(client, info.APIServerURL+"/readyz")
	}); err != nil {
		return err
	}
	tAPI := time.Since(t0)

	// fleet (the egress proxy and the simulated kubelets), then the controller manager.
	if _, err := startDaemon(dir, self, "fleet", []string{"--state", dir}); err != nil {
		return err
	}
	if _, err := startDaemon(dir, self, "kube-controller-manager", []string{
		"--kubeconfig=" + filepath.Join(dir, "kubeconfigs", "controller-manager.kubeconfig"),
		"--controllers=" + strings.Join(kcmControllers, ","),
		"--service-account-private-key-file=" + p("sa.key"),
		"--root-ca-file=" + ca,
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
		"--v=1",
	}); err != nil {
		return err
	}

	cs, err := clientsetFor(info.Kubeconfig)
	if err != nil {
		return err
	}
	ctx := context.Background()
	lastReport := time.Now()
	if err := waitFor(dir, fmt.Sprintf("%d nodes Ready", count), "fleet", timeout, func() bool {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false
		}
		ready := 0
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				ready++
			}
		}
		if time.Since(lastReport) > 10*time.Second {
			logf("%d/%d nodes Ready", ready, count)
			lastReport = time.Now()
		}
		return ready >= count
	}); err != nil {
		return err
	}
	tNodes := time.Since(t0)
	if err := waitFor(dir, "ServiceAccount default/default", "kube-controller-manager", 3*time.Minute, func() bool {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return err
	}
	tAll := time.Since(t0)
	logf("timings: prepare %.1fs, etcd ready %.1fs, kube-apiserver ready %.1fs, %d nodes Ready %.1fs, default ServiceAccount %.1fs (warm start total %.1fs)",
		tPrep.Seconds(), tEtcd.Seconds(), tAPI.Seconds(), count, tNodes.Seconds(), tAll.Seconds(), tAll.Seconds())
	logf("%s up: API server %s, state %s", info.Version, info.APIServerURL, dir)
	return nil
}

var kcmControllers = []string{
	"job-controller", "garbage-collector-controller", "namespace-controller",
	"serviceaccount-token-controller", "serviceaccount-controller",
	"root-ca-certificate-publisher-controller", "ttl-after-finished-controller",
	"deployment-controller", "replicaset-controller", "cronjob-controller",
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func clientsetFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// stopAll stops every recorded daemon (reverse start order) and every container process.
func stopAll(dir string, grace time.Duration) {
	for i := len(daemonOrder) - 1; i >= 0; i-- {
		name := daemonOrder[i]
		pid := daemonPID(dir, name)
		if pid == 0 {
			continue
		}
		// Each daemon leads its own session and process group.
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for processAlive(pid, name) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if processAlive(pid, name) {
			logf("%s (pid %d) did not stop in %v; killing it", name, pid, grace)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for j := 0; j < 50 && processAlive(pid, name); j++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	killRecordedContainers(dir)
}

// killRecordedContainers kills container processes the fleet recorded but did not reap.
func killRecordedContainers(dir string) {
	entries, _ := os.ReadDir(filepath.Join(dir, "run", "containers"))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if processAlive(pid, "") {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.Remove(filepath.Join(dir, "run", "containers", e.Name()))
	}
}

func runDown(args []string) int {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	state := stateDirFlag(fs)
	_ = fs.Parse(args)
	dir, err := filepath.Abs(*state)
	if err != nil {
		logf("down: %v", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		logf("no environment in %s", dir)
		return 0
	}
	stopAll(dir, 20*time.Second)
	left := []string{}
	for _, d := range daemonOrder {
		if daemonPID(dir, d) != 0 {
			left = append(left, d)
		}
	}
	if len(left) > 0 {
		logf("still running: %v", left)
		return 1
	}
	logf("stopped (state kept in %s)", dir)
	return 0
}

func runStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	state := stateDirFlag(fs)
	_ = fs.Parse(args)
	dir, _ := filepath.Abs(*state)
	info, err := readEnvInfo(dir)
	if err != nil {
		fmt.Printf("no environment in %s\n", dir)
		return 1
	}
	names := append([]string(nil), daemonOrder...)
	sort.Strings(names)
	running := true
	for _, d := range names {
		pid := daemonPID(dir, d)
		st := "stopped"
		if pid != 0 {
			st = "running pid " + strconv.Itoa(pid)
		} else {
			running = false
		}
		fmt.Printf("%-25s %s\n", d, st)
	}
	fmt.Printf("api server: %s\nkubeconfig: %s\nnodes: %d\n", info.APIServerURL, info.Kubeconfig, info.Nodes)
	if !running {
		return 1
	}
	return 0
}

var errNotFound = errors.New("not found")

// stateEntries are the state directory's own entries (prepareStateDir).
var stateEntries = []string{"", "pki", "logs", "pids", "kubeconfigs", "node-specs", "nodes", "pods", "bin"}

// copyBehaviorBody copies the file that a node spec's relative behaviorBody names to the same
// place relative to the copied spec (in specDir), so that the environment stays
// self-contained. The copy must land inside the state directory, outside its own entries
// (node-specs aside). The spec is validated on the way.
func copyBehaviorBody(stateDir, srcSpec, specDir string) error {
	s, err := loadNodeSpec(srcSpec)
	if err != nil {
		return err
	}
	if s.BehaviorBody == "" || filepath.IsAbs(s.BehaviorBody) {
		return nil
	}
	dst := s.bodyPath(specDir)
	rel, err := filepath.Rel(stateDir, dst)
	top, _, _ := strings.Cut(rel, string(filepath.Separator))
	if err != nil || top == ".." || rel == top || (top != "node-specs" && slices.Contains(stateEntries, top)) {
		return fmt.Errorf("%s: behaviorBody %s would be copied to %s: it must land in a directory of its own inside the state directory (or in node-specs/)",
			srcSpec, s.BehaviorBody, dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	srcDir, err := filepath.Abs(filepath.Dir(srcSpec))
	if err != nil {
		return err
	}
	return copyFile(s.bodyPath(srcDir), dst, 0o644)
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst, 0o755)
}

// copyFile copies src to dst, created (or truncated) with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
