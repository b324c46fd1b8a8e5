package deploytest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// grants lists, for each ServiceAccount bound in a rendering, every right its bindings give
// it, one line per API group, resource and rule: "SCOPE GROUP/RESOURCE[NAMES] VERBS", where
// SCOPE is "cluster" or the namespace of a Role. Sorted. Bindings that name a missing role, or
// a subject that is not a ServiceAccount, are errors.
func grants(t *testing.T, what string, objs []obj) map[string][]string {
	t.Helper()
	roles := map[string]obj{}
	for _, o := range objs {
		if o["kind"] == "ClusterRole" || o["kind"] == "Role" {
			roles[str(o, "kind")+"/"+str(o, "metadata", "namespace")+"/"+str(o, "metadata", "name")] = o
		}
	}
	out := map[string][]string{}
	for _, b := range objs {
		if b["kind"] != "ClusterRoleBinding" && b["kind"] != "RoleBinding" {
			continue
		}
		ns := str(b, "metadata", "namespace")
		roleNS, scope := ns, ns
		if str(b, "roleRef", "kind") == "ClusterRole" {
			roleNS = ""
		}
		if b["kind"] == "ClusterRoleBinding" {
			scope = "cluster"
		}
		role, ok := roles[str(b, "roleRef", "kind")+"/"+roleNS+"/"+str(b, "roleRef", "name")]
		if !ok {
			t.Errorf("%s: %s binds the missing %s %s", what, key(b), str(b, "roleRef", "kind"), str(b, "roleRef", "name"))
			continue
		}
		for _, s := range b["subjects"].([]any) {
			subj := s.(obj)
			if subj["kind"] != "ServiceAccount" {
				t.Errorf("%s: %s binds %v", what, key(b), subj)
				continue
			}
			sa := str(subj, "namespace") + "/" + str(subj, "name")
			for _, r := range role["rules"].([]any) {
				rule := r.(obj)
				var names []string
				if rn, ok := rule["resourceNames"].([]any); ok {
					for _, n := range rn {
						names = append(names, n.(string))
					}
				}
				var verbs []string
				for _, v := range rule["verbs"].([]any) {
					verbs = append(verbs, v.(string))
				}
				for _, g := range rule["apiGroups"].([]any) {
					for _, res := range rule["resources"].([]any) {
						line := scope + " " + g.(string) + "/" + res.(string)
						if len(names) > 0 {
							line += "[" + strings.Join(names, ",") + "]"
						}
						out[sa] = append(out[sa], line+" "+strings.Join(verbs, ","))
					}
				}
			}
		}
	}
	for sa := range out {
		sort.Strings(out[sa])
	}
	return out
}

// The rights each process needs, nothing else (README "RBAC").
func wantGrants(mode string, apiserverProxy bool, remediationNamespace string) map[string][]string {
	operator := []string{
		"cluster kubeletpolicy.io/kubeletpolicies get,list,watch",
		"cluster kubeletpolicy.io/kubeletpolicies/status get,update,patch",
		"cluster /nodes get,list,watch",
		"cluster /events create,patch",
		systemNS + " /serviceaccounts/token[kubelet-policy-controller-kubelet-client] create",
		systemNS + " coordination.k8s.io/leases[kubelet-policy-controller] get,update",
		systemNS + " coordination.k8s.io/leases create",
		remediationNamespace + " batch/jobs get,list,watch,create,patch,delete",
		remediationNamespace + " /pods get,list,watch",
	}
	if apiserverProxy {
		operator = append(operator, "cluster /nodes/proxy get")
	}
	webhook := []string{"cluster kubeletpolicy.io/kubeletpolicies get,list,watch"}
	if mode == "self-managed" {
		webhook = append(webhook,
			"cluster admissionregistration.k8s.io/validatingwebhookconfigurations[kubelet-policy-controller] get,update",
			"cluster admissionregistration.k8s.io/mutatingwebhookconfigurations[kubelet-policy-controller] get,update",
			systemNS+" /secrets[kubelet-policy-controller-webhook-tls] get,update",
			systemNS+" /secrets create",
			systemNS+" coordination.k8s.io/leases[kubelet-policy-controller-webhook] get,update",
			systemNS+" coordination.k8s.io/leases create",
			systemNS+" /events create,patch",
		)
	}
	sort.Strings(operator)
	sort.Strings(webhook)
	return map[string][]string{
		systemNS + "/" + controllerName: operator,
		systemNS + "/" + webhookName:    webhook,
		// Tokens of it are what kubelets see: it may read /configz and nothing else.
		systemNS + "/" + kubeletClientName: {"cluster /nodes/configz get"},
	}
}

// checkRBAC: exactly wantGrants for the three ServiceAccounts, no other subject, no wildcard, and
// nodes/proxy only with the apiserver-proxy opt-in.
func checkRBAC(t *testing.T, what string, objs []obj, mode string, apiserverProxy bool) {
	t.Helper()
	checkRBACIn(t, what, objs, mode, apiserverProxy, remediationNS)
}

func checkRBACIn(t *testing.T, what string, objs []obj, mode string, apiserverProxy bool, remediationNamespace string) {
	t.Helper()
	got := grants(t, what, objs)
	want := wantGrants(mode, apiserverProxy, remediationNamespace)
	for _, sa := range sortedKeys(got) {
		if _, ok := want[sa]; !ok {
			t.Errorf("%s: rights granted to an unexpected ServiceAccount %s: %v", what, sa, got[sa])
		}
	}
	for _, sa := range sortedKeys(want) {
		if g := strings.Join(got[sa], "\n"); g != strings.Join(want[sa], "\n") {
			t.Errorf("%s: %s may\n%s\nwant exactly\n%s", what, sa, g, strings.Join(want[sa], "\n"))
		}
	}
	for _, x := range objs {
		if x["kind"] != "ClusterRole" && x["kind"] != "Role" {
			continue
		}
		for _, r := range x["rules"].([]any) {
			for _, f := range []string{"apiGroups", "resources", "verbs"} {
				for _, v := range r.(obj)[f].([]any) {
					if strings.Contains(v.(string), "*") {
						t.Errorf("%s: %s has a wildcard %s: %v", what, key(x), f, r)
					}
				}
			}
		}
	}
	if !apiserverProxy {
		checkNoNodesProxy(t, what, objs)
	}
}

// checkNoNodesProxy: no Role or ClusterRole of the rendering grants nodes/proxy, whoever it
// is bound to (it is exec-equivalent; only the apiserver-proxy opt-in adds it).
func checkNoNodesProxy(t *testing.T, what string, objs []obj) {
	t.Helper()
	for _, x := range objs {
		if x["kind"] != "ClusterRole" && x["kind"] != "Role" {
			continue
		}
		for _, r := range x["rules"].([]any) {
			for _, res := range r.(obj)["resources"].([]any) {
				if res == "nodes/proxy" || res == "nodes/*" {
					t.Errorf("%s: %s grants %s: %v", what, key(x), res, r)
				}
			}
		}
	}
}

// TestNoDefaultRenderingGrantsNodesProxy: every overlay, and the chart with its defaults and
// with cert-manager, grants nodes/configz (to the kubelet client) and no nodes/proxy.
func TestNoDefaultRenderingGrantsNodesProxy(t *testing.T) {
	for _, o := range overlays {
		checkNoNodesProxy(t, o, kustomizeBuild(t, repoPath(o)))
	}
	c := loadChart(t)
	for _, vals := range []map[string]any{nil, {"createNamespace": true}, {"certMode": "cert-manager"}} {
		objs := helmTemplate(t, c, vals)
		checkNoNodesProxy(t, "helm "+toYAML(vals), objs)
		mode := "self-managed"
		if vals["certMode"] == "cert-manager" {
			mode = "cert-manager"
		}
		checkRBAC(t, "helm "+toYAML(vals), objs, mode, false)
	}
}

// composeWithComponent builds a kustomization of `base` plus the given components, as a
// user's own kustomization would.
func composeWithComponent(t *testing.T, base string, components ...string) []obj {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string { // kustomize refuses absolute paths
		r, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "resources:\n  - " + rel(repoPath(base)) + "\ncomponents:\n"
	for _, c := range components {
		k += "  - " + rel(repoPath(c)) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomizeBuild(t, dir)
}

// TestAPIServerProxyComponent: the opt-in adds `get nodes/proxy` to the operator's ClusterRole
// (and nothing else to anyone) and passes --configz-source=apiserver-proxy to the operator;
// Helm's configzSource=apiserver-proxy renders the same objects.
func TestAPIServerProxyComponent(t *testing.T) {
	component := "deploy/components/apiserver-proxy"
	for base, mode := range map[string]string{"deploy/overlays/self-managed": "self-managed", "deploy/overlays/cert-manager": "cert-manager"} {
		objs := composeWithComponent(t, base, component)
		what := base + " + " + component
		checkRBAC(t, what, objs, mode, true)
		c := controllerContainer(t, objs)
		if a := args(c); a[len(a)-1] != "--configz-source=apiserver-proxy" {
			t.Errorf("%s: the operator's args end with %q, want --configz-source=apiserver-proxy", what, a[len(a)-1])
		}
		for _, a := range args(webhookContainer(t, objs)) {
			if strings.HasPrefix(a, "--configz-source") {
				t.Errorf("%s: the webhook gets %s", what, a)
			}
		}
		// Nothing else changes.
		plain := byKey(kustomizeBuild(t, repoPath(base)))
		for k, o := range byKey(objs) {
			if k == key(find(t, objs, "ClusterRole", controllerName)) || k == key(find(t, objs, "Deployment", controllerName)) {
				continue
			}
			if toYAML(plain[k]) != toYAML(o) {
				t.Errorf("%s: the component changed %s", what, k)
			}
		}
	}
	c := loadChart(t)
	compareObjects(t, "configzSource=apiserver-proxy",
		helmTemplate(t, c, map[string]any{"createNamespace": true, "configzSource": "apiserver-proxy"}),
		composeWithComponent(t, "deploy/overlays/self-managed", component))
	compareObjects(t, "configzSource=apiserver-proxy, certMode=cert-manager",
		helmTemplate(t, c, map[string]any{"createNamespace": true, "configzSource": "apiserver-proxy", "certMode": "cert-manager"}),
		composeWithComponent(t, "deploy/overlays/cert-manager", component))
}
