package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestFlagsFileRoundTrip(t *testing.T) {
	flags := []string{"--make-iptables-util-chains=false", "--event-qps=0"}
	for _, p := range []string{"/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf", "/etc/default/kubelet"} {
		b := renderFlagsFile(p, "/var/lib/kubelet/config.yaml", flags)
		got, err := parseFlagsFile(p, b)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]string{"--config=/var/lib/kubelet/config.yaml"}, flags...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q want %q\n%s", p, got, want, b)
		}
	}
	dropIn := "[Service]\nEnvironment=\"A=--x=1 --y\" \"B=--z\"\n# Environment=\"C=--no\"\nExecStart=\n"
	got, _ := parseFlagsFile("x.conf", []byte(dropIn))
	if want := []string{"--x=1", "--y", "--z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("drop-in: got %q", got)
	}
	env := "export KUBELET_EXTRA_ARGS='--a --b'\nOTHER=--c\n"
	got, _ = parseFlagsFile("kubelet", []byte(env))
	if want := []string{"--a", "--b", "--c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("env file: got %q", got)
	}
}

func TestResolveImage(t *testing.T) {
	m := map[string]string{"kubelet-policy-controller": "/bin/kpc", "testenv/shell": "/bin/sh", "exact:v1": "/bin/exact"}
	for img, want := range map[string]string{
		"ghcr.io/acme/kubelet-policy-controller:v0.1.0": "/bin/kpc",
		"kubelet-policy-controller@sha256:abc":          "/bin/kpc",
		"testenv/shell:latest":                          "/bin/sh",
		"exact:v1":                                      "/bin/exact",
		"localhost:5000/testenv/shell":                  "/bin/sh",
		"unknown:latest":                                "",
	} {
		if got, _ := resolveImage(m, img); got != want {
			t.Errorf("%s -> %q, want %q", img, got, want)
		}
	}
}

func configzOf(t *testing.T, root string, args ...string) map[string]any {
	t.Helper()
	ec, err := computeKubeletConfig(root, args)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		K map[string]any `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(ec.Configz, &v); err != nil {
		t.Fatal(err)
	}
	return v.K
}

func TestComputeKubeletConfig(t *testing.T) {
	root := t.TempDir()
	spec := &nodeSpec{ConfigFile: &configFileSpec{Path: "/etc/kubelet.yaml",
		Content: json.RawMessage(`{"streamingConnectionIdleTimeout":"0s","eventRecordQPS":3,"featureGates":{"KubeletTracing":true}}`)}}
	if err := populateRoot(root, spec); err != nil {
		t.Fatal(err)
	}
	k := configzOf(t, root, "--config=/etc/kubelet.yaml", "--event-qps=7", "--feature-gates=ImageMaximumGCAge=true")
	if k["eventRecordQPS"] != float64(7) {
		t.Errorf("flag must win: %v", k["eventRecordQPS"])
	}
	if k["streamingConnectionIdleTimeout"] != "4h0m0s" {
		t.Errorf("0s defaults to 4h: %v", k["streamingConnectionIdleTimeout"])
	}
	fg, _ := k["featureGates"].(map[string]any)
	if fg["KubeletTracing"] != true || fg["ImageMaximumGCAge"] != true {
		t.Errorf("feature gates merged: %v", fg)
	}
	legacy := configzOf(t, root)
	if legacy["authorization"].(map[string]any)["mode"] != "AlwaysAllow" || legacy["readOnlyPort"] != float64(10255) {
		t.Errorf("legacy defaults: %v %v", legacy["authorization"], legacy["readOnlyPort"])
	}
	// What the direct listener's auth is built from: the legacy defaults, the node's gate.
	ec, err := computeKubeletConfig(root, nil)
	if err != nil || !ec.Authentication.Anonymous.Enabled || ec.Authorization.Mode != "AlwaysAllow" || !ec.FineGrainedAuthz {
		t.Errorf("legacy auth: %+v %+v fine-grained %v (%v)", ec.Authentication, ec.Authorization, ec.FineGrainedAuthz, err)
	}
	if ec, err := computeKubeletConfig(root, []string{"--feature-gates=KubeletFineGrainedAuthz=false"}); err != nil || ec.FineGrainedAuthz {
		t.Errorf("KubeletFineGrainedAuthz=false: %v", err)
	}
	if _, err := computeKubeletConfig(root, []string{"--feature-gates=KubeletTracing=false"}); err == nil {
		t.Errorf("locked feature gate accepted")
	}
	if _, err := computeKubeletConfig(root, []string{"--no-such-flag"}); err == nil {
		t.Errorf("unknown flag accepted")
	}
	// Unknown fields are tolerated (the kubelet falls back to lenient decoding), invalid
	// values are not (validation fails, the kubelet does not start).
	if err := os.WriteFile(filepath.Join(root, "etc/kubelet.yaml"), []byte("kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nbogusField: 1\neventRecordQPS: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := computeKubeletConfig(root, []string{"--config=/etc/kubelet.yaml"}); err == nil {
		t.Errorf("invalid config (eventRecordQPS -1) accepted")
	}
}
