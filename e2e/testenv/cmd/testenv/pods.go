package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
	"k8s.io/utils/ptr"
)

const (
	maxTerminationMessage    = 4096
	maxFallbackLogBytes      = 2048
	maxFallbackLogLines      = 80
	defaultTerminationLogDst = "/dev/termination-log"
)

type podManager struct {
	f       *fleet
	mu      sync.Mutex
	running map[types.UID]*podRun
	logs    map[string]string // ns/pod/container -> log file
}

type podRun struct {
	m        *podManager
	pod      *corev1.Pod
	node     *simNode
	dir      string
	killOnce sync.Once
	killCh   chan struct{}
	grace    time.Duration
	done     chan struct{}

	mu       sync.Mutex
	statuses map[string]*corev1.ContainerStatus
	initSt   map[string]*corev1.ContainerStatus
	phase    corev1.PodPhase
	reason   string
	message  string
	started  metav1.Time
	pids     map[string]int
}

func newPodManager(f *fleet) *podManager {
	return &podManager{f: f, running: map[types.UID]*podRun{}, logs: map[string]string{}}
}

func (m *podManager) run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(m.f.cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" }))
	inf := factory.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.sync(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { m.sync(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				m.deleted(p)
			}
		},
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	return nil
}

func (m *podManager) sync(pod *corev1.Pod) {
	node := m.f.nodes[pod.Spec.NodeName]
	if node == nil {
		return
	}
	m.mu.Lock()
	r := m.running[pod.UID]
	m.mu.Unlock()
	if r != nil {
		if pod.DeletionTimestamp != nil {
			r.kill(pod.DeletionGracePeriodSeconds)
		}
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	if pod.DeletionTimestamp != nil {
		go m.finalDelete(pod)
		return
	}
	if pod.Status.Phase == corev1.PodRunning {
		// Started by an earlier fleet process that is gone: its containers died with it.
		r = m.newRun(pod, node)
		go func() {
			r.setPhase(corev1.PodFailed, "NodeRestart", "the simulated node's kubelet lost this pod")
			_ = r.pushStatus()
			m.forget(r)
		}()
		return
	}
	r = m.newRun(pod, node)
	go r.run()
}

func (m *podManager) newRun(pod *corev1.Pod, node *simNode) *podRun {
	r := &podRun{m: m, pod: pod.DeepCopy(), node: node, killCh: make(chan struct{}), done: make(chan struct{}),
		statuses: map[string]*corev1.ContainerStatus{}, initSt: map[string]*corev1.ContainerStatus{},
		phase: corev1.PodPending, pids: map[string]int{},
		dir: filepath.Join(m.f.dir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))}
	m.mu.Lock()
	m.running[pod.UID] = r
	m.mu.Unlock()
	return r
}

func (m *podManager) forget(r *podRun) {
	m.mu.Lock()
	delete(m.running, r.pod.UID)
	m.mu.Unlock()
}

func (m *podManager) deleted(pod *corev1.Pod) {
	m.mu.Lock()
	r := m.running[pod.UID]
	for _, c := range pod.Spec.Containers {
		delete(m.logs, pod.Namespace+"/"+pod.Name+"/"+c.Name)
	}
	m.mu.Unlock()
	if r != nil {
		r.kill(ptr.To[int64](0))
	}
}

// finalDelete is the kubelet's last word on a pod whose containers are gone.
func (m *podManager) finalDelete(pod *corev1.Pod) {
	err := m.f.cs.CoreV1().Pods(pod.Namespace).Delete(m.f.ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		logf("fleet: delete pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}

func (m *podManager) killAll() {
	m.mu.Lock()
	runs := make([]*podRun, 0, len(m.running))
	for _, r := range m.running {
		runs = append(runs, r)
	}
	m.mu.Unlock()
	for _, r := range runs {
		r.kill(ptr.To[int64](0))
	}
	deadline := time.After(5 * time.Second)
	for _, r := range runs {
		select {
		case <-r.done:
		case <-deadline:
		}
	}
	killRecordedContainers(m.f.dir)
}

func (r *podRun) kill(grace *int64) {
	r.killOnce.Do(func() {
		g := int64(30)
		if grace != nil {
			g = *grace
		}
		if g > 30 {
			g = 30
		}
		r.grace = time.Duration(g) * time.Second
		close(r.killCh)
	})
}

func (r *podRun) killed() bool {
	select {
	case <-r.killCh:
		return true
	default:
		return false
	}
}

func (r *podRun) setPhase(p corev1.PodPhase, reason, msg string) {
	r.mu.Lock()
	r.phase, r.reason, r.message = p, reason, msg
	r.mu.Unlock()
}

// pushStatus writes the pod status the way the kubelet's status manager does.
func (r *podRun) pushStatus() error {
	r.mu.Lock()
	st := corev1.PodStatus{
		Phase:   r.phase,
		Reason:  r.reason,
		Message: r.message,
		HostIP:  r.node.ip.String(),
		HostIPs: []corev1.HostIP{{IP: r.node.ip.String()}},
	}
	if !r.started.IsZero() {
		st.StartTime = &r.started
	}
	for _, c := range r.pod.Spec.InitContainers {
		if s := r.initSt[c.Name]; s != nil {
			st.InitContainerStatuses = append(st.InitContainerStatuses, *s)
		}
	}
	allReady := true
	for _, c := range r.pod.Spec.Containers {
		if s := r.statuses[c.Name]; s != nil {
			st.ContainerStatuses = append(st.ContainerStatuses, *s)
			allReady = allReady && s.Ready
		} else {
			allReady = false
		}
	}
	initDone := true
	for _, c := range r.pod.Spec.InitContainers {
		s := r.initSt[c.Name]
		if s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			initDone = false
		}
	}
	r.mu.Unlock()
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	}
	running := st.Phase == corev1.PodRunning
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, running || st.Phase == corev1.PodPending),
		cond(corev1.PodInitialized, initDone),
		cond(corev1.PodReady, running && allReady),
		cond(corev1.ContainersReady, running && allReady),
		cond(corev1.PodScheduled, true),
	}
	patch, _ := json.Marshal(map[string]any{"status": st})
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		_, err = r.m.f.cs.CoreV1().Pods(r.pod.Namespace).Patch(r.m.f.ctx, r.pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if err == nil || apierrors.IsNotFound(err) {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	logf("fleet: pod %s/%s status: %v", r.pod.Namespace, r.pod.Name, err)
	return err
}

func (r *podRun) run() {
	defer close(r.done)
	defer r.m.forget(r)
	r.node.activePods.Add(1)
	defer r.node.activePods.Add(-1)
	pod := r.pod
	logf("fleet: node %s: starting pod %s/%s", r.node.name, pod.Namespace, pod.Name)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		logf("fleet: %v", err)
		return
	}
	waiting := func(reason, msg string) {
		r.mu.Lock()
		for _, c := range pod.Spec.Containers {
			r.statuses[c.Name] = &corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
		}
		r.mu.Unlock()
		r.setPhase(corev1.PodPending, "", "")
		_ = r.pushStatus()
		<-r.killCh // stays Pending until deleted (or its Job's deadline deletes it)
		r.m.finalDelete(pod)
	}
	images := readImageMap(r.m.f.dir)
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if _, ok := resolveImage(images, c.Image); !ok {
			waiting("ErrImagePull", fmt.Sprintf("image %q is not in the testenv image map (%s); map it with `up --image-map IMAGE=PATH` or KPC_TESTENV_IMAGE_MAP",
				c.Image, filepath.Join(r.m.f.dir, "image-map.json")))
			return
		}
	}
	volumes, err := r.prepareVolumes()
	if err != nil {
		waiting("CreateContainerConfigError", err.Error())
		return
	}
	r.mu.Lock()
	r.started = metav1.Now()
	r.mu.Unlock()

	failed := false
	for _, c := range pod.Spec.InitContainers {
		code := r.runContainer(c, volumes, images, true)
		if code != 0 {
			failed = true
			break
		}
	}
	if !failed && !r.killed() {
		r.setPhase(corev1.PodRunning, "", "")
		var wg sync.WaitGroup
		codes := make([]int, len(pod.Spec.Containers))
		for i, c := range pod.Spec.Containers {
			r.mu.Lock()
			r.statuses[c.Name] = &corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
			r.mu.Unlock()
			wg.Add(1)
			go func(i int, c corev1.Container) {
				defer wg.Done()
				codes[i] = r.runContainer(c, volumes, images, false)
			}(i, c)
		}
		wg.Wait()
		for _, c := range codes {
			if c != 0 {
				failed = true
			}
		}
	}
	if failed || r.killed() {
		r.setPhase(corev1.PodFailed, "", "")
	} else {
		r.setPhase(corev1.PodSucceeded, "", "")
	}
	_ = r.pushStatus()
	logf("fleet: node %s: pod %s/%s finished (%s)", r.node.name, pod.Namespace, pod.Name, r.phase)
	if r.killed() {
		r.m.finalDelete(pod)
	}
}

// runContainer runs one container to completion, restarting it as the pod's
// restartPolicy says, and returns its last exit code.
func (r *podRun) runContainer(c corev1.Container, volumes map[string]string, images map[string]string, isInit bool) int {
	policy := r.pod.Spec.RestartPolicy
	restarts := int32(0)
	backoff := time.Second
	logPath := filepath.Join(r.dir, c.Name+".log")
	r.m.mu.Lock()
	r.m.logs[r.pod.Namespace+"/"+r.pod.Name+"/"+c.Name] = logPath
	r.m.mu.Unlock()
	statuses := r.statuses
	if isInit {
		statuses = r.initSt
	}
	for {
		cid := fmt.Sprintf("testenv://%s-%s-%d", r.pod.UID, c.Name, restarts)
		start := metav1.Now()
		r.mu.Lock()
		var last corev1.ContainerState
		if s := statuses[c.Name]; s != nil && s.State.Terminated != nil {
			last = s.State
		}
		statuses[c.Name] = &corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: cid,
			RestartCount: restarts, Ready: !isInit, Started: ptr.To(true), LastTerminationState: last,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}
		if isInit {
			r.phase = corev1.PodPending
		} else {
			r.phase = corev1.PodRunning
		}
		r.mu.Unlock()
		_ = r.pushStatus()
		code, msg, reason := r.exec(c, volumes, images, logPath)
		r.mu.Lock()
		statuses[c.Name] = &corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: cid,
			RestartCount: restarts, Started: ptr.To(false), LastTerminationState: last,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: int32(code), Reason: reason, Message: msg, StartedAt: start, FinishedAt: metav1.Now(), ContainerID: cid}}}
		r.mu.Unlock()
		restart := !r.killed() && (policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && code != 0))
		if !restart {
			return code
		}
		_ = r.pushStatus()
		select {
		case <-r.killCh:
			return code
		case <-time.After(backoff):
		}
		if backoff < 10*time.Second {
			backoff *= 2
		}
		restarts++
	}
}

// exec starts the container's process through `testenv pod-exec` in a private mount
// namespace and waits for it; it returns exit code, termination message and reason.
func (r *podRun) exec(c corev1.Container, volumes map[string]string, images map[string]string, logPath string) (int, string, string) {
	fail := func(reason string, err error) (int, string, string) {
		msg := err.Error()
		appendFile(logPath, "testenv: "+msg+"\n")
		return 128, msg, reason
	}
	plan, err := r.plan(c, volumes, images)
	if err != nil {
		return fail("CreateContainerConfigError", err)
	}
	termHost := filepath.Join(r.dir, c.Name+".termination-log")
	_ = os.WriteFile(termHost, nil, 0o666)
	_ = os.Chmod(termHost, 0o666)
	termDst := c.TerminationMessagePath
	if termDst == "" {
		termDst = defaultTerminationLogDst
	}
	plan.Mounts = append(plan.Mounts, mountSpec{Source: termHost, Target: termDst, File: true})
	planPath := filepath.Join(r.dir, c.Name+".plan.json")
	b, _ := json.MarshalIndent(plan, "", "  ")
	if err := os.WriteFile(planPath, b, 0o644); err != nil {
		return fail("StartError", err)
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail("StartError", err)
	}
	defer lf.Close()
	cmd := exec.Command(r.m.f.info.Binary, "pod-exec", planPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	if c.Stdin {
		cmd.Stdin = nil
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Unshareflags: syscall.CLONE_NEWNS, // Go also makes / private (MS_REC|MS_PRIVATE) in the child
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fail("StartError", err)
	}
	pid := cmd.Process.Pid
	pidMarker := filepath.Join(r.m.f.dir, "run", "containers", strconv.Itoa(pid))
	_ = os.WriteFile(pidMarker, nil, 0o644)
	defer os.Remove(pidMarker)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waitErr:
	case <-r.killCh:
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case werr = <-waitErr:
		case <-time.After(r.grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			werr = <-waitErr
		}
	}
	// Whatever the main process left in its group goes with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	code := 0
	if werr != nil {
		code = 1
		if ee, ok := werr.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
				if ws.Signaled() {
					code = 128 + int(ws.Signal())
				} else {
					code = ws.ExitStatus()
				}
			}
		}
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	msg := readLimited(termHost, maxTerminationMessage)
	if msg == "" && code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = logTail(logPath, maxFallbackLogLines, maxFallbackLogBytes)
	}
	return code, msg, reason
}

func appendFile(p, s string) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		_, _ = f.WriteString(s)
		f.Close()
	}
}

func readLimited(p string, max int) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, int64(max)))
	return string(b)
}

func logTail(p string, lines, max int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	parts := bytes.Split(b, []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	out := bytes.Join(parts, []byte("\n"))
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return string(out)
}

// readImageMap reads DIR/image-map.json (re-read for every pod, so `up --image-map`
// on a running environment takes effect at once).
func readImageMap(dir string) map[string]string {
	m := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(dir, "image-map.json")); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// resolveImage finds an image in the map: the exact reference, then without its
// tag/digest, then the last path segment of that (`registry/org/name:tag` -> `name`).
func resolveImage(m map[string]string, image string) (string, bool) {
	if p, ok := m[image]; ok {
		return p, true
	}
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if p, ok := m[repo]; ok {
		return p, true
	}
	// Without the registry host ("localhost:5000/testenv/shell" -> "testenv/shell").
	if first, rest, ok := strings.Cut(repo, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if p, ok := m[rest]; ok {
			return p, true
		}
	}
	if p, ok := m[path.Base(repo)]; ok {
		return p, true
	}
	return "", false
}

type mountSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	File     bool   `json:"file,omitempty"`
}

type execPlan struct {
	Exe    string      `json:"exe"`
	Argv   []string    `json:"argv"`
	Env    []string    `json:"env"`
	Dir    string      `json:"dir"`
	Mounts []mountSpec `json:"mounts"`
}

func (r *podRun) fieldValue(fp string) (string, error) {
	pod := r.pod
	switch fp {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return r.node.ip.String(), nil
	case "status.podIP", "status.podIPs":
		return r.node.ip.String(), nil
	}
	return fieldpath.ExtractFieldPathAsString(pod, fp)
}

// env builds the container's environment like the kubelet: defaults, then env in
// order, each value expanded against the variables defined before it.
func (r *podRun) env(c corev1.Container) ([]string, map[string]string, error) {
	ctx := r.m.f.ctx
	ns := r.pod.Namespace
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOSTNAME", r.pod.Name)
	set("HOME", "/root")
	// In-cluster clients reach the API server on loopback.
	port := strconv.Itoa(r.m.f.info.APIServerPort)
	set("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	set("KUBERNETES_SERVICE_PORT", port)
	set("KUBERNETES_SERVICE_PORT_HTTPS", port)
	for _, ef := range c.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := r.m.f.cs.CoreV1().ConfigMaps(ns).Get(ctx, ef.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(ef.ConfigMapRef.Optional, false) {
					continue
				}
				return nil, nil, err
			}
			data = cm.Data
		case ef.SecretRef != nil:
			s, err := r.m.f.cs.CoreV1().Secrets(ns).Get(ctx, ef.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(ef.SecretRef.Optional, false) {
					continue
				}
				return nil, nil, err
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		for _, k := range sortedKeys(data) {
			set(ef.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		val := e.Value
		if e.ValueFrom == nil {
			val = expansion.Expand(val, expansion.MappingFuncFor(vars))
		} else {
			vf := e.ValueFrom
			var err error
			switch {
			case vf.FieldRef != nil:
				val, err = r.fieldValue(vf.FieldRef.FieldPath)
			case vf.ConfigMapKeyRef != nil:
				var cm *corev1.ConfigMap
				cm, err = r.m.f.cs.CoreV1().ConfigMaps(ns).Get(ctx, vf.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err == nil {
					val = cm.Data[vf.ConfigMapKeyRef.Key]
				} else if ptr.Deref(vf.ConfigMapKeyRef.Optional, false) {
					err = nil
				}
			case vf.SecretKeyRef != nil:
				var s *corev1.Secret
				s, err = r.m.f.cs.CoreV1().Secrets(ns).Get(ctx, vf.SecretKeyRef.Name, metav1.GetOptions{})
				if err == nil {
					val = string(s.Data[vf.SecretKeyRef.Key])
				} else if ptr.Deref(vf.SecretKeyRef.Optional, false) {
					err = nil
				}
			case vf.ResourceFieldRef != nil:
				val = "0"
			}
			if err != nil {
				return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		set(e.Name, val)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, vars, nil
}

func (r *podRun) plan(c corev1.Container, volumes map[string]string, images map[string]string) (*execPlan, error) {
	env, vars, err := r.env(c)
	if err != nil {
		return nil, err
	}
	mapping := expansion.MappingFuncFor(vars)
	var argv []string
	for _, s := range c.Command {
		argv = append(argv, expansion.Expand(s, mapping))
	}
	for _, s := range c.Args {
		argv = append(argv, expansion.Expand(s, mapping))
	}
	entry, _ := resolveImage(images, c.Image)
	exe := entry
	if len(c.Command) == 0 {
		argv = append([]string{entry}, argv...)
	} else if path.Base(argv[0]) != path.Base(entry) {
		exe = argv[0] // another program (e.g. /bin/sh from a host path); resolved via PATH
	}
	p := &execPlan{Exe: exe, Argv: argv, Env: env, Dir: c.WorkingDir}
	for _, vm := range c.VolumeMounts {
		src, ok := volumes[vm.Name]
		if !ok {
			continue
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expansion.Expand(vm.SubPathExpr, mapping)
		}
		if sub != "" {
			src = filepath.Join(src, filepath.Clean("/"+sub))
		}
		st, err := os.Stat(src)
		if err != nil {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, err
			}
			st, _ = os.Stat(src)
		}
		p.Mounts = append(p.Mounts, mountSpec{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly, File: st != nil && !st.IsDir()})
	}
	return p, nil
}

// prepareVolumes returns volume name -> host directory or file.
func (r *podRun) prepareVolumes() (map[string]string, error) {
	ctx := r.m.f.ctx
	out := map[string]string{}
	for _, v := range r.pod.Spec.Volumes {
		vdir := filepath.Join(r.dir, "volumes", v.Name)
		switch {
		case v.HostPath != nil:
			host := filepath.Join(r.node.root, filepath.Clean("/"+v.HostPath.Path))
			t := ptr.Deref(v.HostPath.Type, corev1.HostPathUnset)
			if _, err := os.Stat(host); os.IsNotExist(err) {
				switch t {
				case corev1.HostPathFileOrCreate:
					_ = os.MkdirAll(filepath.Dir(host), 0o755)
					if err := os.WriteFile(host, nil, 0o644); err != nil {
						return nil, err
					}
				case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate:
					if err := os.MkdirAll(host, 0o755); err != nil {
						return nil, err
					}
				default:
					return nil, fmt.Errorf("hostPath %s (type %s) does not exist on node %s", v.HostPath.Path, t, r.node.name)
				}
			}
			out[v.Name] = host
		case v.EmptyDir != nil:
			if err := os.MkdirAll(vdir, 0o777); err != nil {
				return nil, err
			}
			out[v.Name] = vdir
		case v.ConfigMap != nil || v.Secret != nil || v.Projected != nil || v.DownwardAPI != nil:
			if err := os.MkdirAll(vdir, 0o755); err != nil {
				return nil, err
			}
			var sources []corev1.VolumeProjection
			switch {
			case v.ConfigMap != nil:
				sources = []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items, Optional: v.ConfigMap.Optional}}}
			case v.Secret != nil:
				sources = []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items, Optional: v.Secret.Optional}}}
			case v.DownwardAPI != nil:
				sources = []corev1.VolumeProjection{{DownwardAPI: &corev1.DownwardAPIProjection{Items: v.DownwardAPI.Items}}}
			default:
				sources = v.Projected.Sources
			}
			if err := r.project(ctx, vdir, sources); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			out[v.Name] = vdir
		default:
			logf("fleet: pod %s/%s: volume %s: type not simulated, skipped", r.pod.Namespace, r.pod.Name, v.Name)
		}
	}
	return out, nil
}

func (r *podRun) project(ctx context.Context, dir string, sources []corev1.VolumeProjection) error {
	ns := r.pod.Namespace
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, filepath.Clean("/"+name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	writeItems := func(data map[string][]byte, items []corev1.KeyToPath) error {
		if len(items) == 0 {
			for k, v := range data {
				if err := write(k, v); err != nil {
					return err
				}
			}
			return nil
		}
		for _, it := range items {
			if err := write(it.Path, data[it.Key]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, s := range sources {
		switch {
		case s.ServiceAccountToken != nil:
			aud := []string{}
			if s.ServiceAccountToken.Audience != "" {
				aud = []string{s.ServiceAccountToken.Audience}
			}
			exp := ptr.Deref(s.ServiceAccountToken.ExpirationSeconds, 3607)
			sa := r.pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			tr, err := r.m.f.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
				Spec: authenticationv1.TokenRequestSpec{Audiences: aud, ExpirationSeconds: &exp,
					BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: r.pod.Name, UID: r.pod.UID}},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if err := write(s.ServiceAccountToken.Path, []byte(tr.Status.Token)); err != nil {
				return err
			}
		case s.ConfigMap != nil:
			cm, err := r.m.f.cs.CoreV1().ConfigMaps(ns).Get(ctx, s.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(s.ConfigMap.Optional, false) {
					continue
				}
				return err
			}
			data := map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
			if err := writeItems(data, s.ConfigMap.Items); err != nil {
				return err
			}
		case s.Secret != nil:
			sec, err := r.m.f.cs.CoreV1().Secrets(ns).Get(ctx, s.Secret.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(s.Secret.Optional, false) {
					continue
				}
				return err
			}
			if err := writeItems(sec.Data, s.Secret.Items); err != nil {
				return err
			}
		case s.DownwardAPI != nil:
			for _, it := range s.DownwardAPI.Items {
				val := ""
				if it.FieldRef != nil {
					v, err := r.fieldValue(it.FieldRef.FieldPath)
					if err != nil {
						return err
					}
					val = v
				}
				if err := write(it.Path, []byte(val)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// serveLogs is the kubelet's /containerLogs endpoint (tailLines, limitBytes, follow).
func (m *podManager) serveLogs(w http.ResponseWriter, req *http.Request, n *simNode, ns, pod, container string) {
	m.mu.Lock()
	p, ok := m.logs[ns+"/"+pod+"/"+container]
	var run *podRun
	for _, r := range m.running {
		if r.pod.Namespace == ns && r.pod.Name == pod {
			run = r
		}
	}
	m.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("container %q in pod %q is not known on node %s", container, pod, n.name), http.StatusNotFound)
		return
	}
	q := req.URL.Query()
	b, _ := os.ReadFile(p)
	if t := q.Get("tailLines"); t != "" {
		if lines, err := strconv.Atoi(t); err == nil {
			if lines == 0 {
				b = nil
			} else {
				parts := bytes.SplitAfter(b, []byte("\n"))
				if len(parts) > 0 && len(parts[len(parts)-1]) == 0 {
					parts = parts[:len(parts)-1]
				}
				if len(parts) > lines {
					parts = parts[len(parts)-lines:]
				}
				b = bytes.Join(parts, nil)
			}
		}
	}
	limit := -1
	if l := q.Get("limitBytes"); l != "" {
		limit, _ = strconv.Atoi(l)
	}
	if limit >= 0 && len(b) > limit {
		b = b[:limit]
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(b)
	if q.Get("follow") != "true" || run == nil || limit >= 0 {
		return
	}
	fl, _ := w.(http.Flusher)
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	st, _ := f.Stat()
	_, _ = f.Seek(st.Size(), io.SeekStart)
	buf := make([]byte, 32<<10)
	for {
		nr, _ := f.Read(buf)
		if nr > 0 {
			_, _ = w.Write(buf[:nr])
			if fl != nil {
				fl.Flush()
			}
			continue
		}
		select {
		case <-run.done:
			rest, _ := io.ReadAll(f)
			_, _ = w.Write(rest)
			return
		case <-req.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var _ = sort.Strings
