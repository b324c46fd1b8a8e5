package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jobManifest is a Job pinned to a node that runs argv from the testenv/shell image
// (mapped to /bin/sh) with the node's / mounted at /host.
func jobManifest(ns, name, node string, command []string, extra string) string {
	cmd, _ := json.Marshal(command)
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: %s, namespace: %s}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 300
  template:
    spec:
      nodeName: %s
      restartPolicy: Never
      containers:
      - name: main
        image: testenv/shell:latest
        command: %s
        env:
        - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: GREETING, value: "hello-$(NODE)"}
%s        volumeMounts: [{name: host, mountPath: /host}]
      volumes: [{name: host, hostPath: {path: /}}]
`, name, ns, node, cmd, extra)
}

func podOfJob(t *testing.T, ns, job string) map[string]any {
	t.Helper()
	out := mustKubectl(t, "-n", ns, "get", "pods", "-l", "job-name="+job, "-o", "json")
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("pods of job %s: %v %s", job, err, out)
	}
	return list.Items[0]
}

func TestJobEditsConfigAndRestartsKubelet(t *testing.T) {
	ns := namespace(t)
	if v := field(configz(t, "delta"), "eventRecordQPS"); v != float64(0) {
		t.Fatalf("delta eventRecordQPS before = %v", v)
	}
	restart := filepath.Join(stateDir, "bin", "testenv") + " restart-kubelet --host-root /host"
	script := `set -e
cfg=/host/var/lib/kubelet/config.yaml
sed -i 's/^eventRecordQPS: 0$/eventRecordQPS: 5/' "$cfg"
grep -q '^eventRecordQPS: 5$' "$cfg"
` + restart + `
echo "remediated $NODE" > /dev/termination-log`
	apply(t, jobManifest(ns, "remediate", "delta", []string{"/bin/sh", "-c", script}, ""))
	mustKubectl(t, "-n", ns, "wait", "--for=condition=Complete", "job/remediate", "--timeout=120s")
	if v := field(configz(t, "delta"), "eventRecordQPS"); v != float64(5) {
		t.Errorf("delta eventRecordQPS after restart = %v, want 5", v)
	}
	pod := podOfJob(t, ns, "remediate")
	if msg := field(pod, "status.phase"); msg != "Succeeded" {
		t.Errorf("pod phase %v", msg)
	}
	statuses := pod["status"].(map[string]any)["containerStatuses"].([]any)
	term := field(statuses[0].(map[string]any), "state.terminated").(map[string]any)
	if term["message"] != "remediated delta\n" || term["exitCode"] != float64(0) {
		t.Errorf("terminated = %v", term)
	}
	logs := mustKubectl(t, "-n", ns, "logs", "job/remediate")
	if !strings.Contains(logs, "kubelet restarted") {
		t.Errorf("kubectl logs: %q", logs)
	}
	// The node is Ready again after its restart.
	mustKubectl(t, "wait", "--for=condition=Ready", "node/delta", "--timeout=30s")
}

func TestRestartFromOutsideRereadsFlags(t *testing.T) {
	// Edit the flags file of beta on the "host" and restart its kubelet via the helper.
	flags := filepath.Join(stateDir, "nodes", "beta", "root", "etc", "default", "kubelet")
	b, err := os.ReadFile(flags)
	if err != nil {
		t.Fatal(err)
	}
	orig := string(b)
	t.Cleanup(func() {
		_ = os.WriteFile(flags, []byte(orig), 0o644)
		_ = execScript("restart-kubelet", "--state", stateDir, "--node", "beta").Run()
	})
	edited := strings.Replace(orig, "--event-qps=0", "--event-qps=9", 1)
	if err := os.WriteFile(flags, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := execScript("restart-kubelet", "--state", stateDir, "--node", "beta").CombinedOutput(); err != nil {
		t.Fatalf("restart-kubelet: %v %s", err, out)
	}
	if v := field(configz(t, "beta"), "eventRecordQPS"); v != float64(9) {
		t.Errorf("beta eventRecordQPS = %v, want 9", v)
	}
}

func TestFailingJobReportsTerminationMessage(t *testing.T) {
	ns := namespace(t)
	apply(t, jobManifest(ns, "fails", "alpha",
		[]string{"/bin/sh", "-c", "echo 'cannot write /host/etc: denied' > /dev/termination-log; exit 3"}, ""))
	mustKubectl(t, "-n", ns, "wait", "--for=condition=Failed", "job/fails", "--timeout=120s")
	pod := podOfJob(t, ns, "fails")
	if p := field(pod, "status.phase"); p != "Failed" {
		t.Errorf("phase %v", p)
	}
	st := pod["status"].(map[string]any)["containerStatuses"].([]any)[0].(map[string]any)
	term := field(st, "state.terminated").(map[string]any)
	if term["exitCode"] != float64(3) || term["message"] != "cannot write /host/etc: denied\n" || term["reason"] != "Error" {
		t.Errorf("terminated = %v", term)
	}
}

func TestFallbackToLogsOnError(t *testing.T) {
	ns := namespace(t)
	apply(t, jobManifest(ns, "fallback", "alpha",
		[]string{"/bin/sh", "-c", "echo line1; echo last-words >&2; exit 1"},
		"        terminationMessagePolicy: FallbackToLogsOnError\n"))
	mustKubectl(t, "-n", ns, "wait", "--for=condition=Failed", "job/fallback", "--timeout=120s")
	st := podOfJob(t, ns, "fallback")["status"].(map[string]any)["containerStatuses"].([]any)[0].(map[string]any)
	if msg := field(st, "state.terminated.message"); msg != "line1\nlast-words" {
		t.Errorf("message = %q", msg)
	}
}

func TestVariableExpansion(t *testing.T) {
	ns := namespace(t)
	// printf shows each argv element exactly as the process received it.
	apply(t, jobManifest(ns, "expand", "gamma",
		[]string{"/bin/sh", "-c", `printf '[%s]\n' "$@"; printf '{%s}\n' "$GREETING"`, "sh",
			"$(NODE)", "$$(NODE)", "$(NOT_DEFINED)", "x$(GREETING)y", "$$$(NODE)"}, ""))
	mustKubectl(t, "-n", ns, "wait", "--for=condition=Complete", "job/expand", "--timeout=120s")
	logs := mustKubectl(t, "-n", ns, "logs", "job/expand")
	want := "[gamma]\n[$(NODE)]\n[$(NOT_DEFINED)]\n[xhello-gammay]\n[$gamma]\n{hello-gamma}\n"
	if logs != want {
		t.Errorf("argv/env seen by the process:\n%s\nwant:\n%s", logs, want)
	}
}

func TestReadOnlyHostMountAndPodDeletion(t *testing.T) {
	ns := namespace(t)
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: ro, namespace: %s}
spec:
  nodeName: alpha
  restartPolicy: Never
  containers:
  - name: main
    image: testenv/shell
    command: ["/bin/sh", "-c", "if touch /host/x 2>/dev/null; then echo writable; else echo readonly; fi; cat /host/kubelet.conf >/dev/null && echo readable; exec sleep 600"]
    volumeMounts: [{name: k8s, mountPath: /host, readOnly: true}]
  volumes: [{name: k8s, hostPath: {path: /etc/kubernetes, type: Directory}}]
`, ns))
	mustKubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/ro", "--timeout=60s")
	deadline := time.Now().Add(30 * time.Second)
	var logs string
	for time.Now().Before(deadline) {
		logs, _ = kubectl(t, "-n", ns, "logs", "ro")
		if strings.Contains(logs, "readable") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if logs != "readonly\nreadable\n" {
		t.Errorf("logs = %q", logs)
	}
	start := time.Now()
	mustKubectl(t, "-n", ns, "delete", "pod", "ro", "--timeout=60s")
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("deletion took %v", d)
	}
}

func TestRestartReregistersDeletedNode(t *testing.T) {
	mustKubectl(t, "delete", "node", "refused-node", "--wait=true")
	if out, err := execScript("restart-kubelet", "--state", stateDir, "--node", "refused-node").CombinedOutput(); err != nil {
		t.Fatalf("restart-kubelet: %v %s", err, out)
	}
	out := mustKubectl(t, "get", "node", "refused-node", "-o", "jsonpath={.metadata.labels.pool} {.status.addresses[0].address}")
	if !strings.HasPrefix(out, "behaviors 198.18.") {
		t.Errorf("re-registered node: %q", out)
	}
}
