package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/version"
	"k8s.io/kubernetes/pkg/features"
	kubeletserver "k8s.io/kubernetes/pkg/kubelet/server"
	"k8s.io/utils/ptr"
)

// simNode is one simulated kubelet.
type simNode struct {
	name     string
	ip       net.IP // InternalIP, 198.18.0.0/15
	loopback net.IP // the direct listener's address: 127.18.0.0/15
	port     int    // the kubelet port (direct listener), fixed for the fleet's life
	spec     *nodeSpec
	dir      string // DIR/nodes/<name>
	root     string // DIR/nodes/<name>/root: the node's filesystem

	mu         sync.Mutex
	up         bool   // the kubelet process "runs" and serves
	lastErr    string // why the kubelet is not up
	configz    []byte
	behavior   string
	params     behaviorParams
	changed    chan struct{} // closed when behavior or params change (see behaviorChanged)
	restarting bool
	restartMu  sync.Mutex // one restart at a time

	// The direct listener's auth (under mu), set at each start from the effective config.
	auth              kubeletserver.AuthInterface // nil after a failed start
	fineGrained       bool                        // the switch (node spec, control socket)...
	gateFineGrained   bool                        // ...and the KubeletFineGrainedAuthz gate: both must hold
	requestClientCert bool                        // x509.clientCAFile is set

	lmu      sync.Mutex   // guards listener
	listener net.Listener // nil while the kubelet does not listen
	reserved int          // fd that keeps port bound (never listening)

	activePods atomic.Int32
	conns      map[*nodeConn]struct{} // open kubelet connections (under mu)
}

type fleet struct {
	dir      string
	info     *envInfo
	cs       *kubernetes.Clientset
	ca       *pki // the cluster CA
	nodes    map[string]*simNode
	byIP     map[[4]byte]*simNode
	certs    *certCache
	auth     *authCache
	direct   *chanListener // connections accepted by the nodes' direct listeners
	egress   *os.File      // egress log
	egressMu sync.Mutex
	pods     *podManager
	ctx      context.Context
}

var fleetBaseIP = [4]byte{198, 18, 0, 0}

func nodeIP(i int) net.IP {
	base := binary.BigEndian.Uint32(fleetBaseIP[:])
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, base+uint32(i)+1)
	return ip
}

func inFleetRange(ip net.IP) bool {
	v4 := ip.To4()
	return v4 != nil && v4[0] == 198 && (v4[1] == 18 || v4[1] == 19)
}

func runFleet(args []string) int {
	fs := flag.NewFlagSet("fleet", flag.ExitOnError)
	state := stateDirFlag(fs)
	_ = fs.Parse(args)
	dir, _ := filepath.Abs(*state)
	// The kubelet's request attributes name fine-grained subresources (configz, healthz,
	// pods) only with this gate (beta, on by default in 1.34); nodes may turn it off.
	if err := utilfeature.DefaultMutableFeatureGate.Set(string(features.KubeletFineGrainedAuthz) + "=true"); err != nil {
		logf("fleet: %v", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := newFleet(ctx, dir)
	if err != nil {
		logf("fleet: %v", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() { errc <- f.run() }()
	select {
	case s := <-sig:
		logf("fleet: %v: stopping containers", s)
	case err := <-errc:
		logf("fleet: %v", err)
	}
	cancel()
	f.pods.killAll()
	return 0
}

func newFleet(ctx context.Context, dir string) (*fleet, error) {
	info, err := readEnvInfo(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfigs", "fleet.kubeconfig"))
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 300, 600
	cfg.UserAgent = "kpc-testenv-fleet"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ca, err := loadPKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, err
	}
	kubeletCA, err := loadCA(filepath.Join(dir, "pki"), kubeletCAName)
	if err != nil {
		return nil, err
	}
	certs, err := newCertCache(kubeletCA)
	if err != nil {
		return nil, err
	}
	egress, err := os.OpenFile(filepath.Join(dir, "logs", "egress.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	f := &fleet{dir: dir, info: info, cs: cs, ca: ca, certs: certs, egress: egress,
		nodes: map[string]*simNode{}, byIP: map[[4]byte]*simNode{}, ctx: ctx,
		auth: &authCache{client: cs, clientCA: filepath.Join(dir, "pki", "ca.crt"), stop: ctx.Done(),
			m: map[string]*sharedAuth{}},
		direct: &chanListener{ch: make(chan net.Conn), closed: make(chan struct{})}}
	f.pods = newPodManager(f)
	if err := os.MkdirAll(filepath.Join(dir, "run", "containers"), 0o755); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fleet) egressLog(format string, a ...any) {
	f.egressMu.Lock()
	defer f.egressMu.Unlock()
	fmt.Fprintf(f.egress, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, a...))
}

func (f *fleet) run() error {
	t0 := time.Now()
	specDir := filepath.Join(f.dir, "node-specs")
	entries, err := os.ReadDir(specDir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
			names = append(names, n)
		}
	}
	if len(names) > 131000 {
		return fmt.Errorf("too many nodes for 198.18.0.0/15")
	}
	// Per node: the direct listener, its port reservation, connections.
	raiseNoFileLimit(uint64(2*len(names) + 8192))
	nodes := make([]*simNode, len(names))
	for i, file := range names {
		name := strings.TrimSuffix(strings.TrimSuffix(file, ".yaml"), ".yml")
		spec, err := loadNodeSpec(filepath.Join(specDir, file))
		if err != nil {
			return err
		}
		params, err := spec.params(specDir)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		n := &simNode{name: name, ip: nodeIP(i), spec: spec, behavior: spec.Behavior, params: params,
			dir: filepath.Join(f.dir, "nodes", name), fineGrained: spec.FineGrainedAuthz == nil || *spec.FineGrainedAuthz}
		n.root = filepath.Join(n.dir, "root")
		n.loopback = loopbackFor(n.ip)
		if n.reserved, n.port, err = reservePort(n.loopback, 0); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		nodes[i] = n
		f.nodes[name] = n
		f.byIP[[4]byte(n.ip.To4())] = n
	}
	f.serveDirect()
	// Lay out every node's files and start its kubelet (compute configz, listen).
	parallel(len(nodes), 8, func(i int) {
		n := nodes[i]
		if err := populateRoot(n.root, n.spec); err != nil {
			n.lastErr = "populating node files: " + err.Error()
			logf("fleet: node %s: %s", n.name, n.lastErr)
			return
		}
		f.start(n)
	})
	logf("fleet: %d node roots and configs ready in %.1fs", len(nodes), time.Since(t0).Seconds())

	// The egress proxy must be up before the API server tries to reach a kubelet.
	if err := f.serveEgress(); err != nil {
		return err
	}
	if err := f.serveControl(); err != nil {
		return err
	}
	t1 := time.Now()
	var failed atomic.Int32
	parallel(len(nodes), 16, func(i int) {
		if err := f.register(nodes[i]); err != nil {
			failed.Add(1)
			logf("fleet: register %s: %v", nodes[i].name, err)
		}
	})
	logf("fleet: registered %d nodes (%d failed) in %.1fs", len(nodes), failed.Load(), time.Since(t1).Seconds())
	go f.heartbeats(nodes)
	go f.watchTriggers(nodes)
	return f.pods.run(f.ctx)
}

func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	ch := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// start "starts" the kubelet: reads its command line and config from the node's files,
// builds its authenticator and authorizer and opens its direct listener.
func (f *fleet) start(n *simNode) {
	defer f.syncListener(n)
	args, err := kubeletArgs(n.root, n.spec)
	var ec *effectiveConfig
	if err == nil {
		ec, err = computeKubeletConfig(n.root, args)
	}
	var auth kubeletserver.AuthInterface
	if err == nil {
		// A kubelet whose auth cannot be built exits at start-up.
		auth, err = f.auth.forNode(n.name, ec.Authentication, ec.Authorization)
	}
	_ = os.WriteFile(filepath.Join(n.dir, "cmdline"), []byte("kubelet "+strings.Join(args, " ")+"\n"), 0o644)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.up = false
		n.lastErr = err.Error()
		n.configz = nil
		n.auth = nil
		logf("fleet: node %s: kubelet failed to start: %v", n.name, err)
		return
	}
	n.up = true
	n.lastErr = ""
	n.configz = ec.Configz
	n.auth = auth
	n.gateFineGrained = ec.FineGrainedAuthz
	n.requestClientCert = ec.Authentication.X509.ClientCAFile != ""
}

// setBehavior switches the node's behaviour and wakes the requests the old one holds.
func (n *simNode) setBehavior(behavior string, p behaviorParams) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.behavior, n.params = behavior, p
	if n.changed != nil {
		close(n.changed)
		n.changed = nil
	}
}

// behaviorChanged returns a channel closed at the next setBehavior; n.mu must be held.
func (n *simNode) behaviorChanged() <-chan struct{} {
	if n.changed == nil {
		n.changed = make(chan struct{})
	}
	return n.changed
}

func (n *simNode) state() (up bool, behavior string, lastErr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up, n.behavior, n.lastErr
}

func (f *fleet) nodeObject(n *simNode) *corev1.Node {
	labels := map[string]string{
		"kubernetes.io/hostname": n.name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"kpc-testenv/simulated":  "true",
	}
	for k, v := range n.spec.Labels {
		labels[k] = v
	}
	annotations := map[string]string{"kpc-testenv/root": n.root}
	for k, v := range n.spec.Annotations {
		annotations[k] = v
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("4"),
		corev1.ResourceMemory:           resource.MustParse("16Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels, Annotations: annotations},
		Spec:       corev1.NodeSpec{Taints: n.spec.Taints},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res,
			Phase:       corev1.NodeRunning,
			Conditions:  f.conditions(n, time.Now()),
			// The API server dials InternalIP:port (through the egress proxy); clients
			// on this machine dial Hostname:port, the node's direct listener.
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.ip.String()},
				{Type: corev1.NodeHostName, Address: n.loopback.String()},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(n.port)}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID:               n.name,
				SystemUUID:              n.name,
				BootID:                  n.name,
				KernelVersion:           "6.1.0-kpc-testenv",
				OSImage:                 "kpc-testenv simulated node",
				ContainerRuntimeVersion: "testenv://" + version.Get().GitVersion,
				KubeletVersion:          version.Get().GitVersion,
				KubeProxyVersion:        "",
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
		},
	}
}

func (f *fleet) conditions(n *simNode, now time.Time) []corev1.NodeCondition {
	up, behavior, lastErr := n.state()
	n.mu.Lock()
	restarting := n.restarting
	n.mu.Unlock()
	t := metav1.NewTime(now)
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "kubelet is posting ready status", LastHeartbeatTime: t, LastTransitionTime: t}
	switch {
	case restarting:
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "KubeletNotReady", "kubelet is restarting"
	case !up:
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "KubeletNotReady", "kubelet is not running: "+lastErr
	case behavior == "notready":
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "KubeletNotReady", "simulated NotReady (behavior notready)"
	}
	ok := func(typ corev1.NodeConditionType, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: typ, Status: corev1.ConditionFalse, Reason: reason, LastHeartbeatTime: t, LastTransitionTime: t}
	}
	return []corev1.NodeCondition{
		ok(corev1.NodeMemoryPressure, "KubeletHasSufficientMemory"),
		ok(corev1.NodeDiskPressure, "KubeletHasNoDiskPressure"),
		ok(corev1.NodePIDPressure, "KubeletHasSufficientPID"),
		ready,
	}
}

func (f *fleet) register(n *simNode) error {
	ctx := f.ctx
	obj := f.nodeObject(n)
	for attempt := 0; ; attempt++ {
		_, err := f.cs.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if apierrors.IsAlreadyExists(err) {
			if err := f.patchReady(n); err != nil {
				return err
			}
			break
		}
		if attempt >= 20 {
			return err
		}
		time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(n.name),
			LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime:            &metav1.MicroTime{Time: time.Now()},
		},
	}
	if _, err := f.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		logf("fleet: lease %s: %v", n.name, err)
	}
	return nil
}

// patchReady writes the node's current conditions (the kubelet's status update).
func (f *fleet) patchReady(n *simNode) error {
	patch := map[string]any{"status": map[string]any{"conditions": f.conditions(n, time.Now())}}
	b, _ := json.Marshal(patch)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		_, err = f.cs.CoreV1().Nodes().Patch(f.ctx, n.name, types.StrategicMergePatchType, b, metav1.PatchOptions{}, "status")
		if err == nil || apierrors.IsNotFound(err) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// heartbeats renews node leases and refreshes the Ready condition, spread over a period
// that grows with the fleet so the API server sees a bounded write rate.
func (f *fleet) heartbeats(nodes []*simNode) {
	leasePeriod := 10 * time.Second
	if p := time.Duration(len(nodes)/50) * time.Second; p > leasePeriod {
		leasePeriod = p // 50 renewals/s at most
	}
	statusEvery := 5 * time.Minute
	lastStatus := time.Now()
	for {
		start := time.Now()
		doStatus := time.Since(lastStatus) >= statusEvery
		if doStatus {
			lastStatus = time.Now()
		}
		step := leasePeriod / time.Duration(len(nodes)+1)
		for _, n := range nodes {
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(step):
			}
			if up, _, _ := n.state(); !up {
				continue // a stopped kubelet sends no heartbeat
			}
			patch := fmt.Sprintf(`{"spec":{"renewTime":%q}}`, metav1.NowMicro().Format(metav1.RFC3339Micro))
			if _, err := f.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Patch(f.ctx, n.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && f.ctx.Err() == nil {
				logf("fleet: renew lease %s: %v", n.name, err)
			}
			if doStatus {
				_ = f.patchReady(n)
			}
		}
		if d := leasePeriod - time.Since(start); d > 0 {
			time.Sleep(d + time.Duration(rand.Int63n(int64(time.Second))))
		}
	}
}

// restart simulates `systemctl restart kubelet`: NotReady, re-read files, Ready.
func (f *fleet) restart(n *simNode) error {
	n.restartMu.Lock()
	defer n.restartMu.Unlock()
	logf("fleet: node %s: kubelet restarting", n.name)
	n.mu.Lock()
	n.restarting = true
	n.up = false
	n.lastErr = "kubelet is restarting"
	n.mu.Unlock()
	f.syncListener(n)
	n.dropConnections()
	_ = f.patchReady(n)
	time.Sleep(1500 * time.Millisecond)
	f.start(n)
	n.mu.Lock()
	n.restarting = false
	up, lastErr := n.up, n.lastErr
	n.mu.Unlock()
	// A starting kubelet registers its Node (again, if it was deleted) and posts status.
	if err := f.register(n); err != nil {
		logf("fleet: node %s: register: %v", n.name, err)
	}
	if !up {
		logf("fleet: node %s: kubelet down after restart: %s (retrying every 10s, like systemd)", n.name, lastErr)
		go f.retryStart(n)
		return fmt.Errorf("kubelet failed to start: %s", lastErr)
	}
	logf("fleet: node %s: kubelet restarted", n.name)
	return nil
}

// retryStart is systemd's Restart=always for a kubelet that failed to start.
func (f *fleet) retryStart(n *simNode) {
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
		n.restartMu.Lock()
		if up, _, _ := n.state(); up {
			n.restartMu.Unlock()
			return
		}
		f.start(n)
		up, _, _ := n.state()
		n.restartMu.Unlock()
		if up {
			_ = f.patchReady(n)
			logf("fleet: node %s: kubelet started after retry", n.name)
			return
		}
	}
}

const triggerName = "restart-kubelet"

func triggerPath(root string) string { return filepath.Join(root, "run", "testenv", triggerName) }

// watchTriggers polls the restart trigger file of every node: every 200ms on nodes
// running pods, every 2s on the others.
func (f *fleet) watchTriggers(nodes []*simNode) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var round int
	var busy sync.Map
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-tick.C:
		}
		round++
		for _, n := range nodes {
			if n.activePods.Load() == 0 && round%10 != 0 {
				continue
			}
			if _, err := os.Stat(triggerPath(n.root)); err != nil {
				continue
			}
			if _, loaded := busy.LoadOrStore(n.name, true); loaded {
				continue
			}
			go func(n *simNode) {
				defer busy.Delete(n.name)
				err := f.restart(n)
				msg := "ok\n"
				if err != nil {
					msg = "error: " + err.Error() + "\n"
				}
				_ = os.WriteFile(triggerPath(n.root)+".result", []byte(msg), 0o644)
				_ = os.Remove(triggerPath(n.root))
			}(n)
		}
	}
}

// serveControl serves DIR/fleet.sock: restart and behaviour changes for tests.
func (f *fleet) serveControl() error {
	sock := f.info.FleetSocket
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	_ = os.Chmod(sock, 0o600)
	mux := http.NewServeMux()
	node := func(w http.ResponseWriter, r *http.Request) *simNode {
		n := f.nodes[r.URL.Query().Get("node")]
		if n == nil {
			http.Error(w, "no such node", http.StatusNotFound)
		}
		return n
	}
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		if n := node(w, r); n != nil {
			if err := f.restart(n); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	})
	mux.HandleFunc("POST /behavior", func(w http.ResponseWriter, r *http.Request) {
		n := node(w, r)
		if n == nil {
			return
		}
		q := r.URL.Query()
		b := q.Get("value")
		n.mu.Lock()
		p := n.params
		n.mu.Unlock()
		p, err := p.withQuery(q)
		if err == nil {
			err = checkBehavior(b, p)
		}
		if err != nil {
			http.Error(w, "behavior: "+err.Error(), http.StatusBadRequest)
			return
		}
		n.setBehavior(b, p)
		f.syncListener(n)
		n.dropConnections()
		_ = f.patchReady(n)
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /authz", func(w http.ResponseWriter, r *http.Request) {
		n := node(w, r)
		if n == nil {
			return
		}
		on, err := strconv.ParseBool(r.URL.Query().Get("fineGrained"))
		if err != nil {
			http.Error(w, "fineGrained must be true or false", http.StatusBadRequest)
			return
		}
		n.mu.Lock()
		n.fineGrained = on
		n.mu.Unlock()
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			Name, IP, Root, Behavior, Error string
			Up                              bool
			ActivePods                      int32
			Address                         string // the direct listener: Address:Port
			Port                            int
			FineGrainedAuthz                bool // the switch; the node's feature gate must allow it too
			FineGrainedGate                 bool
			// The behaviours' parameters (each applies to its behaviour only).
			BehaviorDelay      string // slow
			BehaviorBytes      int64  // huge
			BehaviorDepth      int    // deep
			BehaviorBody       string // body
			BehaviorRetryAfter int    // throttled, seconds
		}
		var out []row
		for _, name := range sortedKeys(f.nodes) {
			n := f.nodes[name]
			up, b, e := n.state()
			n.mu.Lock()
			fg, gate, p := n.fineGrained, n.gateFineGrained, n.params
			n.mu.Unlock()
			out = append(out, row{Name: n.name, IP: n.ip.String(), Root: n.root, Behavior: b, Error: e, Up: up,
				ActivePods: n.activePods.Load(), Address: n.loopback.String(), Port: n.port,
				FineGrainedAuthz: fg, FineGrainedGate: gate,
				BehaviorDelay: p.Delay.String(), BehaviorBytes: p.Bytes, BehaviorDepth: p.Depth,
				BehaviorBody: p.Body, BehaviorRetryAfter: p.RetryAfter})
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	go func() { _ = http.Serve(l, mux) }()
	return nil
}
