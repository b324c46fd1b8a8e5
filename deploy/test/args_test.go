package deploytest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The binary accepts every argument the install passes it (kustomize overlays, the Helm chart
// with its default values, and the apiserver-proxy opt-in), for both Deployments: the
// operator (`run`) and the admission webhooks (`webhook`). An unknown or misspelled flag would
// crash-loop a Deployment. The binary is started with the rendered args and a kubeconfig that
// does not exist; it must get past flag parsing and fail on the kubeconfig.
func TestDeploymentArgsAreAcceptedByTheBinary(t *testing.T) {
	bin := os.Getenv("KPC_BINARY")
	if bin == "" {
		t.Skip("KPC_BINARY is not set (scripts/test.sh and e2e/run.sh set it)")
	}
	renderings := map[string][]obj{}
	for _, o := range []string{"deploy/overlays/self-managed", "deploy/overlays/cert-manager"} {
		renderings[o] = kustomizeBuild(t, repoPath(o))
	}
	renderings["deploy/components/apiserver-proxy"] = composeWithComponent(t, "deploy/overlays/self-managed", "deploy/components/apiserver-proxy")
	for o, objs := range renderings {
		for _, c := range []obj{controllerContainer(t, objs), webhookContainer(t, objs)} {
			var argv []string
			for _, a := range args(c) {
				argv = append(argv, strings.ReplaceAll(a, "$(KPC_AGENT_IMAGE)", "kubelet-policy-controller:test"))
			}
			argv = append(argv, "--kubeconfig", "/nonexistent/kubeconfig", "--log-format", "text")
			out, err := exec.Command(bin, argv...).CombinedOutput()
			if err == nil {
				t.Fatalf("%s: %v exited 0 without a kubeconfig", o, argv)
			}
			if !strings.Contains(string(out), "/nonexistent/kubeconfig") || strings.Contains(string(out), "unknown flag") ||
				strings.Contains(string(out), "moved to") {
				t.Errorf("%s: the binary refused the %s container's args %v:\n%s", o, c["name"], argv, out)
			}
		}
	}
}
