// Package deploytest checks what deploy/ ships: the kustomize overlays, the Helm chart (lint,
// render, and equality with kustomize), the Argo CD health check (Lua, run with gopher-lua as
// Argo CD does), and - against a running e2e/testenv control plane - server-side apply of
// every overlay and kstatus of live KubeletPolicy objects.
//
//	cd deploy/test && go test ./ -count=1 -v                                  # offline tests
//	KPC_TESTENV_STATE=/tmp/kpc-deploy-env go test ./ -count=1 -v              # + live tests
//
// KPC_TESTENV_STATE names a running environment (`e2e/testenv/up --state DIR`); without it
// the live tests are skipped, saying so.
package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository's top directory (deploy/test/../..).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

func repoPath(parts ...string) string {
	return filepath.Join(append([]string{repoRoot()}, parts...)...)
}

// obj is one decoded Kubernetes object (JSON types: map[string]any, []any, float64, ...).
type obj = map[string]any

// decodeObjects splits a multi-document YAML (or JSON) stream into objects, skipping empty
// documents.
func decodeObjects(data []byte) ([]obj, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []obj
	for {
		var o obj
		if err := dec.Decode(&o); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, err
		}
		if len(o) == 0 {
			continue
		}
		// One JSON round trip, so every number is a float64 whatever the source.
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		var n obj
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
}

// kustomizeBuild runs kustomize (the library kubectl embeds) on a directory.
func kustomizeBuild(t *testing.T, dir string) []obj {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(y)
	if err != nil {
		t.Fatalf("kustomize build %s: decoding the output: %v", dir, err)
	}
	return objs
}

func str(o obj, path ...string) string {
	v, _ := get(o, path...).(string)
	return v
}

func get(o any, path ...string) any {
	cur := o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func key(o obj) string {
	return fmt.Sprintf("%s %s %s/%s", str(o, "apiVersion"), str(o, "kind"), str(o, "metadata", "namespace"), str(o, "metadata", "name"))
}

func byKey(objs []obj) map[string]obj {
	m := map[string]obj{}
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func find(t *testing.T, objs []obj, kind, name string) obj {
	t.Helper()
	for _, o := range objs {
		if str(o, "kind") == kind && str(o, "metadata", "name") == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %d objects", kind, name, len(objs))
	return nil
}

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// --- the live environment -------------------------------------------------------------

type liveEnv struct {
	state string
}

// needEnv returns the running e2e/testenv named by KPC_TESTENV_STATE, or skips the test.
func needEnv(t *testing.T) *liveEnv {
	t.Helper()
	state := os.Getenv("KPC_TESTENV_STATE")
	if state == "" {
		t.Skip("KPC_TESTENV_STATE is not set: skipping the tests against a live control plane " +
			"(start one with `e2e/testenv/up --state DIR` and set KPC_TESTENV_STATE=DIR)")
	}
	env := &liveEnv{state: state}
	if out, err := env.kubectl(nil, "get", "--raw", "/readyz"); err != nil {
		t.Fatalf("KPC_TESTENV_STATE=%s: the API server is not ready (is the environment running?): %v\n%s", state, err, out)
	}
	return env
}

// kubectl runs the bundled kubectl (e2e/testenv/kubectl) as admin; stdin may be nil.
// It returns stdout, and stdout+stderr on failure.
func (e *liveEnv) kubectl(stdin []byte, args ...string) (string, error) {
	out, _, err := e.kubectl2(stdin, args...)
	return out, err
}

// kubectl2 returns stdout and stderr apart (warnings go to stderr).
func (e *liveEnv) kubectl2(stdin []byte, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, repoPath("e2e", "testenv", "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KPC_TESTENV_STATE="+e.state, "KUBECONFIG="+filepath.Join(e.state, "kubeconfig"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), errb.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), nil
}

func (e *liveEnv) mustKubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, err := e.kubectl(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
