package deploytest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The controller binary accepts every argument the install passes it (kustomize overlays and
// the Helm chart with its default values): an unknown or misspelled flag would crash-loop the
// Deployment. The binary is started with the rendered args and a kubeconfig that does not
// exist; it must get past flag parsing and fail on the kubeconfig.
func TestDeploymentArgsAreAcceptedByTheBinary(t *testing.T) {
	bin := os.Getenv("KPC_BINARY")
	if bin == "" {
		t.Skip("KPC_BINARY is not set (scripts/test.sh and e2e/run.sh set it)")
	}
	for _, o := range []string{"deploy/overlays/self-managed", "deploy/overlays/cert-manager"} {
		c := controllerContainer(t, kustomizeBuild(t, repoPath(o)))
		var argv []string
		for _, a := range args(c) {
			argv = append(argv, strings.ReplaceAll(a, "$(KPC_AGENT_IMAGE)", "kubelet-policy-controller:test"))
		}
		argv = append(argv, "--kubeconfig", "/nonexistent/kubeconfig", "--log-format", "text")
		out, err := exec.Command(bin, argv...).CombinedOutput()
		if err == nil {
			t.Fatalf("%s: %v exited 0 without a kubeconfig", o, argv)
		}
		if !strings.Contains(string(out), "/nonexistent/kubeconfig") || strings.Contains(string(out), "unknown flag") {
			t.Errorf("%s: the binary refused the Deployment's args %v:\n%s", o, argv, out)
		}
	}
}
