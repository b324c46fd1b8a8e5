package tests

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestZZDownLeavesNoProcess runs last (tests run in file order): it stops the shared
// environment and checks that no recorded process survives. Skipped when the
// environment was supplied by the caller (KPC_TESTENV_STATE) or is to be kept.
func TestZZDownLeavesNoProcess(t *testing.T) {
	if os.Getenv("KPC_TESTENV_STATE") != "" || os.Getenv("KPC_TESTENV_KEEP") != "" {
		t.Skip("environment owned by the caller")
	}
	pids := readPIDs(t)
	if len(pids) < 4 {
		t.Fatalf("recorded pids: %v", pids)
	}
	if out, err := execScript("down", "--state", stateDir).CombinedOutput(); err != nil {
		t.Fatalf("down: %v %s", err, out)
	}
	for name, p := range pids {
		pid, _ := strconv.Atoi(p)
		// A zombie waiting for init to reap it is not running; give init a moment.
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := os.ReadFile("/proc/" + p + "/stat")
			if syscall.Kill(pid, 0) != nil || err != nil {
				break
			}
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s (pid %d) still running after down: %s", name, pid, st)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	entries, _ := os.ReadDir(stateDir + "/run/containers")
	for _, e := range entries {
		t.Errorf("container process %s left behind", e.Name())
	}
	// down is idempotent.
	if out, err := execScript("down", "--state", stateDir).CombinedOutput(); err != nil {
		t.Errorf("second down: %v %s", err, out)
	}
}
