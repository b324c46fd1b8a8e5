package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

func execScript(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(scriptDir, name), args...)
	cmd.Env = append(os.Environ(), "KPC_TESTENV_STATE="+stateDir)
	return cmd
}

// kubectlAs runs the bundled kubectl with another kubeconfig.
func kubectlAs(kc string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(scriptDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "KPC_TESTENV_STATE="+stateDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}
