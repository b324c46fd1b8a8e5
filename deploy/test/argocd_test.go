package deploytest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var argoDir = repoPath("deploy", "gitops", "argocd", "resource_customizations", "kubeletpolicy.io", "KubeletPolicy")

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// runHealthLua runs an Argo CD health script the way Argo CD does: a fresh gopher-lua state,
// the object as the global `obj` (a Lua table built from its JSON form), and the returned
// table's status and message.
func runHealthLua(t *testing.T, script string, o obj) healthStatus {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	// The libraries Argo CD opens for resource customizations.
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, o))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", L.Get(-1).Type())
	}
	hs := healthStatus{}
	if s, ok := ret.RawGetString("status").(lua.LString); ok {
		hs.Status = string(s)
	}
	if m, ok := ret.RawGetString("message").(lua.LString); ok {
		hs.Message = string(m)
	}
	switch hs.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		t.Fatalf("health.lua returned status %q, not an Argo CD health status", hs.Status)
	}
	return hs
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		tb := L.NewTable()
		for _, e := range x {
			tb.Append(toLua(L, e))
		}
		return tb
	case map[string]any:
		tb := L.NewTable()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tb.RawSetString(k, toLua(L, x[k]))
		}
		return tb
	}
	panic("unexpected JSON type")
}

func readHealthScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(argoDir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestArgoCDHealthCheck runs health.lua on every fixture of health_test.yaml (Argo CD's own
// test format) and checks that Healthy, Progressing, Degraded and "no status" are covered.
func TestArgoCDHealthCheck(t *testing.T) {
	script := readHealthScript(t)
	b, err := os.ReadFile(filepath.Join(argoDir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Tests []struct {
			HealthStatus healthStatus `json:"healthStatus"`
			InputPath    string       `json:"inputPath"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tc := range spec.Tests {
		t.Run(filepath.Base(tc.InputPath), func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(argoDir, tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decodeObjects(in)
			if err != nil || len(objs) != 1 {
				t.Fatalf("%s: want one object: %v", tc.InputPath, err)
			}
			got := runHealthLua(t, script, objs[0])
			if got != tc.HealthStatus {
				t.Errorf("got %+v, want %+v", got, tc.HealthStatus)
			}
			seen[got.Status] = true
			if get(objs[0], "status") == nil {
				seen["no status"] = true
			}
		})
	}
	for _, want := range []string{"Healthy", "Progressing", "Degraded", "Suspended", "no status"} {
		if !seen[want] {
			t.Errorf("no fixture covers %s", want)
		}
	}
}

// TestArgoCDConfigMapSnippet: argocd-cm.yaml carries health.lua verbatim under the key Argo CD
// reads (resource.customizations.health.<group>_<kind>).
func TestArgoCDConfigMapSnippet(t *testing.T) {
	b, err := os.ReadFile(repoPath("deploy", "gitops", "argocd", "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(b)
	if err != nil || len(objs) != 1 {
		t.Fatalf("argocd-cm.yaml: want one object: %v", err)
	}
	cm := objs[0]
	if str(cm, "kind") != "ConfigMap" || str(cm, "metadata", "name") != "argocd-cm" {
		t.Fatalf("argocd-cm.yaml is %s", key(cm))
	}
	script := readHealthScript(t)
	if os.Getenv("KPC_UPDATE_GOLDEN") != "" {
		// Keep everything up to the key, then the script as a literal block.
		const k = "  resource.customizations.health.kubeletpolicy.io_KubeletPolicy: |\n"
		head, _, found := strings.Cut(string(b), k)
		if !found {
			t.Fatal("argocd-cm.yaml: no health key")
		}
		var out strings.Builder
		out.WriteString(head + k)
		for _, line := range strings.SplitAfter(script, "\n") {
			if strings.TrimSpace(line) != "" {
				out.WriteString("    ")
			}
			out.WriteString(line)
		}
		if err := os.WriteFile(repoPath("deploy", "gitops", "argocd", "argocd-cm.yaml"), []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := str(cm, "data", "resource.customizations.health.kubeletpolicy.io_KubeletPolicy"); got != script {
		t.Errorf("argocd-cm.yaml's script differs from health.lua (KPC_UPDATE_GOLDEN=1 rewrites it)")
	}
}
