package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// runPodExec runs inside the container's private mount namespace (the fleet starts it
// with CLONE_NEWNS): bind-mounts the volumes, then execs the container's program.
func runPodExec(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: testenv pod-exec PLAN.json")
		return 2
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 128
	}
	var p execPlan
	if err := json.Unmarshal(b, &p); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 128
	}
	// Parents before children, like the container runtime.
	sort.SliceStable(p.Mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(p.Mounts[i].Target), "/") < strings.Count(filepath.Clean(p.Mounts[j].Target), "/")
	})
	for _, m := range p.Mounts {
		if err := bindMount(m); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: mount %s on %s: %v\n", m.Source, m.Target, err)
			return 128
		}
	}
	for _, kv := range p.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "PATH" {
			_ = os.Setenv("PATH", v)
		}
	}
	exe := p.Exe
	if !strings.Contains(exe, "/") {
		exe = lookPath(exe, os.Getenv("PATH"))
	}
	dir := p.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: working directory %s: %v\n", dir, err)
		return 128
	}
	if len(p.Argv) == 0 {
		p.Argv = []string{exe}
	}
	err = syscall.Exec(exe, p.Argv, p.Env)
	fmt.Fprintf(os.Stderr, "testenv: exec %s: %v\n", exe, err)
	return 127
}

func lookPath(name, pathEnv string) string {
	for _, d := range filepath.SplitList(pathEnv) {
		c := filepath.Join(d, name)
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c
		}
	}
	return name
}

func bindMount(m mountSpec) error {
	// The mount point has to exist; it is created on the host filesystem (the mount
	// namespace is private, the filesystem is not).
	if m.File {
		if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(m.Target); os.IsNotExist(err) {
			if err := os.WriteFile(m.Target, nil, 0o644); err != nil {
				return err
			}
		}
	} else if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount(m.Source, m.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		return syscall.Mount("", m.Target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
	}
	return nil
}

// runRestartKubelet restarts a simulated kubelet and waits until it is back.
//
//	testenv restart-kubelet --host-root /host      (inside a pod that mounts the node's /)
//	testenv restart-kubelet --node NAME [--state DIR]  (from outside)
func runRestartKubelet(args []string) int {
	fs := flag.NewFlagSet("restart-kubelet", flag.ExitOnError)
	hostRoot := fs.String("host-root", "", "where the node's root filesystem is mounted (inside a pod)")
	node := fs.String("node", "", "node name (outside a pod; uses the fleet's control socket)")
	state := stateDirFlag(fs)
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the kubelet to come back")
	_ = fs.Parse(args)
	if *node != "" {
		dir, _ := filepath.Abs(*state)
		if _, err := fleetRequest(dir, "POST", "/restart?node="+*node); err != nil {
			fmt.Fprintf(os.Stderr, "restart-kubelet: %v\n", err)
			return 1
		}
		fmt.Printf("kubelet on %s restarted\n", *node)
		return 0
	}
	if *hostRoot == "" {
		fmt.Fprintln(os.Stderr, "restart-kubelet: --host-root or --node is required")
		return 2
	}
	trig := triggerPath(*hostRoot)
	_ = os.Remove(trig + ".result")
	if err := os.MkdirAll(filepath.Dir(trig), 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "restart-kubelet: %v\n", err)
		return 1
	}
	if err := os.WriteFile(trig, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "restart-kubelet: %v\n", err)
		return 1
	}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(trig); os.IsNotExist(err) {
			res, _ := os.ReadFile(trig + ".result")
			if strings.HasPrefix(string(res), "ok") {
				fmt.Println("kubelet restarted")
				return 0
			}
			fmt.Fprintf(os.Stderr, "restart-kubelet: %s", res)
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "restart-kubelet: no restart within %v (is %s the node's root?)\n", *timeout, *hostRoot)
	return 1
}

// runKubeconfigForSA writes a kubeconfig that authenticates as a ServiceAccount with a
// TokenRequest token, and prints its path.
func runKubeconfigForSA(args []string) int {
	fs := flag.NewFlagSet("kubeconfig-for-sa", flag.ExitOnError)
	state := stateDirFlag(fs)
	out := fs.String("out", "", "output file (default DIR/kubeconfigs/sa-NAMESPACE-NAME.kubeconfig)")
	duration := fs.Duration("duration", 24*time.Hour, "token lifetime")
	create := fs.Bool("create", true, "create the namespace and ServiceAccount if missing")
	_ = fs.Parse(args)
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: kubeconfig-for-sa [--state DIR] [--out FILE] [--duration D] NAMESPACE SERVICEACCOUNT")
		return 2
	}
	ns, sa := fs.Arg(0), fs.Arg(1)
	dir, _ := filepath.Abs(*state)
	info, err := readEnvInfo(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubeconfig-for-sa: no environment in %s: %v\n", dir, err)
		return 1
	}
	cs, err := clientsetFor(info.Kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubeconfig-for-sa: %v\n", err)
		return 1
	}
	ctx := context.Background()
	if *create {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			fmt.Fprintf(os.Stderr, "kubeconfig-for-sa: %v\n", err)
			return 1
		}
		_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			fmt.Fprintf(os.Stderr, "kubeconfig-for-sa: %v\n", err)
			return 1
		}
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(duration.Seconds()))},
	}, metav1.CreateOptions{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubeconfig-for-sa: %v\n", err)
		return 1
	}
	path := *out
	if path == "" {
		path = filepath.Join(dir, "kubeconfigs", "sa-"+ns+"-"+sa+".kubeconfig")
	}
	if err := writeKubeconfig(path, info.APIServerURL, filepath.Join(dir, "pki", "ca.crt"), "", "", tr.Status.Token,
		"system:serviceaccount:"+ns+":"+sa); err != nil {
		fmt.Fprintf(os.Stderr, "kubeconfig-for-sa: %v\n", err)
		return 1
	}
	fmt.Println(path)
	return 0
}
