package deploytest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileRuntimeLibraries: there is no container engine here to build the image, so
// this checks the Dockerfile against the binary built on this (Debian) machine: every shared
// library the binary needs directly (ELF NEEDED entries) comes from a Debian package that the
// runtime stage installs or that debian:*-slim already has. KPC_BINARY names the binary
// (e2e/run.sh sets it); without it the test is skipped.
func TestDockerfileRuntimeLibraries(t *testing.T) {
	bin := os.Getenv("KPC_BINARY")
	if bin == "" {
		t.Skip("KPC_BINARY is not set: skipping the Dockerfile's runtime library check")
	}
	for _, tool := range []string{"readelf", "dpkg", "ldconfig"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	df, err := os.ReadFile(repoPath("deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := strings.Split(string(df), "\nFROM ")
	runtime := stages[len(stages)-1]
	install := regexp.MustCompile(`(?s)apt-get install[^\n]*--no-install-recommends(.*?)&&`).FindStringSubmatch(runtime)
	if install == nil {
		t.Fatal("no apt-get install in the runtime stage")
	}
	have := map[string]bool{"libc6": true, "libstdc++6": true, "libgcc-s1": true} // in debian:*-slim
	for _, p := range strings.Fields(strings.ReplaceAll(install[1], "\\", " ")) {
		have[p] = true
	}
	if !have["util-linux"] {
		t.Error("the runtime stage must install util-linux (nsenter)")
	}
	out, err := exec.Command("readelf", "-d", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := exec.Command("ldconfig", "-p").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\(NEEDED\)\s+Shared library: \[([^\]]+)\]`).FindAllStringSubmatch(string(out), -1) {
		lib := m[1]
		path := ""
		for _, line := range strings.Split(string(cache), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == lib {
				if path == "" || strings.Contains(line, "x86-64") { // the native one, when several
					path = f[len(f)-1]
				}
			}
		}
		if path == "" {
			t.Errorf("%s: not in the linker cache", lib)
			continue
		}
		owner, err := exec.Command("dpkg", "-S", path).Output()
		if err != nil {
			// usrmerge: the package may own the /lib path of a /usr/lib file or the reverse.
			alt := strings.TrimPrefix(path, "/usr")
			if alt == path {
				alt = "/usr" + path
			}
			if owner, err = exec.Command("dpkg", "-S", alt).Output(); err != nil {
				t.Errorf("%s (%s): no Debian package owns it", lib, path)
				continue
			}
		}
		pkg := strings.SplitN(strings.SplitN(string(owner), ":", 2)[0], ",", 2)[0]
		if !have[pkg] {
			t.Errorf("%s comes from the Debian package %s, which the runtime stage does not install", lib, pkg)
		} else {
			t.Logf("%s: %s", lib, pkg)
		}
	}
}
