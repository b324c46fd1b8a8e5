package controllertests

import (
	"fmt"
	"strings"
	"testing"
)

// The CRD as the API server enforces it (schema, CEL, defaults) and as kubectl shows it. The
// webhook adds what CEL cannot express (typed values, remediation values that satisfy their
// rule); these cases are the ones the API server itself must refuse.
func TestCRDValidationAndExplain(t *testing.T) {
	valid := `apiVersion: kubeletpolicy.io/v1alpha1
kind: KubeletPolicy
metadata: {name: %s, labels: {kpc-e2e: controllertests}}
spec:
  nodeSelector: {matchLabels: {e2e-pool: nothing-selected}}
%s`
	cases := []struct {
		name, spec, wantInError string
	}{
		{"both-config-and-file", `  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}
      file: {target: KubeletConfigFile, maxMode: "0600"}`, "exactly one of config or file"},
		{"file-path-outside", `  rules:
    - id: a
      file: {target: Path, path: /root/.ssh/id_rsa, maxMode: "0600"}`, "/etc/kubernetes/"},
		{"file-path-dotdot", `  rules:
    - id: a
      file: {target: Path, path: /etc/kubernetes/../shadow, maxMode: "0600"}`, ".."},
		{"short-check-interval", `  checkInterval: 5s
  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}`, "checkInterval"},
		{"unknown-operator", `  rules:
    - id: a
      config: {path: readOnlyPort, operator: Bigger, value: 0}`, "operator"},
		{"duplicate-ids", `  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}
    - id: a
      config: {path: rotateCertificates, operator: Equals, value: true}`, "Duplicate value"},
		{"exception-unknown-rule", `  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}
  exceptions:
    - {rules: [b], reason: because}`, "b"},
		{"bad-id", `  rules:
    - id: Not_A_Label
      config: {path: readOnlyPort, operator: Equals, value: 0}`, "spec.rules[0].id"},
		{"bad-enforcement", `  enforcement: Fix
  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}`, "spec.enforcement"},
	}
	for _, c := range cases {
		name := uniqueName("ctl-crd-" + c.name)
		manifest := fmt.Sprintf(valid, name, c.spec)
		out, err := kubectlRaw([]byte(manifest), "apply", "-f", "-")
		if err == nil {
			_, _ = kubectl(t, "delete", "kp", name, "--ignore-not-found")
			t.Errorf("%s: the API server accepted an invalid policy:\n%s", c.name, manifest)
			continue
		}
		if !strings.Contains(err.Error()+out, c.wantInError) {
			t.Errorf("%s: error does not mention %q:\n%v", c.name, c.wantInError, err)
		}
	}

	// A valid minimal policy is admitted and defaulted by the schema.
	name := uniqueName("ctl-crd-defaults")
	manifest := fmt.Sprintf(valid, name, `  rules:
    - id: a
      config: {path: readOnlyPort, operator: Equals, value: 0}`)
	if out, err := kubectlRaw([]byte(manifest), "apply", "-f", "-"); err != nil {
		t.Fatalf("valid policy refused: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = kubectl(t, "delete", "kp", name, "--ignore-not-found") })
	got := mustKubectl(t, "get", "kp", name, "-o",
		`jsonpath={.spec.checkInterval} {.spec.enforcement} {.spec.suspend} {.spec.rules[0].severity} {.spec.remediation.maxUnavailable} {.spec.remediation.failureThreshold} {.spec.remediation.timeout}`)
	if want := "5m Audit false Medium 1 3 10m"; got != want {
		t.Errorf("schema defaults = %q, want %q", got, want)
	}

	// kubectl explain reads the schema's descriptions.
	explain := mustKubectl(t, "explain", "kubeletpolicy.spec.rules.config")
	for _, s := range []string{"path", "operator", "value", "GreaterThanOrEqual", "NotEmpty"} {
		if !strings.Contains(explain, s) {
			t.Errorf("kubectl explain kubeletpolicy.spec.rules.config does not mention %q:\n%s", s, explain)
		}
	}
	// Printer columns, as api.md fixes them.
	header := strings.Fields(strings.SplitN(mustKubectl(t, "get", "kp", name), "\n", 2)[0])
	if want := "NAME ENFORCEMENT NODES COMPLIANT NONCOMPLIANT UNKNOWN READY AGE"; strings.Join(header, " ") != want {
		t.Errorf("kubectl get kp columns = %v, want %s", header, want)
	}
}
