package controllertests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const remediationNamespace = "kubelet-policy-remediation"

// remediationFlags make the controller's Jobs run the locally built agent (the image map of the
// environment maps "kubelet-policy-controller" to it) and restart simulated kubelets the fleet's
// way.
func remediationFlags() []string {
	return []string{
		"--agent-image", "kubelet-policy-controller:e2e",
		"--kubelet-restart-command", filepath.Join(stateDir, "bin", "testenv") + " restart-kubelet --host-root /host",
		"--agent-host-path", "/run/testenv",
	}
}

type jobInfo struct {
	Name     string
	Node     string
	Type     string
	Finished bool
	Failed   bool
	Args     []string
}

// jobsOf lists the controller's Jobs of one policy ("" = audit Jobs of the given nodes too).
func jobsOf(t *testing.T, selector string) ([]jobInfo, error) {
	t.Helper()
	out, err := kubectl(t, "get", "jobs", "-n", remediationNamespace, "-l", selector, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name        string            `json:"name"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args []string `json:"args"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
			Status struct {
				Conditions []condition `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	var jobs []jobInfo
	for _, it := range list.Items {
		j := jobInfo{Name: it.Metadata.Name, Node: it.Metadata.Annotations["kubeletpolicy.io/node"], Type: it.Metadata.Labels["kubeletpolicy.io/job-type"]}
		for _, c := range it.Status.Conditions {
			if c.Status == "True" && (c.Type == "Complete" || c.Type == "Failed") {
				j.Finished = true
				j.Failed = c.Type == "Failed"
			}
		}
		if len(it.Spec.Template.Spec.Containers) > 0 {
			j.Args = it.Spec.Template.Spec.Containers[0].Args
		}
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Name < jobs[b].Name })
	return jobs, nil
}

func policyJobs(t *testing.T, policy string) []jobInfo {
	t.Helper()
	jobs, err := jobsOf(t, "kubeletpolicy.io/policy="+policy)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// configzValue reads one field (dot path) of the node's live /configz.
func configzValue(t *testing.T, node, path string) (any, error) {
	t.Helper()
	out, err := kubectl(t, "get", "--raw", "/api/v1/nodes/"+node+"/proxy/configz")
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, err
	}
	var cur any = v["kubeletconfig"]
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, nil
		}
		cur = m[seg]
	}
	return cur, nil
}

func nodeFile(node, path string) string { return filepath.Join(stateDir, "nodes", node, "root", path) }

// requireNonCompliant fails early (with the way out) when an earlier run against a reused
// environment already remediated the node.
func requireConfigz(t *testing.T, node, path string, want any) {
	t.Helper()
	got, err := configzValue(t, node, path)
	if err != nil {
		t.Fatalf("configz of %s: %v", node, err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("node %s: %s is %v, want %v before the test; this environment was changed by an earlier run — start a fresh one (e2e/testenv/down, then up)", node, path, got, want)
	}
}

func enforcePolicy(name, pool, settings, rules string) string {
	return strings.Replace(policyYAML(name, pool, "1m", rules), "  enforcement: Audit\n", "  enforcement: Enforce\n  remediation:\n"+settings, 1)
}

const (
	ruleAnonymousFix = `    - id: anonymous-auth-disabled
      config: {path: authentication.anonymous.enabled, operator: Equals, value: false}
      remediation: {value: false}
`
	ruleIPTablesFix = `    - id: make-iptables-util-chains
      config: {path: makeIPTablesUtilChains, operator: Equals, value: true}
      remediation: {value: true}
`
	ruleStreamingFix = `    - id: streaming-connection-idle-timeout
      config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: 0s}
      remediation: {value: 4h0m0s}
`
	ruleKubeconfigPerms = `    - id: kubeconfig-file-permissions
      file: {target: KubeletKubeconfig, maxMode: "0600", owner: root, group: root}
`
)

// Enforce fixes a JSON config file (EKS style), a YAML config file (kubeadm style), a flag in
// the systemd drop-in that overrides the file, and a kubeconfig's mode and owner; every fix is
// verified through /configz (or the audit) and recorded as an Event.
func TestRemediationFixesNodes(t *testing.T) {
	requireConfigz(t, "rem-json", "authentication.anonymous.enabled", true)
	requireConfigz(t, "rem-yaml", "authentication.anonymous.enabled", true)
	requireConfigz(t, "rem-flag", "streamingConnectionIdleTimeout", "0s")
	jsonBefore, err := os.ReadFile(nodeFile("rem-json", "/etc/kubernetes/kubelet/kubelet-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	dropInBefore, err := os.ReadFile(nodeFile("rem-flag", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"))
	if err != nil {
		t.Fatal(err)
	}

	c := startController(t, "rem", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	name := uniqueName("rem-fix")
	applyPolicy(t, name, enforcePolicy(name, "remediate", "    maxUnavailable: 3\n    timeout: 2m\n",
		ruleAnonymousFix+ruleIPTablesFix+ruleStreamingFix+ruleKubeconfigPerms))

	took := waitStatus(t, name, 4*time.Minute, want{selected: 3, compliant: 3, compliantCond: "True",
		failing: map[string]int{"anonymous-auth-disabled": 0}})
	t.Logf("3 nodes remediated and verified in %v", took)

	// The live configuration shows every fix.
	for _, c := range []struct {
		node, path string
		want       any
	}{
		{"rem-json", "authentication.anonymous.enabled", false},
		{"rem-json", "makeIPTablesUtilChains", true},
		{"rem-yaml", "authentication.anonymous.enabled", false},
		{"rem-flag", "streamingConnectionIdleTimeout", "4h0m0s"},
	} {
		got, err := configzValue(t, c.node, c.path)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("configz of %s: %s = %v (%v), want %v", c.node, c.path, got, err, c.want)
		}
	}
	// Other fields of the files are unchanged.
	var before, after map[string]any
	jsonAfter, _ := os.ReadFile(nodeFile("rem-json", "/etc/kubernetes/kubelet/kubelet-config.json"))
	if err := json.Unmarshal(jsonBefore, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jsonAfter, &after); err != nil {
		t.Fatalf("the JSON config is no longer JSON: %v\n%s", err, jsonAfter)
	}
	before["makeIPTablesUtilChains"] = true
	before["authentication"].(map[string]any)["anonymous"] = map[string]any{"enabled": false}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("JSON config: got\n%s\nwant the original with only the two fields changed:\n%v", jsonAfter, before)
	}
	yamlAfter, _ := os.ReadFile(nodeFile("rem-yaml", "/var/lib/kubelet/config.yaml"))
	for _, keep := range []string{"cgroupDriver: systemd", "streamingConnectionIdleTimeout: 0s", "rotateCertificates: true", "10.96.0.10"} {
		if !strings.Contains(string(yamlAfter), keep) {
			t.Errorf("YAML config lost %q:\n%s", keep, yamlAfter)
		}
	}
	// The drop-in: only the flag's value changed.
	dropInAfter, _ := os.ReadFile(nodeFile("rem-flag", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"))
	wantDropIn := strings.Replace(string(dropInBefore), "--streaming-connection-idle-timeout=0", "--streaming-connection-idle-timeout=4h0m0s", 1)
	if string(dropInAfter) != wantDropIn {
		t.Errorf("drop-in after remediation:\n%s\nwant:\n%s", dropInAfter, wantDropIn)
	}
	// The kubeconfig: 0644 uid 1000 -> 0600 root:root.
	var st syscall.Stat_t
	if err := syscall.Stat(nodeFile("rem-yaml", "/etc/kubernetes/kubelet.conf"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o600 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("kubelet.conf is %04o %d:%d, want 0600 0:0", st.Mode&0o7777, st.Uid, st.Gid)
	}
	for _, n := range []string{"rem-json", "rem-yaml", "rem-flag"} {
		waitEvents(t, name, n, "RemediationStarted", 1, 30*time.Second)
		waitEvents(t, name, n, "RemediationSucceeded", 1, 30*time.Second)
	}
	// One Job per node, and the agent was given argv, never a shell.
	for _, j := range policyJobs(t, name) {
		if len(j.Args) < 2 || j.Args[0] != "agent" || j.Args[1] != "remediate" {
			t.Errorf("job %s args %q", j.Name, j.Args)
		}
	}
	if n := len(policyJobs(t, name)); n != 3 {
		t.Errorf("%d remediation Jobs, want 3", n)
	}
}

// With 6 non-compliant nodes and maxUnavailable 2, never more than 2 nodes are remediated at
// once (a watcher samples the Jobs during the whole rollout); killing the leader in the middle
// of the rollout creates no duplicate Job.
func TestRemediationRollout(t *testing.T) {
	for i := 1; i <= 6; i++ {
		requireConfigz(t, fmt.Sprintf("rem-roll-%d", i), "authentication.anonymous.enabled", true)
	}
	a := startController(t, "roll-a", remediationFlags()...)
	waitLeader(t, a, 60*time.Second)
	b := startController(t, "roll-b", remediationFlags()...)
	name := uniqueName("rem-roll")

	sampler := sampleRunningJobs(t, name)
	applyPolicy(t, name, enforcePolicy(name, "rollout", "    maxUnavailable: 2\n    timeout: 2m\n", ruleAnonymousFix))

	// Kill the leader once the first Jobs exist.
	eventually(t, 60*time.Second, "first remediation Jobs", func() error {
		if n := len(policyJobs(t, name)); n == 0 {
			return fmt.Errorf("no Job yet")
		}
		return nil
	})
	leader := a
	if h, _ := leaseHolder(t); h == b.identity(t) {
		leader = b
	}
	t.Logf("killing the leader %s in the middle of the rollout", leader.name)
	leader.signal(syscall.SIGKILL)

	took := waitStatus(t, name, 5*time.Minute, want{selected: 6, compliant: 6, compliantCond: "True",
		failing: map[string]int{"anonymous-auth-disabled": 0}})
	sampler.check(t, 2)
	t.Logf("6 nodes remediated in %v", took)
	requireOneJobPerNode(t, name, "rem-roll-", 6)
}

// jobSampler lists a policy's Jobs every 150 ms and keeps the most that ran at once.
type jobSampler struct {
	mu                  sync.Mutex
	maxRunning, samples int
	stop, done          chan struct{}
}

func sampleRunningJobs(t *testing.T, policy string) *jobSampler {
	s := &jobSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			jobs, err := jobsOf(t, "kubeletpolicy.io/policy="+policy)
			if err != nil {
				continue
			}
			running := 0
			for _, j := range jobs {
				if !j.Finished {
					running++
				}
			}
			s.mu.Lock()
			s.samples++
			s.maxRunning = max(s.maxRunning, running)
			s.mu.Unlock()
		}
	}()
	return s
}

// check stops sampling and fails when more than maxUnavailable Jobs ran at once.
func (s *jobSampler) check(t *testing.T, maxUnavailable int) {
	t.Helper()
	close(s.stop)
	<-s.done
	t.Logf("at most %d Jobs ran at once (%d samples)", s.maxRunning, s.samples)
	if s.maxRunning > maxUnavailable {
		t.Errorf("%d Jobs ran at once, maxUnavailable is %d", s.maxRunning, maxUnavailable)
	}
	if s.samples < 10 {
		t.Errorf("only %d samples of the running Jobs", s.samples)
	}
}

// requireOneJobPerNode: nodes prefix1..prefixN each had exactly one Job of the policy.
func requireOneJobPerNode(t *testing.T, policy, prefix string, n int) {
	t.Helper()
	perNode := map[string]int{}
	for _, j := range policyJobs(t, policy) {
		perNode[j.Node]++
	}
	for i := 1; i <= n; i++ {
		node := fmt.Sprintf("%s%d", prefix, i)
		if perNode[node] != 1 {
			t.Errorf("node %s: %d Jobs, want exactly 1 (%v)", node, perNode[node], perNode)
		}
	}
}

// A leader stopped (SIGSTOP, not killed) in the middle of a rollout loses its lease; the new
// leader finishes the rollout, and when the old one wakes up it changes nothing: it sees that
// its lease is gone before any write, so maxUnavailable holds and no node gets a second Job.
func TestRemediationLeaderPaused(t *testing.T) {
	for i := 1; i <= 4; i++ {
		requireConfigz(t, fmt.Sprintf("rem-pause-%d", i), "authentication.anonymous.enabled", true)
	}
	a := startController(t, "pause-a", remediationFlags()...)
	waitLeader(t, a, 60*time.Second)
	b := startController(t, "pause-b", remediationFlags()...)
	name := uniqueName("rem-pause")
	sampler := sampleRunningJobs(t, name)
	applyPolicy(t, name, enforcePolicy(name, "paused", "    maxUnavailable: 1\n    timeout: 2m\n", ruleAnonymousFix))
	eventually(t, 60*time.Second, "the first remediation Job", func() error {
		if n := len(policyJobs(t, name)); n == 0 {
			return fmt.Errorf("no Job yet")
		}
		return nil
	})
	t.Logf("stopping the leader %s in the middle of the rollout", a.name)
	a.signal(syscall.SIGSTOP)
	t.Cleanup(func() { a.signal(syscall.SIGCONT) }) // so that the cleanup's SIGTERM is delivered
	waitLeaseHolder(t, b, "kubelet-policy-controller", 60*time.Second)
	// Let the new leader carry on, then wake the old one while Jobs are still to come.
	eventually(t, 2*time.Minute, "a Job created by the new leader", func() error {
		if n := len(policyJobs(t, name)); n < 2 {
			return fmt.Errorf("%d Jobs", n)
		}
		return nil
	})
	t.Logf("waking %s", a.name)
	a.signal(syscall.SIGCONT)
	took := waitStatus(t, name, 5*time.Minute, want{selected: 4, compliant: 4, compliantCond: "True",
		failing: map[string]int{"anonymous-auth-disabled": 0}})
	time.Sleep(5 * time.Second) // room for a late write of the woken process
	sampler.check(t, 1)
	t.Logf("4 nodes remediated in %v", took)
	requireOneJobPerNode(t, name, "rem-pause-", 4)
	if a.exited() {
		t.Errorf("the woken replica exited: %v\n%s", a.waitErr, tail(a.logs(), 30))
	}
}

// A remediation that always fails stops the rollout at failureThreshold (Stalled=True, a
// RolloutStalled Event) and no further Job is created.
func TestRemediationStalls(t *testing.T) {
	c := startController(t, "stall", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	name := uniqueName("rem-stall")
	// The agent is pointed at the kubeconfig instead of the kubelet config file: it refuses to
	// edit it, every time.
	applyPolicy(t, name, enforcePolicy(name, "stall",
		"    maxUnavailable: 1\n    failureThreshold: 2\n    timeout: 1m\n    kubeletConfigFile: /etc/kubernetes/kubelet.conf\n",
		ruleAnonymousFix))
	eventually(t, 4*time.Minute, "Stalled=True on kp "+name, func() error {
		p, err := getPolicy(t, name)
		if err != nil {
			return err
		}
		if s := p.condition("Stalled"); s.Status != "True" || s.Reason != "RolloutStalled" {
			return fmt.Errorf("Stalled=%s (%s: %s)", s.Status, s.Reason, s.Message)
		}
		if r := p.condition("Ready"); r.Status != "False" {
			return fmt.Errorf("Ready=%s while stalled", r.Status)
		}
		return nil
	})
	eventually(t, 30*time.Second, "a RolloutStalled Event on kp "+name, func() error {
		evs, err := listEvents(t)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Reason == "RolloutStalled" && e.InvolvedObject.Kind == "KubeletPolicy" && e.InvolvedObject.Name == name {
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	jobs := policyJobs(t, name)
	if len(jobs) != 2 {
		t.Fatalf("%d Jobs when the rollout stalled, want 2 (failureThreshold): %+v", len(jobs), jobs)
	}
	p, _ := getPolicy(t, name)
	failed := 0
	for _, n := range p.Status.Nodes {
		if n.State == "RemediationFailed" {
			failed++
			if !strings.Contains(n.Message, "Job ") {
				t.Errorf("node %s: message %q does not name the Job", n.Name, n.Message)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d nodes RemediationFailed, want 2: %+v", failed, p.Status.Nodes)
	}
	time.Sleep(15 * time.Second)
	if n := len(policyJobs(t, name)); n != 2 {
		t.Errorf("%d Jobs 15s after the rollout stalled, want still 2", n)
	}
}

// DryRun shows the exact plan in status and a RemediationPlanned Event and creates no Job;
// Audit creates no Job either.
func TestRemediationDryRunAndAudit(t *testing.T) {
	requireConfigz(t, "rem-dry", "authentication.anonymous.enabled", true)
	c := startController(t, "dry", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	name := uniqueName("rem-dry")
	manifest := strings.Replace(enforcePolicy(name, "dryrun", "    maxUnavailable: 1\n", ruleAnonymousFix), "enforcement: Enforce", "enforcement: DryRun", 1)
	applyPolicy(t, name, manifest)
	waitStatus(t, name, 90*time.Second, want{selected: 1, nonCompliant: 1, compliantCond: "False",
		nodes:   map[string]wantNode{"rem-dry": {"RemediationPlanned", []string{"anonymous-auth-disabled"}}},
		failing: map[string]int{"anonymous-auth-disabled": 1}})
	p, _ := getPolicy(t, name)
	if msg := p.node("rem-dry").Message; !strings.Contains(msg, "set authentication.anonymous.enabled true -> false") {
		t.Errorf("plan message %q", msg)
	}
	waitEvents(t, name, "rem-dry", "RemediationPlanned", 1, 30*time.Second)
	applyPolicy(t, name, strings.Replace(manifest, "enforcement: DryRun", "enforcement: Audit", 1))
	waitStatus(t, name, 90*time.Second, want{selected: 1, nonCompliant: 1, compliantCond: "False",
		nodes:   map[string]wantNode{"rem-dry": {"NonCompliant", []string{"anonymous-auth-disabled"}}},
		failing: map[string]int{"anonymous-auth-disabled": 1}})
	time.Sleep(5 * time.Second)
	if jobs := policyJobs(t, name); len(jobs) != 0 {
		t.Errorf("DryRun/Audit created Jobs: %+v", jobs)
	}
	requireConfigz(t, "rem-dry", "authentication.anonymous.enabled", true)
}

// A policy value with $(HOME) and shell metacharacters reaches the agent, the file and the
// kubelet literally.
func TestRemediationValuesAreLiteral(t *testing.T) {
	value := "/run/kpc $(HOME) $$(x) `id`; $(echo pwned) | \"q\" 'q' *"
	c := startController(t, "literal", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	name := uniqueName("rem-literal")
	quoted, _ := json.Marshal(value)
	rule := fmt.Sprintf("    - id: resolv-conf\n      config: {path: resolvConf, operator: Equals, value: %s}\n      remediation: {value: %s}\n", quoted, quoted)
	applyPolicy(t, name, enforcePolicy(name, "literal", "    maxUnavailable: 1\n    timeout: 2m\n", rule))
	waitStatus(t, name, 3*time.Minute, want{selected: 1, compliant: 1, compliantCond: "True", failing: map[string]int{"resolv-conf": 0}})
	got, err := configzValue(t, "rem-literal", "resolvConf")
	if err != nil || got != value {
		t.Errorf("configz resolvConf = %q (%v), want %q", got, err, value)
	}
}

// Two Enforce policies that set the same field to different values on the same node block
// each other there, say so in status, and create no Job.
func TestRemediationConflict(t *testing.T) {
	a, b := uniqueName("rem-conf-a"), uniqueName("rem-conf-b")
	rule := func(v int) string {
		return fmt.Sprintf("    - id: event-qps\n      config: {path: eventRecordQPS, operator: Equals, value: %d}\n      remediation: {value: %d}\n", v, v)
	}
	// Both exist before the controller starts (a controller that sees only the first one would
	// rightly start remediating it; the admission webhook warns about the conflict at apply).
	applyPolicy(t, a, enforcePolicy(a, "conflict", "    maxUnavailable: 1\n", rule(5)))
	applyPolicy(t, b, enforcePolicy(b, "conflict", "    maxUnavailable: 1\n", rule(10)))
	c := startController(t, "conflict", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	for _, n := range []string{a, b} {
		waitStatus(t, n, 90*time.Second, want{selected: 1, nonCompliant: 1, compliantCond: "False",
			nodes:   map[string]wantNode{"rem-conflict": {"Blocked", []string{"event-qps"}}},
			failing: map[string]int{"event-qps": 1}})
		p, _ := getPolicy(t, n)
		other := a
		if n == a {
			other = b
		}
		if msg := p.node("rem-conflict").Message; !strings.Contains(msg, other) || !strings.Contains(msg, "eventRecordQPS") {
			t.Errorf("kp %s: message %q does not name %s and the field", n, msg, other)
		}
	}
	// One RemediationBlocked Event on each policy and one per policy on the Node (each message
	// names both policies).
	for _, n := range []string{a, b} {
		eventually(t, 30*time.Second, "RemediationBlocked Events of "+n, func() error {
			onPolicy, onNode, err := eventCounts(t, n, "rem-conflict", "RemediationBlocked")
			if err != nil {
				return err
			}
			if onPolicy != 1 || onNode != 2 {
				return fmt.Errorf("%d on the policy (want 1), %d on the Node (want 2)", onPolicy, onNode)
			}
			return nil
		})
	}
	if jobs, _ := jobsOf(t, "kubeletpolicy.io/node=rem-conflict,kubeletpolicy.io/job-type=remediate"); len(jobs) != 0 {
		t.Errorf("conflicting policies created Jobs: %+v", jobs)
	}
}

// A kubelet flag that overrides the field and that the agent cannot rewrite safely (the wanted
// value would need quoting in the systemd drop-in) ends the node's remediation as Blocked with
// reason FlagOverride: a RemediationBlocked Event, no retry, and no failure counted.
func TestRemediationFlagOverrideBlocked(t *testing.T) {
	requireConfigz(t, "rem-blocked", "resolvConf", "/etc/resolv.conf")
	c := startController(t, "blocked", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	name := uniqueName("rem-blocked")
	rule := "    - id: resolv-conf\n      config: {path: resolvConf, operator: Equals, value: /run/kpc dns/resolv.conf}\n      remediation: {value: /run/kpc dns/resolv.conf}\n"
	applyPolicy(t, name, enforcePolicy(name, "blocked", "    maxUnavailable: 1\n    failureThreshold: 1\n    timeout: 1m\n", rule))
	waitStatus(t, name, 2*time.Minute, want{selected: 1, nonCompliant: 1, compliantCond: "False",
		nodes:   map[string]wantNode{"rem-blocked": {"Blocked", []string{"resolv-conf"}}},
		failing: map[string]int{"resolv-conf": 1}})
	p, _ := getPolicy(t, name)
	if msg := p.node("rem-blocked").Message; !strings.Contains(msg, "FlagOverride") {
		t.Errorf("message %q does not say FlagOverride", msg)
	}
	// Blocked is not a failure: with failureThreshold 1 the rollout would otherwise stall.
	if s := p.condition("Stalled"); s.Status != "False" {
		t.Errorf("Stalled=%s (%s: %s), want False", s.Status, s.Reason, s.Message)
	}
	waitEvents(t, name, "rem-blocked", "RemediationBlocked", 1, 30*time.Second)
	time.Sleep(10 * time.Second)
	if jobs := policyJobs(t, name); len(jobs) != 1 {
		t.Errorf("%d Jobs, want 1 (a blocked node is not retried): %+v", len(jobs), jobs)
	}
	requireConfigz(t, "rem-blocked", "resolvConf", "/etc/resolv.conf")
}

// A node deleted while its remediation Job runs counts for nothing: not toward
// failureThreshold, not as a maxUnavailable slot. Three nodes whose remediation always fails,
// failureThreshold 2: the first node with a Job is deleted at once; had it counted, the rollout
// would stall after the second Job, so it stalls only after both remaining nodes failed.
func TestRemediationDeletedNodeDoesNotCount(t *testing.T) {
	for i := 1; i <= 3; i++ {
		requireConfigz(t, fmt.Sprintf("rem-gone-%d", i), "authentication.anonymous.enabled", true)
	}
	c := startController(t, "gone", remediationFlags()...)
	waitLeader(t, c, 60*time.Second)
	name := uniqueName("rem-gone")
	applyPolicy(t, name, enforcePolicy(name, "gone",
		"    maxUnavailable: 1\n    failureThreshold: 2\n    timeout: 1m\n    kubeletConfigFile: /etc/kubernetes/kubelet.conf\n",
		ruleAnonymousFix))
	var first string
	eventually(t, 60*time.Second, "the first remediation Job", func() error {
		jobs := policyJobs(t, name)
		if len(jobs) == 0 {
			return fmt.Errorf("no Job yet")
		}
		first = jobs[0].Node
		return nil
	})
	nodeJSON := mustKubectl(t, "get", "node", first, "-o", "json")
	t.Logf("deleting node %s while its Job runs", first)
	mustKubectl(t, "delete", "node", first)
	t.Cleanup(func() {
		if _, err := kubectl(t, "get", "node", first); err != nil {
			recreateNode(t, nodeJSON)
		}
	})
	eventually(t, 4*time.Minute, "Stalled=True on kp "+name, func() error {
		p, err := getPolicy(t, name)
		if err != nil {
			return err
		}
		if s := p.condition("Stalled"); s.Status != "True" {
			return fmt.Errorf("Stalled=%s (%s: %s)", s.Status, s.Reason, s.Message)
		}
		return nil
	})
	perNode := map[string]int{}
	for _, j := range policyJobs(t, name) {
		perNode[j.Node]++
	}
	for i := 1; i <= 3; i++ {
		if n := fmt.Sprintf("rem-gone-%d", i); perNode[n] != 1 {
			t.Errorf("node %s: %d Jobs, want 1 each before the rollout stalled (%v)", n, perNode[n], perNode)
		}
	}
	p, _ := getPolicy(t, name)
	for _, n := range p.Status.Nodes {
		if n.Name == first {
			t.Errorf("the deleted node %s is still in the status: %+v", first, n)
		}
	}
}
