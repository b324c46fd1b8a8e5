// Package controllertests drives `kubelet-policy-controller run` (the operator) and
// `kubelet-policy-controller webhook` (the admission webhooks) end to end, like a user: against
// a real e2e/testenv control plane, with kubectl (apply, get, wait, get events), each process
// running out of cluster as its own ServiceAccount with the RBAC from deploy/.
//
//	cd e2e/testenv && go test ./controllertests/ -v -count=1
//
// Environment:
//
//	KPC_TESTENV_STATE=DIR  use the environment in DIR (started by the caller with
//	                       `up --nodes-dir` including controllertests/nodes/); started here
//	                       when it is not running. Without it a fresh one is started in /tmp
//	                       and stopped at the end.
//	KPC_TESTENV_KEEP=1     leave an environment started here running.
//	KPC_BINARY=PATH        the kubelet-policy-controller binary; default: scripts/build.sh.
//	KPC_UPDATE_GOLDEN=1    rewrite testdata/*.golden from the live cluster (both ServiceAccounts).
//
// Every node these tests use is named ctl-* and labelled e2e=controller plus e2e-pool=<test>
// (nodes/*.yaml); every policy is labelled kpc-e2e=controllertests and selects only its pool.
package controllertests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	pkgDir            string // e2e/testenv/controllertests
	testenvDir        string // e2e/testenv
	repoRoot          string
	stateDir          string
	kubeconfig        string // admin
	saKubeconfig      string // the controller's ServiceAccount
	webhookKubeconfig string // the webhook's ServiceAccount
	controllerBinary  string
	workDir           string
)

const (
	systemNamespace = "kubelet-policy-system"
	serviceAccount  = "kubelet-policy-controller"
	leaseName       = "kubelet-policy-controller"
	// The admission webhooks' own identity and Lease (`kubelet-policy-controller webhook`).
	webhookServiceAccount = "kubelet-policy-controller-webhook"
	webhookLeaseName      = "kubelet-policy-controller-webhook"
	policyLabel           = "kpc-e2e=controllertests"
	// Both the ValidatingWebhookConfiguration and the MutatingWebhookConfiguration.
	webhookConfigurationName = "kubelet-policy-controller"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "controllertests: "+format+"\n", a...) }

func testMain(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	pkgDir = filepath.Dir(file)
	testenvDir = filepath.Dir(pkgDir)
	repoRoot = filepath.Dir(filepath.Dir(testenvDir))
	var err error
	if workDir, err = os.MkdirTemp("", "kpc-ctl-work-"); err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(workDir)

	if controllerBinary, err = resolveBinary(); err != nil {
		logf("controller binary: %v", err)
		return 1
	}
	logf("controller binary %s", controllerBinary)

	owned := false
	keep := os.Getenv("KPC_TESTENV_KEEP") != ""
	stateDir = os.Getenv("KPC_TESTENV_STATE")
	if stateDir == "" {
		// Short on purpose: Unix socket paths under the state dir must stay below 108 bytes.
		d, err := os.MkdirTemp("/tmp", "kpc-ctl-")
		if err != nil {
			logf("%v", err)
			return 1
		}
		if !keep {
			defer os.RemoveAll(d)
		}
		stateDir = filepath.Join(d, "state")
		owned = true
	}
	if owned {
		defer func() {
			if keep {
				logf("KPC_TESTENV_KEEP is set: the environment keeps running in %s (stop it with e2e/testenv/down --state %s)", stateDir, stateDir)
				return
			}
			cmd := exec.Command(filepath.Join(testenvDir, "down"), "--state", stateDir)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			_ = cmd.Run()
		}()
	}
	t0 := time.Now()
	cmd := exec.Command(filepath.Join(testenvDir, "up"), "--state", stateDir, "--nodes-dir", filepath.Join(pkgDir, "nodes"))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		logf("up failed: %v", err)
		return 1
	}
	kubeconfig = lastLine(stdout.String())
	logf("environment %s ready in %.1fs", stateDir, time.Since(t0).Seconds())
	if err := setUp(); err != nil {
		logf("setup failed: %v", err)
		return 1
	}
	return m.Run()
}

// resolveBinary returns KPC_BINARY, or builds the project and snapshots the binary into
// workDir (the shared build tree may be rebuilt by someone else while the tests run).
func resolveBinary() (string, error) {
	if b := os.Getenv("KPC_BINARY"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("KPC_BINARY: %v", err)
		}
		return b, nil
	}
	var out string
	var err error
	for attempt := 0; attempt < 3; attempt++ { // "Text file busy" when another build runs in the same tree
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "build.sh"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err = cmd.Run(); err == nil {
			out = lastLine(stdout.String())
			break
		}
		err = fmt.Errorf("scripts/build.sh: %v\n%s", err, tail(stderr.String(), 40))
		time.Sleep(5 * time.Second)
	}
	if err != nil {
		return "", err
	}
	src := filepath.Join(out, "kubelet-policy-controller")
	dst := filepath.Join(workDir, "kubelet-policy-controller")
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return "", err
	}
	return dst, f.Close()
}

// setUp installs the CRD and RBAC from deploy/ (the out-of-cluster overlay: no Deployments,
// no Service-backed webhooks), writes a kubeconfig for each ServiceAccount (the controller's
// and the webhook's) and checks that the environment has this package's nodes.
func setUp() error {
	// The out-of-cluster install has no admission webhook configurations (they call the
	// in-cluster Service, and nothing serves it here); ones left behind by an interrupted run
	// (pointing at a dead local port, or rewritten by --local-webhooks) are removed, before and
	// after the apply. The webhook tests install them for themselves.
	deleteWebhooks := func() error {
		if out, err := kubectlRaw(nil, "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", webhookConfigurationName, "--ignore-not-found"); err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
	if err := deleteWebhooks(); err != nil {
		return err
	}
	if out, err := kubectlRaw(nil, "apply", "--server-side", "-k", filepath.Join(repoRoot, "deploy", "overlays", "out-of-cluster")); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	if err := deleteWebhooks(); err != nil {
		return err
	}
	if out, err := kubectlRaw(nil, "wait", "--for=condition=Established", "crd/kubeletpolicies.kubeletpolicy.io", "--timeout=60s"); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	// Leftovers of an interrupted run against a reused environment.
	if out, err := kubectlRaw(nil, "delete", "kubeletpolicies", "-l", policyLabel, "--ignore-not-found", "--wait=true"); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	saKubeconfig = filepath.Join(workDir, "sa.kubeconfig")
	webhookKubeconfig = filepath.Join(workDir, "webhook.kubeconfig")
	for kc, sa := range map[string]string{saKubeconfig: serviceAccount, webhookKubeconfig: webhookServiceAccount} {
		cmd := exec.Command(filepath.Join(testenvDir, "kubeconfig-for-sa"), "--state", stateDir, "--out", kc, systemNamespace, sa)
		cmd.Env = append(os.Environ(), "KPC_TESTENV_STATE="+stateDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("kubeconfig-for-sa %s: %v\n%s", sa, err, out)
		}
	}
	specs, _ := filepath.Glob(filepath.Join(pkgDir, "nodes", "*.yaml"))
	out, err := kubectlRaw(nil, "get", "nodes", "-l", "e2e=controller", "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	have := map[string]bool{}
	for _, n := range strings.Fields(out) {
		have[n] = true
	}
	var missing []string
	for _, s := range specs {
		n := strings.TrimSuffix(filepath.Base(s), ".yaml")
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the environment in %s lacks nodes %v: start it with `up --nodes-dir` including %s",
			stateDir, missing, filepath.Join(pkgDir, "nodes"))
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubectlRaw runs the bundled kubectl as admin; stdin may be nil.
func kubectlRaw(stdin []byte, args ...string) (string, error) {
	return kubectlWith(kubeconfig, stdin, args...)
}

// kubectlSplit runs the bundled kubectl with a kubeconfig and returns stdout and stderr
// separately (kubectl prints admission warnings on stderr, also when the command succeeds).
func kubectlSplit(kc string, stdin []byte, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testenvDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "KPC_TESTENV_STATE="+stateDir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func kubectlWith(kc string, stdin []byte, args ...string) (string, error) {
	out, errb, err := kubectlSplit(kc, stdin, args...)
	if err != nil {
		return out + errb, fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb))
	}
	return out, nil
}

func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return kubectlRaw(nil, args...)
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectlRaw(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls fn until it returns nil; fails the test with fn's last error at the deadline.
// It returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
