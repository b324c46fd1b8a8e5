package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// fileSpec is a host file of a simulated node.
type fileSpec struct {
	Path    string  `json:"path"`
	Mode    string  `json:"mode,omitempty"`  // octal, default 0644
	Owner   string  `json:"owner,omitempty"` // name or numeric id, default root
	Group   string  `json:"group,omitempty"` // name or numeric id, default root
	Content *string `json:"content,omitempty"`
}

// configFileSpec is the kubelet's --config file.
type configFileSpec struct {
	Path    string          `json:"path"`
	Content json.RawMessage `json:"content,omitempty"` // a KubeletConfiguration mapping, or a string written verbatim
	Mode    string          `json:"mode,omitempty"`
	Owner   string          `json:"owner,omitempty"`
	Group   string          `json:"group,omitempty"`
}

// nodeSpec is NODES_DIR/<node-name>.yaml.
type nodeSpec struct {
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Taints        []corev1.Taint    `json:"taints,omitempty"`
	ConfigFile    *configFileSpec   `json:"configFile,omitempty"`
	Flags         []string          `json:"flags,omitempty"`
	FlagsFile     string            `json:"flagsFile,omitempty"`
	Files         []fileSpec        `json:"files,omitempty"`
	Behavior      string            `json:"behavior,omitempty"`
	BehaviorDelay string            `json:"behaviorDelay,omitempty"` // slow; default 10s
	// huge: the body's size, an integer or a quantity (64Mi); default 64Mi, at most 4Gi.
	BehaviorBytes json.RawMessage `json:"behaviorBytes,omitempty"`
	// deep: how many arrays nest in the value; default 100000, at most 10000000.
	BehaviorDepth *int `json:"behaviorDepth,omitempty"`
	// body: the file served as /configz; a relative path is relative to the spec's directory.
	BehaviorBody string `json:"behaviorBody,omitempty"`
	// throttled: the Retry-After header in seconds; default 5.
	BehaviorRetryAfter *int `json:"behaviorRetryAfter,omitempty"`
	// FineGrainedAuthz false makes the direct listener authorize like a kubelet before
	// 1.33 (only nodes/proxy); default true.
	FineGrainedAuthz *bool `json:"fineGrainedAuthz,omitempty"`
}

var behaviors = map[string]string{
	"":            "a healthy kubelet",
	"normal":      "a healthy kubelet",
	"unreachable": "the egress proxy accepts the CONNECT, the direct listener the TCP connection, and neither answers (a black-holed node): requests time out",
	"refused":     "the egress proxy answers the CONNECT with 503 connection refused; the direct port is closed",
	"garbage":     "/configz answers 200 with a body that is not JSON",
	"error":       "/configz answers 500",
	"slow":        "/configz answers after behaviorDelay (default 10s)",
	"notready":    "the Node's Ready condition is False (the kubelet still serves)",
	"huge":        "/configz answers 200 with a streamed JSON body of behaviorBytes bytes (default 64Mi)",
	"deep":        "/configz answers 200 with valid JSON whose authentication.anonymous.enabled nests behaviorDepth arrays (default 100000)",
	"stall":       "/configz sends its headers and half its body, then nothing until the client goes away",
	"body":        "/configz answers 200 with the file behaviorBody, verbatim",
	"throttled":   "/configz answers 429 with Retry-After: behaviorRetryAfter (default 5) and a Status",
}

func loadNodeSpec(file string) (*nodeSpec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var s nodeSpec
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if s.ConfigFile != nil && !path.IsAbs(s.ConfigFile.Path) {
		return nil, fmt.Errorf("%s: configFile.path must be absolute", file)
	}
	if s.FlagsFile != "" && !path.IsAbs(s.FlagsFile) {
		return nil, fmt.Errorf("%s: flagsFile must be absolute", file)
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, err
	}
	if _, err := s.params(dir); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &s, nil
}

// params returns the behaviour parameters of the spec, defaults filled in, the body's path
// resolved against specDir (the spec file's directory).
func (s *nodeSpec) params(specDir string) (behaviorParams, error) {
	p := defaultBehaviorParams()
	if s.BehaviorDelay != "" {
		d, err := time.ParseDuration(s.BehaviorDelay)
		if err != nil || d < 0 {
			return p, fmt.Errorf("behaviorDelay %q is not a non-negative duration (e.g. 30s)", s.BehaviorDelay)
		}
		p.Delay = d
	}
	if len(s.BehaviorBytes) > 0 {
		text := string(s.BehaviorBytes)
		_ = json.Unmarshal(s.BehaviorBytes, &text) // a string: its value; a number: as written
		b, err := parseBehaviorBytes(text)
		if err != nil {
			return p, fmt.Errorf("behaviorBytes: %w", err)
		}
		p.Bytes = b
	}
	if s.BehaviorDepth != nil {
		if err := checkBehaviorDepth(*s.BehaviorDepth); err != nil {
			return p, fmt.Errorf("behaviorDepth: %w", err)
		}
		p.Depth = *s.BehaviorDepth
	}
	if s.BehaviorRetryAfter != nil {
		if err := checkBehaviorRetryAfter(*s.BehaviorRetryAfter); err != nil {
			return p, fmt.Errorf("behaviorRetryAfter: %w", err)
		}
		p.RetryAfter = *s.BehaviorRetryAfter
	}
	if s.BehaviorBody != "" {
		p.Body = s.bodyPath(specDir)
		if err := checkBehaviorBody(p.Body); err != nil {
			return p, fmt.Errorf("behaviorBody: %w", err)
		}
	}
	if err := checkBehavior(s.Behavior, p); err != nil {
		return p, err
	}
	return p, nil
}

// bodyPath is behaviorBody, resolved against specDir when relative.
func (s *nodeSpec) bodyPath(specDir string) string {
	if filepath.IsAbs(s.BehaviorBody) {
		return filepath.Clean(s.BehaviorBody)
	}
	return filepath.Join(specDir, s.BehaviorBody)
}

// configFileBytes renders configFile.content in the format its extension names.
func (c *configFileSpec) bytes() ([]byte, error) {
	if len(c.Content) == 0 || string(c.Content) == "null" {
		c.Content = json.RawMessage(`{}`)
	}
	var raw string
	if json.Unmarshal(c.Content, &raw) == nil {
		return []byte(raw), nil // verbatim text (may be deliberately invalid)
	}
	var m map[string]any
	if err := json.Unmarshal(c.Content, &m); err != nil {
		return nil, fmt.Errorf("configFile.content must be a mapping or a string: %w", err)
	}
	if _, ok := m["apiVersion"]; !ok {
		m["apiVersion"] = "kubelet.config.k8s.io/v1beta1"
	}
	if _, ok := m["kind"]; !ok {
		m["kind"] = "KubeletConfiguration"
	}
	j, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(c.Path, ".json") {
		return append(j, '\n'), nil
	}
	return yaml.JSONToYAML(j)
}

// isDropIn tells the flags file format: a systemd drop-in (.conf) or an environment file.
func isDropIn(p string) bool { return strings.HasSuffix(p, ".conf") }

// renderFlagsFile writes the kubelet command line the way a node's service files carry it.
func renderFlagsFile(p, configPath string, flags []string) []byte {
	var b strings.Builder
	line := strings.Join(flags, " ")
	if isDropIn(p) {
		b.WriteString("# kubelet arguments (simulated node, written by kpc-testenv)\n[Service]\n")
		if configPath != "" {
			fmt.Fprintf(&b, "Environment=\"KUBELET_CONFIG_ARGS=--config=%s\"\n", configPath)
		}
		fmt.Fprintf(&b, "Environment=\"KUBELET_ARGS=%s\"\n", line)
	} else {
		b.WriteString("# kubelet arguments (simulated node, written by kpc-testenv)\n")
		if configPath != "" {
			fmt.Fprintf(&b, "KUBELET_CONFIG_ARGS=--config=%s\n", configPath)
		}
		fmt.Fprintf(&b, "KUBELET_ARGS=\"%s\"\n", line)
	}
	return []byte(b.String())
}

// parseFlagsFile reads the kubelet arguments back: the words of every variable the file
// sets, in file order. Drop-ins: Environment="NAME=VALUE" lines (several assignments per
// line allowed); environment files: NAME=VALUE lines, optionally quoted.
func parseFlagsFile(p string, data []byte) ([]string, error) {
	var args []string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		var assignments []string
		if isDropIn(p) {
			rest, ok := strings.CutPrefix(line, "Environment=")
			if !ok {
				continue
			}
			words, err := splitWords(rest)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p, n+1, err)
			}
			assignments = words
		} else {
			line = strings.TrimPrefix(line, "export ")
			name, val, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			words, err := splitWords(val)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p, n+1, err)
			}
			assignments = []string{name + "=" + strings.Join(words, " ")}
		}
		for _, a := range assignments {
			_, val, ok := strings.Cut(a, "=")
			if !ok {
				continue
			}
			args = append(args, strings.Fields(val)...)
		}
	}
	return args, nil
}

// splitWords splits s on blanks, honouring double and single quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// lookupID maps a user or group name (or number) to an id. Names missing from
// /etc/passwd and /etc/group get a stable id in 60000-64999.
func lookupID(name string, group bool) int {
	if name == "" || name == "root" {
		return 0
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n
	}
	if group {
		if g, err := user.LookupGroup(name); err == nil {
			n, _ := strconv.Atoi(g.Gid)
			return n
		}
	} else if u, err := user.Lookup(name); err == nil {
		n, _ := strconv.Atoi(u.Uid)
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return 60000 + int(h.Sum32()%5000)
}

func parseMode(s string, def os.FileMode) (os.FileMode, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("bad mode %q", s)
	}
	return os.FileMode(n), nil
}

// placeFile writes (when content != nil) and sets metadata of a node file.
func placeFile(root, p string, content []byte, mode, owner, group string) error {
	host := filepath.Join(root, filepath.Clean("/"+p))
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return err
	}
	m, err := parseMode(mode, 0o644)
	if err != nil {
		return err
	}
	if content != nil {
		if err := os.WriteFile(host, content, m); err != nil {
			return err
		}
	} else if _, err := os.Stat(host); os.IsNotExist(err) {
		if err := os.WriteFile(host, nil, m); err != nil {
			return err
		}
	}
	if err := os.Chmod(host, m); err != nil {
		return err
	}
	return os.Lchown(host, lookupID(owner, false), lookupID(group, true))
}

// populateRoot creates a node's host files from its spec.
func populateRoot(root string, s *nodeSpec) error {
	if err := os.MkdirAll(filepath.Join(root, "run", "testenv"), 0o755); err != nil {
		return err
	}
	written := map[string]bool{}
	configPath := ""
	if s.ConfigFile != nil {
		configPath = s.ConfigFile.Path
		b, err := s.ConfigFile.bytes()
		if err != nil {
			return err
		}
		if err := placeFile(root, configPath, b, s.ConfigFile.Mode, s.ConfigFile.Owner, s.ConfigFile.Group); err != nil {
			return err
		}
		written[path.Clean(configPath)] = true
	}
	if s.FlagsFile != "" {
		if err := placeFile(root, s.FlagsFile, renderFlagsFile(s.FlagsFile, configPath, s.Flags), "0644", "root", "root"); err != nil {
			return err
		}
		written[path.Clean(s.FlagsFile)] = true
	}
	for _, f := range s.Files {
		if !path.IsAbs(f.Path) {
			return fmt.Errorf("files: path %q must be absolute", f.Path)
		}
		var content []byte
		if f.Content != nil {
			content = []byte(*f.Content)
		} else if !written[path.Clean(f.Path)] {
			content = defaultFileContent(f.Path)
		}
		if err := placeFile(root, f.Path, content, f.Mode, f.Owner, f.Group); err != nil {
			return err
		}
	}
	return nil
}

func defaultFileContent(p string) []byte {
	switch {
	case strings.HasSuffix(p, ".conf") && strings.Contains(p, "kubernetes"):
		return []byte("# simulated kubeconfig\napiVersion: v1\nkind: Config\n")
	case strings.HasSuffix(p, ".crt"):
		return []byte("# simulated certificate\n")
	}
	return []byte{}
}

// kubeletArgs reads a node's current kubelet command line from its root.
func kubeletArgs(root string, s *nodeSpec) ([]string, error) {
	if s.FlagsFile == "" {
		var args []string
		if s.ConfigFile != nil {
			args = append(args, "--config="+s.ConfigFile.Path)
		}
		return append(args, s.Flags...), nil
	}
	b, err := os.ReadFile(filepath.Join(root, filepath.Clean("/"+s.FlagsFile)))
	if err != nil {
		return nil, fmt.Errorf("kubelet service file: %w", err)
	}
	return parseFlagsFile(s.FlagsFile, b)
}

// generateNodeSpecs writes n compliant node specs (the --nodes N fleet).
func generateNodeSpecs(dir string, n int) error {
	width := len(strconv.Itoa(n))
	if width < 2 {
		width = 2
	}
	spec := compliantSpec()
	b, err := yaml.Marshal(spec)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node-%0*d.yaml", width, i)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func compliantSpec() *nodeSpec {
	content := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
		},
		"authorization":                  map[string]any{"mode": "Webhook"},
		"streamingConnectionIdleTimeout": "4h0m0s",
		"eventRecordQPS":                 5,
		"rotateCertificates":             true,
		"serverTLSBootstrap":             false,
		"readOnlyPort":                   0,
		"protectKernelDefaults":          true,
		"makeIPTablesUtilChains":         true,
		"tlsCertFile":                    "/var/lib/kubelet/pki/kubelet.crt",
		"tlsPrivateKeyFile":              "/var/lib/kubelet/pki/kubelet.key",
		"cgroupDriver":                   "systemd",
		"clusterDNS":                     []string{"10.96.0.10"},
		"clusterDomain":                  "cluster.local",
	}
	cb, _ := json.Marshal(content)
	owned := func(p, mode string) fileSpec { return fileSpec{Path: p, Mode: mode, Owner: "root", Group: "root"} }
	return &nodeSpec{
		Labels: map[string]string{"node-role.kubernetes.io/worker": ""},
		ConfigFile: &configFileSpec{
			Path: "/var/lib/kubelet/config.yaml", Content: cb, Mode: "0600", Owner: "root", Group: "root",
		},
		Flags: []string{
			"--kubeconfig=/etc/kubernetes/kubelet.conf",
			"--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
		},
		FlagsFile: "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
		Files: []fileSpec{
			owned("/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf", "0600"),
			owned("/etc/kubernetes/kubelet.conf", "0600"),
			owned("/etc/kubernetes/pki/ca.crt", "0644"),
			owned("/var/lib/kubelet/pki/kubelet.crt", "0644"),
			owned("/var/lib/kubelet/pki/kubelet.key", "0600"),
		},
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
