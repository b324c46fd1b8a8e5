package deploytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// fluxHealth evaluates Flux healthCheckExprs on an object the way kustomize-controller does
// (RFC 0009): a stale status.observedGeneration is InProgress; then inProgress, failed,
// current in that order, the first true one wins; none true is InProgress. The expressions
// are parsed (not type-checked) in a CEL environment with optional types and the string, set
// and encoder extensions, and evaluated with the object's top-level fields as variables. An
// evaluation error (e.g. no status yet) is returned: Flux keeps waiting until its timeout.
func fluxHealth(t *testing.T, exprs map[string]string, o obj) (string, error) {
	t.Helper()
	if st, ok := o["status"].(obj); ok {
		if og, ok := st["observedGeneration"]; ok && og != get(o, "metadata", "generation") {
			return "InProgress", nil
		}
	}
	env, err := cel.NewEnv(cel.HomogeneousAggregateLiterals(), cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true), cel.CrossTypeNumericComparisons(true), cel.OptionalTypes(),
		ext.Strings(), ext.Sets(), ext.Encoders())
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []struct{ key, status string }{{"inProgress", "InProgress"}, {"failed", "Failed"}, {"current", "Current"}} {
		src, ok := exprs[phase.key]
		if !ok {
			continue
		}
		ast, iss := env.Parse(src)
		if iss != nil && iss.Err() != nil {
			t.Fatalf("%s: %v", phase.key, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatalf("%s: %v", phase.key, err)
		}
		v, _, err := prg.Eval(map[string]any(o))
		if err != nil {
			return "", err
		}
		b, ok := v.(types.Bool)
		if !ok {
			t.Fatalf("%s: %q is not a boolean expression", phase.key, src)
		}
		if b {
			return phase.status, nil
		}
	}
	return "InProgress", nil
}

// TestFluxHealthCheckExprs evaluates the healthCheckExprs of deploy/gitops/flux on the same
// fixtures as the Argo CD check: Healthy/Suspended -> Current, Degraded -> Failed,
// Progressing -> InProgress (or, with no status at all, an evaluation error: Flux waits).
func TestFluxHealthCheckExprs(t *testing.T) {
	b, err := os.ReadFile(repoPath("deploy", "gitops", "flux", "kubelet-policy-controller.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	var exprs map[string]string
	var healthChecks []any
	for _, d := range docs {
		if d["kind"] == "Kustomization" && str(d, "metadata", "name") == "kubelet-policies" {
			healthChecks, _ = get(d, "spec", "healthChecks").([]any)
			for _, e := range get(d, "spec", "healthCheckExprs").([]any) {
				if e.(obj)["kind"] == "KubeletPolicy" {
					exprs = map[string]string{}
					for k, v := range e.(obj) {
						if s, ok := v.(string); ok && k != "apiVersion" && k != "kind" {
							exprs[k] = s
						}
					}
				}
			}
		}
	}
	if exprs == nil || exprs["current"] == "" {
		t.Fatal("no healthCheckExprs for KubeletPolicy in the kubelet-policies Kustomization")
	}
	// The health-checked policies are the samples the Kustomization applies.
	for _, hc := range healthChecks {
		name := str(hc.(obj), "name")
		found := false
		files, _ := filepath.Glob(repoPath("deploy", "samples", "*.yaml"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			objs, _ := decodeObjects(data)
			for _, o := range objs {
				found = found || (o["kind"] == "KubeletPolicy" && str(o, "metadata", "name") == name)
			}
		}
		if !found {
			t.Errorf("healthChecks names KubeletPolicy %s, which deploy/samples does not define", name)
		}
	}
	want := map[string]string{"Healthy": "Current", "Suspended": "Current", "Degraded": "Failed", "Progressing": "InProgress"}
	files, _ := filepath.Glob(filepath.Join(argoDir, "testdata", "*.yaml"))
	if len(files) < 5 {
		t.Fatalf("fixtures: %v", files)
	}
	script := readHealthScript(t)
	for _, f := range files {
		data, _ := os.ReadFile(f)
		objs, err := decodeObjects(data)
		if err != nil {
			t.Fatal(err)
		}
		argo := runHealthLua(t, script, objs[0]).Status
		got, err := fluxHealth(t, exprs, objs[0])
		switch {
		case err != nil && get(objs[0], "status") == nil:
			t.Logf("%s: no status: evaluation error (Flux waits): %v", filepath.Base(f), err)
		case err != nil:
			t.Errorf("%s: %v", filepath.Base(f), err)
		case got != want[argo]:
			t.Errorf("%s: Flux %s, want %s (Argo CD says %s)", filepath.Base(f), got, want[argo], argo)
		default:
			t.Logf("%s: Flux %s, Argo CD %s", filepath.Base(f), got, argo)
		}
		if strings.HasPrefix(filepath.Base(f), "progressing-no-status") && err == nil && got == "Current" {
			t.Errorf("a policy without status must not be Current")
		}
	}
}
