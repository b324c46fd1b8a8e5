package controllertests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The admission webhooks, called by the real API server: `kubelet-policy-controller webhook`
// runs out of cluster as the webhook's ServiceAccount with --local-webhooks (the test control
// plane cannot reach a Service), serving on 127.0.0.1:PORT, and points
// deploy/base/webhooks.yaml's configurations at that URL with its own CA bundle. The
// certificates are self-managed (Secret kubelet-policy-controller-webhook-tls).

// The webhook denies with reason Invalid and one cause per problem, so kubectl prints it like
// the API server's own validation ("The KubeletPolicy "x" is invalid: * field: message"),
// without the "admission webhook ... denied the request" prefix. Which component refused is
// proven with the webhook's own counter (kubeletpolicy_admission_requests_total) instead.
const secretName = "kubelet-policy-controller-webhook-tls"

// Text only the webhook's validation writes (policy/model.cpp), for the readiness probe.
const probeDenial = "GreaterThan cannot be used on rotateCertificates"

type webhookController struct {
	*controller
	port int
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startWebhooks installs the webhook configurations from deploy/, starts
// `kubelet-policy-controller webhook --local-webhooks` and waits until the API server calls
// it. At the end of the test the configurations are deleted first (so that no policy write
// meets a dead webhook), then the process stops.
func startWebhooks(t *testing.T, extra ...string) *webhookController {
	t.Helper()
	return startNamedWebhooks(t, "webhooks", extra...)
}

func startNamedWebhooks(t *testing.T, name string, extra ...string) *webhookController {
	t.Helper()
	// Fresh from deploy/: an earlier process of the same test may have rewritten them to its
	// URL, and applying the Service-backed manifest over a URL would set both.
	mustKubectl(t, "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", webhookConfigurationName, "--ignore-not-found")
	mustKubectl(t, "apply", "-f", filepath.Join(repoRoot, "deploy", "base", "webhooks.yaml"))
	port := freePort(t)
	args := append([]string{"--local-webhooks", fmt.Sprintf("--webhook-addr=:%d", port), "--webhook-cert-sync-period=1s"}, extra...)
	c := startWebhook(t, name, args...)
	t.Cleanup(func() {
		if _, err := kubectl(t, "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", webhookConfigurationName, "--ignore-not-found"); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	waitWebhookCalled(t, c)
	return &webhookController{controller: c, port: port}
}

// waitWebhookCalled waits until the API server sends a policy only the webhook can refuse to
// the webhook.
func waitWebhookCalled(t *testing.T, c *controller) {
	t.Helper()
	probe := fmt.Sprintf(invalidTemplate, "ctl-wh-probe", `  rules:
    - id: a
      config: {path: rotateCertificates, operator: GreaterThan, value: true}`)
	eventually(t, 60*time.Second, "the API server calls the webhook", func() error {
		if c.exited() {
			t.Fatalf("%s exited: %v", c.name, c.waitErr)
		}
		_, stderr, err := kubectlStdin(t, []byte(probe), "apply", "--dry-run=server", "-f", "-")
		if err == nil {
			return fmt.Errorf("probe admitted: the webhook is not called yet")
		}
		if !strings.Contains(stderr, probeDenial) {
			return fmt.Errorf("probe refused, not by the webhook: %s", strings.TrimSpace(stderr))
		}
		return nil
	})
}

// kubectlStdin runs kubectl as admin and returns stdout and stderr separately (kubectl prints
// admission warnings on stderr, also when the command succeeds).
func kubectlStdin(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	return kubectlSplit(kubeconfig, stdin, args...)
}

const invalidTemplate = `apiVersion: kubeletpolicy.io/v1alpha1
kind: KubeletPolicy
metadata: {name: %s, labels: {kpc-e2e: controllertests}}
spec:
  nodeSelector: {matchLabels: {e2e-pool: nothing-selected}}
%s
`

type invalidCase struct {
	name string
	spec string
	// Substrings the error must contain (the field path, at least).
	want []string
	// Only the webhook can refuse it (the schema and CEL cannot see it): the error must come
	// from validate.kubeletpolicy.io.
	webhookOnly bool
}

var invalidCases = []invalidCase{
	{"duplicate-ids", `  rules:
    - {id: a, config: {path: readOnlyPort, operator: Equals, value: 0}}
    - {id: a, config: {path: rotateCertificates, operator: Equals, value: true}}`, []string{"spec.rules[1]"}, false},
	{"config-and-file", `  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}
      file: {target: KubeletConfigFile, maxMode: "0600"}`, []string{"spec.rules[0]", "exactly one of config or file"}, false},
	{"unknown-operator", `  rules:
    - {id: a, config: {path: readOnlyPort, operator: Bigger, value: 0}}`, []string{"spec.rules[0].config.operator"}, false},
	{"ordering-on-bool", `  rules:
    - {id: a, config: {path: rotateCertificates, operator: GreaterThan, value: true}}`, []string{"spec.rules[0].config.operator", "GreaterThan"}, true},
	{"ordering-on-string", `  rules:
    - {id: a, config: {path: authorization.mode, operator: LessThan, value: Webhook}}`, []string{"spec.rules[0].config.operator", "LessThan"}, true},
	{"not-a-duration", `  rules:
    - {id: a, config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: forever}}`, []string{"spec.rules[0].config.value", "duration"}, true},
	{"not-a-bool", `  rules:
    - {id: a, config: {path: rotateCertificates, operator: Equals, value: "yes"}}`, []string{"spec.rules[0].config.value"}, true},
	{"not-a-number", `  rules:
    - {id: a, config: {path: eventRecordQPS, operator: GreaterThanOrEqual, value: lots}}`, []string{"spec.rules[0].config.value"}, true},
	{"remediation-fails-rule", `  rules:
    - id: a
      config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: 0s}
      remediation: {value: 0h0m0s}`, []string{"spec.rules[0].remediation.value", "does not satisfy"}, true},
	{"remediation-wrong-type", `  rules:
    - id: a
      config: {path: eventRecordQPS, operator: GreaterThanOrEqual, value: 5}
      remediation: {value: many}`, []string{"spec.rules[0].remediation.value"}, true},
	{"list-value-for-equals", `  rules:
    - {id: a, config: {path: authorization.mode, operator: Equals, value: [Webhook, Node]}}`, []string{"spec.rules[0].config.value", "In and NotIn"}, true},
	{"value-for-exists", `  rules:
    - {id: a, config: {path: authentication.x509.clientCAFile, operator: Exists, value: /etc/ca.crt}}`, []string{"spec.rules[0].config.value", "Exists"}, true},
	{"default-wrong-type", `  rules:
    - {id: a, config: {path: readOnlyPort, operator: Equals, value: 0, default: closed}}`, []string{"spec.rules[0].config.default"}, true},
	{"file-path-dotdot", `  rules:
    - {id: a, file: {target: Path, path: /etc/kubernetes/../shadow, maxMode: "0600"}}`, []string{"spec.rules[0].file.path", ".."}, false},
	{"file-path-root", `  rules:
    - {id: a, file: {target: Path, path: /root/.ssh/id_rsa, maxMode: "0600"}}`, []string{"spec.rules[0].file.path"}, false},
	{"exception-without-reason", `  rules:
    - {id: a, config: {path: readOnlyPort, operator: Equals, value: 0}}
  exceptions:
    - {rules: [a], reason: "  "}`, []string{"spec.exceptions[0].reason"}, false},
	{"bad-selector", `  rules:
    - {id: a, config: {path: readOnlyPort, operator: Equals, value: 0}}
  exceptions:
    - rules: [a]
      reason: legacy pool
      nodeSelector: {matchExpressions: [{key: pool, operator: In}]}`, []string{"spec.exceptions[0].nodeSelector"}, false},
	{"two-problems-at-once", `  rules:
    - {id: a, config: {path: rotateCertificates, operator: LessThan, value: false}}
    - {id: b, config: {path: streamingConnectionIdleTimeout, operator: Equals, value: soon}}`,
		[]string{"spec.rules[0].config.operator", "spec.rules[1].config.value"}, true},
}

// TestWebhookDeniesInvalidPolicies: every invalid policy is refused by `kubectl apply` with a
// message naming the field; the webhook-only cases are refused by the webhook itself; a server
// dry run is refused the same way and nothing is created.
func TestWebhookDeniesInvalidPolicies(t *testing.T) {
	if len(invalidCases) < 15 {
		t.Fatalf("only %d cases", len(invalidCases))
	}
	w := startWebhooks(t)
	_, metricsPort := w.ports(t)
	denials := func() float64 {
		_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := metricValue(body, "kubeletpolicy_admission_requests_total", map[string]string{"webhook": "validate", "operation": "CREATE", "result": "denied"})
		return n
	}
	for _, c := range invalidCases {
		name := "ctl-wh-" + c.name
		manifest := fmt.Sprintf(invalidTemplate, name, c.spec)
		for _, dry := range []bool{false, true} {
			args := []string{"apply", "-f", "-"}
			if dry {
				args = append(args, "--dry-run=server")
			}
			before := denials()
			_, stderr, err := kubectlStdin(t, []byte(manifest), args...)
			byWebhook := denials() - before
			if err == nil {
				_, _ = kubectl(t, "delete", "kp", name, "--ignore-not-found")
				t.Errorf("%s (dry run %v): admitted:\n%s", c.name, dry, manifest)
				continue
			}
			for _, s := range c.want {
				if !strings.Contains(stderr, s) {
					t.Errorf("%s (dry run %v): error does not mention %q:\n%s", c.name, dry, s, stderr)
				}
			}
			if c.webhookOnly && byWebhook != 1 {
				t.Errorf("%s (dry run %v): the webhook counted %v denials, want 1:\n%s", c.name, dry, byWebhook, stderr)
			}
			if !dry {
				from := "the API server (schema/CEL)"
				if byWebhook > 0 {
					from = "the webhook"
				}
				t.Logf("%s: refused by %s: %s", c.name, from, strings.TrimSpace(stderr))
			}
		}
		if out, err := kubectl(t, "get", "kp", name, "--ignore-not-found", "-o", "name"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s: exists after a refused apply: %q %v", c.name, out, err)
		}
	}
	// The denials are counted.
	_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	denied, _ := metricValue(body, "kubeletpolicy_admission_requests_total", map[string]string{"webhook": "validate", "operation": "CREATE", "result": "denied"})
	if denied < 2*float64(countWebhookOnly()) {
		t.Errorf("kubeletpolicy_admission_requests_total{validate,CREATE,denied} = %v, want at least %d", denied, 2*countWebhookOnly())
	}
	if n, ok := metricValue(body, "kubeletpolicy_admission_duration_seconds_count", map[string]string{"webhook": "validate"}); !ok || n < denied {
		t.Errorf("latency histogram count %v (present %v), want at least %v", n, ok, denied)
	}
}

func countWebhookOnly() int {
	n := 0
	for _, c := range invalidCases {
		if c.webhookOnly {
			n++
		}
	}
	return n
}

// TestWebhookAdmitsSamplesAndWarns: the samples of deploy/samples are admitted (server dry run:
// they select real nodes); suspicious but legal input is admitted with warnings that kubectl
// shows; a policy fighting another over a field gets a conflict warning from the webhook's own
// informer cache (no operator runs here).
func TestWebhookAdmitsSamplesAndWarns(t *testing.T) {
	startWebhooks(t)
	samples, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "samples", "*.yaml"))
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	for _, s := range samples {
		if _, stderr, err := kubectlStdin(t, nil, "apply", "--dry-run=server", "-f", s); err != nil {
			t.Errorf("sample %s refused: %v\n%s", filepath.Base(s), err, stderr)
		}
	}

	name := uniqueName("ctl-wh-warn")
	manifest := fmt.Sprintf(invalidTemplate, name, `  enforcement: Enforce
  remediation: {maxUnavailable: "50%"}
  rules:
    - {id: future-field, config: {path: someFutureKubeletField, operator: GreaterThan, value: 3}}`)
	_, stderr, err := kubectlStdin(t, []byte(manifest), "apply", "-f", "-")
	if err != nil {
		t.Fatalf("legal policy refused: %v\n%s", err, stderr)
	}
	t.Cleanup(func() { _, _ = kubectl(t, "delete", "kp", name, "--ignore-not-found") })
	for _, want := range []string{"Warning: spec.rules[0].config.path", "someFutureKubeletField", "Warning: spec.rules[0].config.operator", "Warning: spec.remediation.maxUnavailable"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("kubectl apply does not show %q:\n%s", want, stderr)
		}
	}

	// Conflicts: two policies on overlapping nodes remediating readOnlyPort differently.
	first := uniqueName("ctl-wh-conflict-a")
	rule := func(v int) string {
		return fmt.Sprintf(`  rules:
    - id: read-only-port
      config: {path: readOnlyPort, operator: LessThanOrEqual, value: 10255}
      remediation: {value: %d}`, v)
	}
	applyPolicy(t, first, fmt.Sprintf(invalidTemplate, first, rule(0)))
	second := uniqueName("ctl-wh-conflict-b")
	eventually(t, 30*time.Second, "conflict warning naming "+first, func() error {
		_, stderr, err := kubectlStdin(t, []byte(fmt.Sprintf(invalidTemplate, second, rule(10255))), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			return fmt.Errorf("refused: %v %s", err, stderr)
		}
		if !strings.Contains(stderr, `KubeletPolicy "`+first+`"`) {
			return fmt.Errorf("no conflict warning yet: %q", stderr)
		}
		return nil
	})
}

// TestWebhookDryRunHasNoSideEffects: a server dry run of a valid policy is admitted and
// creates nothing; the webhook answered it.
func TestWebhookDryRunHasNoSideEffects(t *testing.T) {
	w := startWebhooks(t)
	_, metricsPort := w.ports(t)
	count := func() float64 {
		_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := metricValue(body, "kubeletpolicy_admission_requests_total", map[string]string{"webhook": "validate", "operation": "CREATE", "result": "allowed"})
		return n
	}
	before := count()
	name := uniqueName("ctl-wh-dry")
	manifest := fmt.Sprintf(invalidTemplate, name, `  rules:
    - {id: a, config: {path: readOnlyPort, operator: Equals, value: 0}}`)
	out, stderr, err := kubectlStdin(t, []byte(manifest), "apply", "--dry-run=server", "-f", "-")
	if err != nil || !strings.Contains(out, "(server dry run)") {
		t.Fatalf("dry run: %v\n%s%s", err, out, stderr)
	}
	if got, _ := kubectl(t, "get", "kp", name, "--ignore-not-found", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("a server dry run created %s", got)
	}
	if after := count(); after < before+1 {
		t.Errorf("validate allowed CREATE count %v -> %v: the dry run did not reach the webhook", before, after)
	}
	// And for real: created.
	applyPolicy(t, name, manifest)
	mustKubectl(t, "get", "kp", name)
}

// TestWebhookApplyTwiceShowsNoDiff: the webhooks add nothing to spec, so applying the same
// manifest again (client-side and server-side) changes nothing and `kubectl diff` is clean.
func TestWebhookApplyTwiceShowsNoDiff(t *testing.T) {
	startWebhooks(t)
	sample, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "samples", "cis-kubeadm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"client-side", "server-side"} {
		name := uniqueName("ctl-wh-diff-" + mode)
		// The sample, renamed and pointed at no node (so the controller leaves it alone).
		manifest := strings.Replace(string(sample), "name: cis-kubeadm-kubelet", "name: "+name, 1)
		manifest = strings.Replace(manifest, "  nodeSelector:\n", "  nodeSelector:\n    matchLabels: {e2e-pool: nothing-selected}\n", 1)
		f := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		apply := []string{"apply", "-f", f}
		diff := []string{"diff", "-f", f}
		if mode == "server-side" {
			apply = append(apply, "--server-side", "--field-manager=e2e-gitops")
			diff = append(diff, "--server-side", "--field-manager=e2e-gitops")
		}
		mustKubectl(t, apply...)
		t.Cleanup(func() { _, _ = kubectl(t, "delete", "kp", name, "--ignore-not-found") })
		gen1 := mustKubectl(t, "get", "kp", name, "-o", "jsonpath={.metadata.generation}")
		mustKubectl(t, apply...)
		gen2 := mustKubectl(t, "get", "kp", name, "-o", "jsonpath={.metadata.generation}")
		if gen1 != gen2 {
			t.Errorf("%s: applying the same manifest again changed the generation %s -> %s", mode, gen1, gen2)
		}
		out, stderr, err := kubectlStdin(t, nil, diff...)
		if err != nil {
			t.Errorf("%s: kubectl diff: %v (exit 1 means a diff)\n%s%s", mode, err, out, stderr)
		}
	}
}

// TestWebhookCertificateRotation: policies are applied in a loop while the certificates
// rotate twice — a forced CA rotation (the Secret deleted) and the natural renewal of a
// short-lived serving certificate — and not one apply fails.
func TestWebhookCertificateRotation(t *testing.T) {
	w := startWebhooks(t, "--webhook-cert-validity=40s")
	served := func() (string, error) { return servedFingerprint(w.port) }
	bundleCAs := func() int {
		out, err := kubectl(t, "get", "validatingwebhookconfiguration", webhookConfigurationName, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
		if err != nil {
			return -1
		}
		b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
		n := 0
		for rest := b; ; n++ {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				return n
			}
		}
	}
	first, err := served()
	if err != nil {
		t.Fatal(err)
	}

	loop := startApplyLoop(t, uniqueName("ctl-wh-rotate"))
	defer loop.finish()

	time.Sleep(3 * time.Second)
	mustKubectl(t, "delete", "secret", "-n", systemNamespace, secretName)
	rotated := ""
	eventually(t, 60*time.Second, "a new CA in the bundle and a new serving certificate", func() error {
		if n := bundleCAs(); n < 2 {
			return fmt.Errorf("bundle has %d CAs", n)
		}
		fp, err := served()
		if err != nil {
			return err
		}
		if fp == first {
			return errors.New("still serving the first certificate")
		}
		rotated = fp
		return nil
	})
	// The 40s serving certificate is renewed (with a third of its life left) under the new CA.
	eventually(t, 60*time.Second, "the short-lived serving certificate renewed", func() error {
		fp, err := served()
		if err != nil {
			return err
		}
		if fp == rotated {
			return errors.New("not renewed yet")
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	loop.finish()
	loop.check(t, "two certificate rotations")
	if !strings.Contains(w.logs(), "serving certificate reloaded") {
		t.Errorf("the webhook never logged a reload")
	}
}

// servedFingerprint returns the start of the SHA-256 of the certificate served on 127.0.0.1:port.
func servedFingerprint(port int) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:8]), nil
}

// TestWebhookEveryReplicaReloads: a second replica (not the leader: the webhook's Lease is
// kubelet-policy-controller-webhook) serves the pair from the Secret too, and switches to the
// new one after a forced rotation, without a restart.
func TestWebhookEveryReplicaReloads(t *testing.T) {
	leader := startWebhooks(t)
	waitLeaseHolder(t, leader.controller, webhookLeaseName, 60*time.Second)
	followerPort := freePort(t)
	follower := startWebhook(t, "follower", "--local-webhooks", fmt.Sprintf("--webhook-addr=:%d", followerPort), "--webhook-cert-sync-period=1s")
	same := func() error {
		if follower.exited() {
			t.Fatalf("follower exited: %v", follower.waitErr)
		}
		a, err := servedFingerprint(leader.port)
		if err != nil {
			return err
		}
		b, err := servedFingerprint(followerPort)
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("leader serves %s, follower %s", a, b)
		}
		return nil
	}
	eventually(t, 30*time.Second, "the follower serves the leader's certificate", same)
	before, _ := servedFingerprint(followerPort)
	mustKubectl(t, "delete", "secret", "-n", systemNamespace, secretName)
	eventually(t, 60*time.Second, "both replicas serve a new certificate", func() error {
		if err := same(); err != nil {
			return err
		}
		if now, _ := servedFingerprint(followerPort); now == before {
			return errors.New("still the old certificate")
		}
		return nil
	})
	// The follower never wrote the configurations: they still point at the leader.
	url := mustKubectl(t, "get", "validatingwebhookconfiguration", webhookConfigurationName, "-o", "jsonpath={.webhooks[0].clientConfig.url}")
	if want := fmt.Sprintf("https://127.0.0.1:%d/validate-kubeletpolicy", leader.port); url != want {
		t.Errorf("clientConfig.url = %q, want %q", url, want)
	}
}

// applyLoop applies policies from two goroutines, back to back, until finish.
type applyLoop struct {
	stop            chan struct{}
	wg              sync.WaitGroup
	applies, failed atomic.Int64
	mu              sync.Mutex
	firstFailure    string
	once            sync.Once
}

func startApplyLoop(t *testing.T, name string) *applyLoop {
	t.Helper()
	l := &applyLoop{stop: make(chan struct{})}
	for worker := 0; worker < 2; worker++ {
		policy := fmt.Sprintf("%s-%d", name, worker)
		t.Cleanup(func() { _, _ = kubectl(t, "delete", "kp", policy, "--ignore-not-found") })
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				// Alternate the value so every apply is a real UPDATE through both webhooks.
				manifest := fmt.Sprintf(invalidTemplate, policy, fmt.Sprintf(`  rules:
    - {id: a, config: {path: eventRecordQPS, operator: GreaterThanOrEqual, value: %d}}`, i%7))
				_, stderr, err := kubectlStdin(t, []byte(manifest), "apply", "-f", "-")
				l.applies.Add(1)
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstFailure == "" {
						l.firstFailure = strings.TrimSpace(stderr)
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

func (l *applyLoop) finish() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *applyLoop) check(t *testing.T, during string) {
	t.Helper()
	t.Logf("%d applies during %s, %d failed", l.applies.Load(), during, l.failed.Load())
	if l.applies.Load() < 20 {
		t.Errorf("only %d applies ran", l.applies.Load())
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d applies failed during %s; first: %s", l.failed.Load(), l.applies.Load(), during, l.firstFailure)
	}
}

// writeServingPair writes tls.crt, tls.key and ca.crt into dir the way the kubelet updates a
// mounted Secret: into a new directory, then an atomic rename of the ..data symlink.
func writeServingPair(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, caPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	version := filepath.Join(dir, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"ca.crt":  caPEM,
	} {
		if err := os.WriteFile(filepath.Join(version, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(version), tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookCertManagerMode: with --webhook-cert-mode=cert-manager the webhook only serves
// what is in --webhook-cert-dir (laid out like a mounted Secret) and hot-reloads a renewed pair
// while policies are applied continuously; it never touches the Secret or the caBundle, and
// takes no Lease (it writes nothing).
func TestWebhookCertManagerMode(t *testing.T) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e cert-manager stand-in"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	dir := t.TempDir()
	writeServingPair(t, dir, ca, caKey, caPEM)

	// What cainjector and a URL would give the configurations.
	mustKubectl(t, "apply", "-f", filepath.Join(repoRoot, "deploy", "base", "webhooks.yaml"))
	t.Cleanup(func() {
		_, _ = kubectl(t, "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", webhookConfigurationName, "--ignore-not-found")
	})
	port := freePort(t)
	bundle := base64.StdEncoding.EncodeToString(caPEM)
	for kind, path := range map[string]string{"validatingwebhookconfiguration": "validate", "mutatingwebhookconfiguration": "mutate"} {
		patch := fmt.Sprintf(`[{"op":"replace","path":"/webhooks/0/clientConfig","value":{"url":"https://127.0.0.1:%d/%s-kubeletpolicy","caBundle":"%s"}}]`, port, path, bundle)
		mustKubectl(t, "patch", kind, webhookConfigurationName, "--type=json", "-p", patch)
	}
	secretBefore, _ := kubectl(t, "get", "secret", "-n", systemNamespace, secretName, "--ignore-not-found", "-o", "jsonpath={.metadata.resourceVersion}")

	c := startWebhook(t, "cert-manager-mode", "--webhook-cert-mode=cert-manager", "--webhook-cert-dir="+dir,
		fmt.Sprintf("--webhook-addr=127.0.0.1:%d", port), "--webhook-cert-sync-period=1s")
	waitWebhookCalled(t, c)
	first, err := servedFingerprint(port)
	if err != nil {
		t.Fatal(err)
	}

	loop := startApplyLoop(t, uniqueName("ctl-wh-cm"))
	defer loop.finish()
	time.Sleep(3 * time.Second)
	writeServingPair(t, dir, ca, caKey, caPEM) // cert-manager renewed the certificate
	eventually(t, 30*time.Second, "the renewed certificate served", func() error {
		fp, err := servedFingerprint(port)
		if err != nil {
			return err
		}
		if fp == first {
			return errors.New("still the first certificate")
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	loop.finish()
	loop.check(t, "a certificate renewal from the directory")

	if got := mustKubectl(t, "get", "validatingwebhookconfiguration", webhookConfigurationName, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"); got != bundle {
		t.Errorf("the webhook changed caBundle in cert-manager mode")
	}
	if after, _ := kubectl(t, "get", "secret", "-n", systemNamespace, secretName, "--ignore-not-found", "-o", "jsonpath={.metadata.resourceVersion}"); after != secretBefore {
		t.Errorf("the webhook wrote the Secret in cert-manager mode (resourceVersion %q -> %q)", secretBefore, after)
	}
	if strings.Contains(c.logs(), "leader election: Lease") {
		t.Errorf("the webhook took part in leader election in cert-manager mode (it writes nothing)")
	}
}

// TestWebhookRBACIsLeastPrivilege: the webhook's ServiceAccount (deploy/base/rbac-webhook*.yaml)
// may read KubeletPolicies and, for its self-managed certificates, its one Secret, the two
// webhook configurations, its Lease and Events - and nothing of the operator's: no nodes (not
// even nodes/configz), no nodes/proxy, no Jobs, no Pods, no policy status. Goldens as for the
// controller; every webhook test runs the process with this ServiceAccount's token.
func TestWebhookRBACIsLeastPrivilege(t *testing.T) {
	checkCanIGoldens(t, webhookServiceAccount, "webhook-")
	as := "--as=system:serviceaccount:" + systemNamespace + ":" + webhookServiceAccount
	for _, deny := range [][]string{
		{"get", "nodes"},
		{"list", "nodes"},
		{"get", "nodes", "--subresource=proxy"},
		{"create", "nodes", "--subresource=proxy"},
		{"get", "nodes", "--subresource=configz"},
		{"get", "jobs.batch", "-n", remediationNamespace},
		{"create", "jobs.batch", "-n", remediationNamespace},
		{"list", "jobs.batch", "-A"},
		{"get", "pods", "-n", remediationNamespace},
		{"list", "pods", "-A"},
		{"create", "pods", "-n", systemNamespace},
		{"update", "kubeletpolicies.kubeletpolicy.io"},
		{"update", "kubeletpolicies.kubeletpolicy.io", "--subresource=status"},
		{"get", "secrets", "-A"},
		{"list", "secrets", "-n", systemNamespace},
		{"get", "secrets/some-other-secret", "-n", systemNamespace},
		{"create", "secrets", "-n", "default"},
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/some-other-webhook"},
		{"create", "validatingwebhookconfigurations.admissionregistration.k8s.io"},
		{"update", "leases.coordination.k8s.io/" + leaseName, "-n", systemNamespace},
		{"create", "events", "-n", "default"},
	} {
		if got := canI(t, as, deny...); got != "no" {
			t.Errorf("kubectl auth can-i %s as the webhook: %q, want no", strings.Join(deny, " "), got)
		}
	}
	for _, allow := range [][]string{
		{"list", "kubeletpolicies.kubeletpolicy.io"},
		{"watch", "kubeletpolicies.kubeletpolicy.io"},
		{"get", "secrets/" + secretName, "-n", systemNamespace},
		{"update", "secrets/" + secretName, "-n", systemNamespace},
		{"create", "secrets", "-n", systemNamespace},
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/" + webhookConfigurationName},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/" + webhookConfigurationName},
		{"get", "leases.coordination.k8s.io/" + webhookLeaseName, "-n", systemNamespace},
		{"update", "leases.coordination.k8s.io/" + webhookLeaseName, "-n", systemNamespace},
		{"create", "leases.coordination.k8s.io", "-n", systemNamespace},
		{"create", "events", "-n", systemNamespace},
		{"patch", "events", "-n", systemNamespace},
	} {
		if got := canI(t, as, allow...); got != "yes" {
			t.Errorf("kubectl auth can-i %s as the webhook: %q, want yes", strings.Join(allow, " "), got)
		}
	}
	out, err := kubectlWith(webhookKubeconfig, nil, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || strings.TrimSpace(out) != "system:serviceaccount:"+systemNamespace+":"+webhookServiceAccount {
		t.Errorf("kubectl auth whoami with the webhook's kubeconfig: %q, %v", out, err)
	}
}

// TestWebhookAndControllerAreIndependent: two processes, neither needs the other. With the
// webhook killed, the operator keeps reconciling (status is written through the status
// subresource, which no webhook intercepts) while policy writes are refused (failurePolicy
// Fail: the operator does not serve admission); with the operator killed, a new webhook
// process answers - denials, and conflict warnings from its own informer.
func TestWebhookAndControllerAreIndependent(t *testing.T) {
	setBehavior(t, "ctl-ha-ok", "normal")
	t.Cleanup(func() { setBehavior(t, "ctl-ha-ok", "normal") })
	w := startWebhooks(t)
	c := startController(t, "independent")
	waitLeader(t, c, 40*time.Second) // a Lease left by an earlier test expires within 10s

	name := uniqueName("ctl-indep")
	applyPolicy(t, name, policyYAML(name, "ha", "10s", ruleStreaming))
	ncOnly := map[string]wantNode{"ctl-ha-nc": {"NonCompliant", []string{"streaming-connection-idle-timeout"}}}
	waitStatus(t, name, 60*time.Second, want{selected: 2, compliant: 1, nonCompliant: 1, nodes: ncOnly,
		failing: map[string]int{"streaming-connection-idle-timeout": 1}, compliantCond: "False"})

	// The webhook dies: policy writes are refused (nothing else serves admission), and the
	// operator still checks the nodes and writes status.
	w.signal(syscall.SIGKILL)
	<-w.done
	_, stderr, err := kubectlStdin(t, []byte(policyYAML(uniqueName("ctl-indep-refused"), "ha", "10s", ruleStreaming)), "apply", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(stderr, "failed calling webhook") {
		t.Errorf("a policy write with the webhook down: %v %s; want it refused by failurePolicy Fail", err, stderr)
	}
	setBehavior(t, "ctl-ha-ok", "garbage")
	d := waitStatus(t, name, 40*time.Second, want{selected: 2, compliant: 0, nonCompliant: 1, unknown: 1,
		nodes:   map[string]wantNode{"ctl-ha-nc": ncOnly["ctl-ha-nc"], "ctl-ha-ok": {"Unknown", nil}},
		failing: map[string]int{"streaming-connection-idle-timeout": 1}, compliantCond: "False"})
	t.Logf("with the webhook down, the operator reported ctl-ha-ok Unknown %.1fs after its kubelet turned to garbage", d.Seconds())
	if c.exited() {
		t.Fatalf("the controller exited when the webhook died: %v", c.waitErr)
	}
	setBehavior(t, "ctl-ha-ok", "normal")

	// The operator dies; a new webhook process serves on its own: it denies what only it can
	// see, and warns about a conflict with the policy above, read from its own informer.
	c.signal(syscall.SIGKILL)
	<-c.done
	w2 := startNamedWebhooks(t, "webhooks-again") // waits until the API server calls it
	conflicting := uniqueName("ctl-indep-conflict")
	manifest := policyYAML(conflicting, "ha", "10s", `    - id: streaming-connection-idle-timeout
      config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: 0s}
      remediation: {value: 1h0m0s}
`)
	// The policy above has no remediation value: give it one that differs, so both would
	// remediate the same field on the same nodes.
	firstWithValue := policyYAML(name, "ha", "10s", `    - id: streaming-connection-idle-timeout
      severity: Low
      config: {path: streamingConnectionIdleTimeout, operator: NotEquals, value: 0s}
      remediation: {value: 4h0m0s}
`)
	if _, stderr, err := kubectlStdin(t, []byte(firstWithValue), "apply", "-f", "-"); err != nil {
		t.Fatalf("updating %s with the operator down: %v\n%s", name, err, stderr)
	}
	eventually(t, 30*time.Second, "a conflict warning naming "+name, func() error {
		_, stderr, err := kubectlStdin(t, []byte(manifest), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			return fmt.Errorf("refused: %v %s", err, stderr)
		}
		if !strings.Contains(stderr, `KubeletPolicy "`+name+`"`) {
			return fmt.Errorf("no conflict warning yet: %q", stderr)
		}
		return nil
	})
	if w2.exited() {
		t.Fatalf("the new webhook exited: %v", w2.waitErr)
	}
}
