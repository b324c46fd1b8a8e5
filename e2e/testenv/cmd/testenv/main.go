// Command testenv is the multi-call binary of the kubelet-policy-controller test
// control plane: embedded etcd, kube-apiserver, kube-controller-manager, kubectl and
// a simulated kubelet fleet, plus the helpers that start and stop them.
//
// Dispatch is by the first argument ("testenv kubectl get nodes") or by the name the
// binary was invoked as (a link named "kubectl").
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type subcommand struct {
	run  func(args []string) int
	help string
}

var subcommands = map[string]subcommand{
	"up":                      {runUp, "start the environment (see README)"},
	"down":                    {runDown, "stop the environment"},
	"status":                  {runStatus, "print the state of the environment"},
	"etcd":                    {runEtcd, "embedded etcd server (daemon)"},
	"kube-apiserver":          {runAPIServer, "kube-apiserver (daemon)"},
	"kube-controller-manager": {runControllerManager, "kube-controller-manager (daemon)"},
	"kubectl":                 {runKubectl, "kubectl"},
	"fleet":                   {runFleet, "simulated kubelet fleet and egress proxy (daemon)"},
	"restart-kubelet":         {runRestartKubelet, "restart the simulated kubelet of a node"},
	"kubeconfig-for-sa":       {runKubeconfigForSA, "write a kubeconfig for a ServiceAccount token"},
	"pod-exec":                {runPodExec, "internal: set up a container's mounts and exec it"},
	"version":                 {runVersion, "print the Kubernetes release this binary embeds"},
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if _, ok := subcommands[name]; !ok || name == "testenv" {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage()
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	sc, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "testenv: unknown subcommand %q\n", name)
		usage()
		os.Exit(2)
	}
	os.Exit(sc.run(args))
}

func usage() {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: testenv SUBCOMMAND [ARGS...]\n\nsubcommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-25s %s\n", n, subcommands[n].help)
	}
	fmt.Fprint(os.Stderr, b.String())
}
