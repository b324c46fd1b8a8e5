package controllertests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile kubelets (nodes/ctl-hostile-*.yaml, pool "hostile"): /configz answers that are far
// too large, far too deep, never finish, or are not JSON at all. Each such node must end up
// Unknown with a message that names the limit that refused it, the healthy nodes of the same
// policy keep their right verdicts, and the controller neither restarts nor grows: one process
// throughout, its peak RSS under maxControllerRSS.

const maxControllerRSS = 256 << 20

// The defaults of `run` that the messages name.
const (
	configzMaxBytesText = "4 MiB" // --configz-max-bytes
	configzDepthText    = "64 levels"
)

// fleetClient talks to the fleet's control socket.
func fleetClient() *http.Client {
	sock := filepath.Join(stateDir, "fleet.sock")
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// setBehaviorWith changes a simulated kubelet's behaviour and its parameters (bytes, depth,
// body, retryAfter, delay) through the fleet's control socket.
func setBehaviorWith(t *testing.T, node, behavior string, params url.Values) {
	t.Helper()
	q := url.Values{"node": {node}, "value": {behavior}}
	for k, v := range params {
		q[k] = v
	}
	resp, err := fleetClient().Post("http://fleet/behavior?"+q.Encode(), "text/plain", nil)
	if err != nil {
		t.Fatalf("fleet behavior %s: %v", q.Encode(), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("fleet behavior %s: %s: %s", q.Encode(), resp.Status, b)
	}
}

// fleetNodeRow is a node as the fleet's GET /nodes lists it.
type fleetNodeRow struct {
	Name, Behavior, BehaviorBody, BehaviorDelay string
	BehaviorBytes                               int64
	BehaviorDepth, BehaviorRetryAfter           int
}

func fleetNodes(t *testing.T) map[string]fleetNodeRow {
	t.Helper()
	resp, err := fleetClient().Get("http://fleet/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []fleetNodeRow
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	out := map[string]fleetNodeRow{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

// peakRSS is VmHWM of /proc/PID/status, in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM line in /proc/%d/status", pid)
}

// requireHealthyProcess checks that c is still the one process started (alive, never
// restarted) and that its peak RSS stayed under maxControllerRSS.
func requireHealthyProcess(t *testing.T, c *controller, pid int) {
	t.Helper()
	if c.exited() || c.cmd.Process.Pid != pid || !processAlive(pid) {
		t.Fatalf("controller %s (pid %d) exited or restarted: %v", c.name, pid, c.waitErr)
	}
	rss, err := peakRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("controller %s (pid %d): peak RSS (VmHWM) %.1f MiB", c.name, pid, float64(rss)/(1<<20))
	if rss >= maxControllerRSS {
		t.Errorf("controller %s peak RSS %.1f MiB, want < %d MiB", c.name, float64(rss)/(1<<20), maxControllerRSS>>20)
	}
}

// requireMessages checks that each node's status message contains all of its parts.
func requireMessages(t *testing.T, p *kubeletPolicy, parts map[string][]string) {
	t.Helper()
	for node, want := range parts {
		n := p.node(node)
		if n == nil {
			t.Errorf("kp %s has no status for node %s", p.Metadata.Name, node)
			continue
		}
		t.Logf("%s: %s %v: %s", node, n.State, n.FailedRules, n.Message)
		for _, w := range want {
			if !strings.Contains(n.Message, w) {
				t.Errorf("message of %s %q does not say %q", node, n.Message, w)
			}
		}
	}
}

// hostileBodyFile is where `up` copied the body of nodes/ctl-hostile-body.yaml
// (behaviorBody ../testdata/hostile-configz-deep.yaml, relative to the copied spec).
func hostileBodyFile() string {
	return filepath.Join(stateDir, "testdata", "hostile-configz-deep.yaml")
}

// resetHostileNodes puts the pool's behaviours back to their node specs (an environment may
// be reused after a run that changed them).
func resetHostileNodes(t *testing.T) {
	t.Helper()
	setBehaviorWith(t, "ctl-hostile-huge", "huge", url.Values{"bytes": {"64Mi"}})
	setBehaviorWith(t, "ctl-hostile-deep", "deep", url.Values{"depth": {"100000"}})
	setBehaviorWith(t, "ctl-hostile-stall", "stall", nil)
	setBehaviorWith(t, "ctl-hostile-body", "body", url.Values{"body": {hostileBodyFile()}})
	setBehaviorWith(t, "ctl-hostile-ok", "normal", nil)
	setBehaviorWith(t, "ctl-hostile-nc", "normal", nil)
}

// writeLongStringConfigz writes a /configz whose one extra string value is size bytes long:
// valid JSON, a real kubeletconfig, only too large.
func writeLongStringConfigz(t *testing.T, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "configz-long-string.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.WriteString(f, `{"kubeletconfig":{"authentication":{"anonymous":{"enabled":false}},"streamingConnectionIdleTimeout":"4h0m0s","x":"`)
	chunk := strings.Repeat("x", 1<<16)
	for written := 0; err == nil && written < size; written += len(chunk) {
		_, err = io.WriteString(f, chunk[:min(len(chunk), size-written)])
	}
	if err == nil {
		_, err = io.WriteString(f, `"}}`)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// checkedSince waits until every named node's status entry was checked at or after since
// (status timestamps have whole seconds).
func checkedSince(t *testing.T, name string, since time.Time, nodes ...string) {
	t.Helper()
	eventually(t, 60*time.Second, "nodes re-checked since "+since.Format(time.RFC3339), func() error {
		p, err := getPolicy(t, name)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			ns := p.node(n)
			if ns == nil {
				return fmt.Errorf("no status for %s", n)
			}
			at, err := time.Parse(time.RFC3339, ns.LastChecked)
			if err != nil {
				return fmt.Errorf("%s: lastChecked %q: %v", n, ns.LastChecked, err)
			}
			if at.Before(since.Truncate(time.Second)) {
				return fmt.Errorf("%s last checked %s", n, ns.LastChecked)
			}
		}
		return nil
	})
}

func TestHostileKubelets(t *testing.T) {
	resetHostileNodes(t)
	t.Cleanup(func() { resetHostileNodes(t) })
	for node, want := range map[string]string{"ctl-hostile-huge": "huge", "ctl-hostile-deep": "deep",
		"ctl-hostile-stall": "stall", "ctl-hostile-body": "body"} {
		if got := fleetNodes(t)[node]; got.Behavior != want {
			t.Fatalf("fleet: %s has behavior %q, want %q", node, got.Behavior, want)
		}
	}
	name := uniqueName("ctl-hostile")
	c := startController(t, "hostile") // --configz-timeout=5s, default --configz-max-bytes (4 MiB)
	pid := c.cmd.Process.Pid
	applyPolicy(t, name, policyYAML(name, "hostile", "10s", ruleAnonymous+ruleStreaming))
	kubectlWaitReady(t, name, 60*time.Second)

	hostile := map[string]wantNode{
		"ctl-hostile-huge":  {"Unknown", nil},
		"ctl-hostile-deep":  {"Unknown", nil},
		"ctl-hostile-stall": {"Unknown", nil},
		"ctl-hostile-body":  {"Unknown", nil},
		"ctl-hostile-nc":    {"NonCompliant", []string{"anonymous-auth-disabled"}},
	}
	w := want{selected: 6, compliant: 1, nonCompliant: 1, unknown: 4, nodes: hostile,
		failing: map[string]int{"anonymous-auth-disabled": 1, "streaming-connection-idle-timeout": 0}, compliantCond: "False"}
	d := waitStatus(t, name, 45*time.Second, w)
	t.Logf("all six verdicts in status %.1fs after Ready", d.Seconds())
	direct := map[string][]string{
		"ctl-hostile-huge":  {"configz unavailable (TooLarge)", "response body larger than " + configzMaxBytesText, "--configz-max-bytes"},
		"ctl-hostile-deep":  {"configz malformed", "nests deeper than " + configzDepthText},
		"ctl-hostile-stall": {"configz unavailable (Timeout)"},
		"ctl-hostile-body":  {"configz malformed", "not valid JSON"},
		"ctl-hostile-nc":    {"authentication.anonymous.enabled"},
	}
	p, err := getPolicy(t, name)
	if err != nil {
		t.Fatal(err)
	}
	requireMessages(t, p, direct)
	for _, n := range []string{"ctl-hostile-huge", "ctl-hostile-deep", "ctl-hostile-stall", "ctl-hostile-body"} {
		waitEvents(t, name, n, "ConfigzUnavailable", 1, 30*time.Second)
	}
	waitEvents(t, name, "ctl-hostile-nc", "NodeNonCompliant", 1, 30*time.Second)
	expectEvents(t, name, "ctl-hostile-ok", "ConfigzUnavailable", 0)
	metricAtLeast(t, c, "kubeletpolicy_configz_fetch_errors_total", map[string]string{"reason": "TooLarge", "source": "kubelet"}, 1)
	metricAtLeast(t, c, "kubeletpolicy_configz_fetch_errors_total", map[string]string{"reason": "Timeout", "source": "kubelet"}, 1)
	metricAtLeast(t, c, "kubeletpolicy_input_rejected_total", map[string]string{"source": "configz", "limit": "bytes"}, 1)
	metricAtLeast(t, c, "kubeletpolicy_input_rejected_total", map[string]string{"source": "configz", "limit": "depth"}, 1)

	// The same answers again and again (checkInterval 10s): the verdicts hold, nothing is
	// re-announced, the process neither restarts nor grows.
	since := time.Now()
	checkedSince(t, name, since.Add(time.Second), "ctl-hostile-huge", "ctl-hostile-deep", "ctl-hostile-stall", "ctl-hostile-body", "ctl-hostile-nc")
	waitStatus(t, name, 5*time.Second, w)
	for _, n := range []string{"ctl-hostile-huge", "ctl-hostile-deep", "ctl-hostile-stall", "ctl-hostile-body"} {
		expectEvents(t, name, n, "ConfigzUnavailable", 1)
	}
	requireHealthyProcess(t, c, pid)

	// At run time the body node serves a real configz whose one string value is 10 MB: its
	// Content-Length alone is refused, before any of it is read.
	long := writeLongStringConfigz(t, 10_000_000)
	setBehaviorWith(t, "ctl-hostile-body", "body", url.Values{"body": {long}})
	if got := fleetNodes(t)["ctl-hostile-body"].BehaviorBody; got != long {
		t.Fatalf("fleet: ctl-hostile-body serves %q, want %q", got, long)
	}
	eventually(t, 30*time.Second, "ctl-hostile-body refused by its Content-Length", func() error {
		p, err := getPolicy(t, name)
		if err != nil {
			return err
		}
		if n := p.node("ctl-hostile-body"); n == nil || !strings.Contains(n.Message, "(Content-Length)") {
			return fmt.Errorf("status %+v", n)
		}
		return nil
	})
	p, _ = getPolicy(t, name)
	if err := p.check(w); err != nil {
		t.Error(err)
	}
	requireMessages(t, p, map[string][]string{
		"ctl-hostile-body": {"configz unavailable (TooLarge)", "(Content-Length) is larger than " + configzMaxBytesText, "--configz-max-bytes"},
	})
	requireHealthyProcess(t, c, pid)
	if err := c.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("controller exit after SIGTERM: %v", err)
	}

	// Through the API server's node proxy (the egress path of the fleet): the same refusals.
	grantNodesProxy(t)
	since = time.Now()
	viaProxy := startController(t, "hostile-apiserver-proxy", "--configz-source=apiserver-proxy")
	proxyPID := viaProxy.cmd.Process.Pid
	checkedSince(t, name, since.Add(time.Second), "ctl-hostile-huge", "ctl-hostile-deep", "ctl-hostile-stall", "ctl-hostile-body", "ctl-hostile-nc")
	waitStatus(t, name, 30*time.Second, w)
	p, _ = getPolicy(t, name)
	requireMessages(t, p, map[string][]string{
		"ctl-hostile-huge":  {"(TooLarge)", configzMaxBytesText},
		"ctl-hostile-deep":  {"configz malformed", "nests deeper than " + configzDepthText},
		"ctl-hostile-stall": {"(Timeout)"},
		"ctl-hostile-body":  {"(TooLarge)", configzMaxBytesText},
	})
	for _, n := range []string{"ctl-hostile-huge", "ctl-hostile-deep", "ctl-hostile-stall", "ctl-hostile-body"} {
		if m := p.node(n).Message; strings.Contains(m, "the kubelet at") {
			t.Errorf("%s: %q is a direct fetch's message, want the API server proxy's", n, m)
		}
	}
	metricAtLeast(t, viaProxy, "kubeletpolicy_configz_fetch_errors_total", map[string]string{"reason": "TooLarge", "source": "apiserver-proxy"}, 1)
	requireHealthyProcess(t, viaProxy, proxyPID)
}

// A 429 storm: every kubelet of a policy answers 429 Too Many Requests (with Retry-After) for
// several check intervals. Throttling says nothing about a node's configuration, so each node
// keeps its last verdict — Compliant stays Compliant, NonCompliant stays NonCompliant, none
// flips to Unknown, no Event — and the verdicts still hold after the storm.
func TestThrottledKubeletsKeepTheirState(t *testing.T) {
	nodes := []string{"ctl-throttle-1", "ctl-throttle-2", "ctl-throttle-nc"}
	reset := func() {
		for _, n := range nodes {
			setBehaviorWith(t, n, "normal", url.Values{"retryAfter": {"5"}})
		}
	}
	reset()
	t.Cleanup(reset)
	name := uniqueName("ctl-throttle")
	c := startController(t, "throttle")
	pid := c.cmd.Process.Pid
	applyPolicy(t, name, policyYAML(name, "throttle", "10s", ruleAnonymous+ruleStreaming))
	kubectlWaitReady(t, name, 60*time.Second)
	w := want{selected: 3, compliant: 2, nonCompliant: 1,
		nodes:   map[string]wantNode{"ctl-throttle-nc": {"NonCompliant", []string{"anonymous-auth-disabled"}}},
		failing: map[string]int{"anonymous-auth-disabled": 1, "streaming-connection-idle-timeout": 0}, compliantCond: "False"}
	waitStatus(t, name, 30*time.Second, w)
	waitEvents(t, name, "ctl-throttle-nc", "NodeNonCompliant", 1, 30*time.Second)

	start := time.Now()
	for _, n := range nodes {
		setBehaviorWith(t, n, "throttled", url.Values{"retryAfter": {"5"}})
	}
	// (Not checked with kubectl: client-go retries 429s for many seconds.)
	for _, n := range nodes {
		if got := fleetNodes(t)[n]; got.Behavior != "throttled" || got.BehaviorRetryAfter != 5 {
			t.Fatalf("fleet: %s is %q with Retry-After %d, want throttled with 5", n, got.Behavior, got.BehaviorRetryAfter)
		}
	}
	const storm = 40 * time.Second // four check intervals
	for time.Since(start) < storm {
		p, err := getPolicy(t, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.check(w); err != nil {
			t.Fatalf("%.0fs into the 429 storm: %v", time.Since(start).Seconds(), err)
		}
		time.Sleep(2 * time.Second)
	}
	for _, n := range nodes {
		expectEvents(t, name, n, "ConfigzUnavailable", 0)
		expectEvents(t, name, n, "NodeCompliant", 0)
	}
	expectEvents(t, name, "ctl-throttle-nc", "NodeNonCompliant", 1)
	_, metrics := c.ports(t)
	if _, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)); err != nil {
		t.Error(err)
	} else if v, ok := metricValue(body, "kubeletpolicy_nodes", map[string]string{"policy": name, "state": "unknown"}); ok && v != 0 {
		t.Errorf("kubeletpolicy_nodes{state=unknown} = %v during the 429 storm, want 0", v)
	}

	// After the storm: fetched again, the same verdicts.
	reset()
	since := time.Now()
	checkedSince(t, name, since.Add(time.Second), "ctl-throttle-nc")
	waitStatus(t, name, 30*time.Second, w)
	expectEvents(t, name, "ctl-throttle-nc", "NodeNonCompliant", 1)
	requireHealthyProcess(t, c, pid)
}
