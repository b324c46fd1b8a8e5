package main

// The effective kubelet configuration of a simulated node, computed with the
// kubelet's own code: the same flag sets, loader, defaulting, validation and the
// internal -> v1beta1 conversion that /configz serves.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	"k8s.io/kubernetes/pkg/features"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletscheme "k8s.io/kubernetes/pkg/kubelet/apis/config/scheme"
	kubeletconfigvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"
)

// rootFs is the kubelet loader's filesystem seen from inside a node's root directory:
// the loader only reads the config file; everything else is the host's.
type rootFs struct {
	utilfs.DefaultFs
	root string
}

func (f *rootFs) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(f.root, filepath.Clean("/"+name)))
}

var (
	globalFlagsOnce  sync.Once
	globalFlagsNames []*pflag.Flag
)

// addNoOpGlobalFlags registers the kubelet's global (library) flags with values that
// ignore Set, so parsing a node's command line never touches this process's globals.
func addNoOpGlobalFlags(fs *pflag.FlagSet) {
	globalFlagsOnce.Do(func() {
		g := pflag.NewFlagSet("globals", pflag.ContinueOnError)
		g.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
		options.AddGlobalFlags(g)
		g.VisitAll(func(f *pflag.Flag) { globalFlagsNames = append(globalFlagsNames, f) })
	})
	for _, f := range globalFlagsNames {
		if fs.Lookup(f.Name) == nil {
			nf := fs.VarPF(cliflag.NoOp{}, f.Name, f.Shorthand, f.Usage)
			nf.NoOptDefVal = f.NoOptDefVal
		}
	}
}

// kubeletFlagSet mirrors the kubelet command's clean flag set. When config is nil the
// KubeletConfiguration flags are registered with no-op values (only KubeletFlags parse).
func kubeletFlagSet(kf *options.KubeletFlags, kc *kubeletconfig.KubeletConfiguration) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	fs.SetOutput(io.Discard)
	kf.AddFlags(fs)
	options.AddKubeletConfigFlags(fs, kc)
	addNoOpGlobalFlags(fs)
	return fs
}

// effectiveConfig is the result of "starting" a simulated kubelet. Shared between
// identical nodes: read-only.
type effectiveConfig struct {
	Configz    []byte // {"kubeletconfig": {...}} exactly as /configz serves it
	ConfigFile string // the --config path on the node ("" when absent)
	Kubeconfig string // the --kubeconfig path on the node
	// What the kubelet's server builds its authenticator and authorizer from.
	Authentication kubeletconfig.KubeletAuthentication
	Authorization  kubeletconfig.KubeletAuthorization
	// The node's KubeletFineGrainedAuthz feature gate (its featureGates over the defaults).
	FineGrainedAuthz bool
}

type memoEntry struct {
	ec  *effectiveConfig
	err error
}

var configMemo sync.Map // inputs -> *memoEntry

// computeKubeletConfig does what the kubelet does at start-up with command line args
// on a host whose filesystem is root. The result depends only on the command line and
// the config file's bytes, so identical nodes (a generated fleet) share one computation.
func computeKubeletConfig(root string, args []string) (*effectiveConfig, error) {
	var key strings.Builder
	for i, a := range args {
		key.WriteString(a)
		key.WriteByte(0)
		name := ""
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			name = v
		} else if a == "--config" && i+1 < len(args) {
			name = args[i+1]
		}
		if name != "" {
			b, err := os.ReadFile(filepath.Join(root, filepath.Clean("/"+name)))
			if err != nil {
				return computeKubeletConfigUncached(root, args)
			}
			key.WriteByte(1)
			key.Write(b)
			key.WriteByte(1)
		}
	}
	if v, ok := configMemo.Load(key.String()); ok {
		e := v.(*memoEntry)
		return e.ec, e.err
	}
	ec, err := computeKubeletConfigUncached(root, args)
	configMemo.Store(key.String(), &memoEntry{ec, err})
	return ec, err
}

func computeKubeletConfigUncached(root string, args []string) (ec *effectiveConfig, err error) {
	// The kubelet's defaulting panics on some inputs (e.g. a locked feature gate set to
	// its other value): that kubelet crashes at start-up, the fleet must not.
	defer func() {
		if r := recover(); r != nil {
			ec, err = nil, fmt.Errorf("kubelet panicked at start-up: %v", r)
		}
	}()
	kf := options.NewKubeletFlags()
	kc, err := options.NewKubeletConfiguration()
	if err != nil {
		return nil, err
	}
	fs := kubeletFlagSet(kf, kc)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("failed to parse kubelet flag: %w", err)
	}
	if rest := fs.Args(); len(rest) > 0 {
		return nil, fmt.Errorf("unknown command %+s", rest[0])
	}
	if err := options.ValidateKubeletFlags(kf); err != nil {
		return nil, fmt.Errorf("failed to validate kubelet flags: %w", err)
	}
	if kf.KubeletDropinConfigDirectory != "" {
		return nil, fmt.Errorf("--config-dir is not supported by the simulated kubelet")
	}
	if kf.KubeletConfigFile != "" {
		name := kf.KubeletConfigFile
		if !path.IsAbs(name) {
			name = path.Join("/", name) // the kubelet runs with / as working directory
		}
		loader, err := configfiles.NewFsLoader(&rootFs{root: root}, name)
		if err != nil {
			return nil, err
		}
		fileKC, err := loader.Load(context.Background())
		if err != nil {
			return nil, fmt.Errorf("failed to load kubelet config file, path: %s, error: %w", name, err)
		}
		// As the kubelet's loadConfigFile: OS-specific eviction defaults.
		if fileKC.EvictionHard == nil {
			fileKC.EvictionHard = eviction.DefaultEvictionHard
		} else if fileKC.MergeDefaultEvictionSettings {
			for k, v := range eviction.DefaultEvictionHard {
				if _, ok := fileKC.EvictionHard[k]; !ok {
					fileKC.EvictionHard[k] = v
				}
			}
		}
		// Flags take precedence over the file: re-parse the command line onto it with a
		// throw-away KubeletFlags, remembering the file's feature gates.
		original := fileKC.FeatureGates
		fs2 := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
		fs2.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
		fs2.SetOutput(io.Discard)
		options.NewKubeletFlags().AddFlags(fs2)
		options.AddKubeletConfigFlags(fs2, fileKC)
		addNoOpGlobalFlags(fs2)
		if err := fs2.Parse(args); err != nil {
			return nil, fmt.Errorf("failed to precedence kubeletConfigFlag: %w", err)
		}
		for k, v := range original {
			if _, ok := fileKC.FeatureGates[k]; !ok {
				fileKC.FeatureGates[k] = v
			}
		}
		kc = fileKC
	}
	gate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	if err := gate.SetFromMap(kc.FeatureGates); err != nil {
		return nil, fmt.Errorf("failed to set feature gates from initial flags-based config: %w", err)
	}
	if err := kubeletconfigvalidation.ValidateKubeletConfiguration(kc, gate); err != nil {
		return nil, fmt.Errorf("failed to validate kubelet configuration, error: %w", err)
	}
	scheme, _, err := kubeletscheme.NewSchemeAndCodecs()
	if err != nil {
		return nil, err
	}
	versioned := kubeletconfigv1beta1.KubeletConfiguration{}
	if err := scheme.Convert(kc, &versioned, nil); err != nil {
		return nil, err
	}
	b, err := json.Marshal(map[string]any{"kubeletconfig": versioned})
	if err != nil {
		return nil, err
	}
	return &effectiveConfig{Configz: b, ConfigFile: kf.KubeletConfigFile, Kubeconfig: kf.KubeConfig,
		Authentication: kc.Authentication, Authorization: kc.Authorization,
		FineGrainedAuthz: gate.Enabled(features.KubeletFineGrainedAuthz)}, nil
}
