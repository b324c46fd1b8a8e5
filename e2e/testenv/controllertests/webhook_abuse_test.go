package controllertests

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The admission webhook under abuse, sent straight to its port as any pod in the cluster could
// (the NetworkPolicy admits the API server only, but the process must not depend on that):
// a policy with a 100,000-character field, 1,000 connections that never finish their
// handshake, and many concurrent bodies just under the request limit. Throughout, `kubectl
// apply` through the API server keeps succeeding, the process stays up, and its peak memory
// stays under the Deployment's limit (deploy/base/deployment-webhook.yaml: 256Mi).

const webhookMemoryLimitMiB = 256

// peakRSSMiB is the process's peak resident set (VmHWM) in MiB.
func peakRSSMiB(t *testing.T, pid int) float64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the status of pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kib, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("VmHWM of pid %d: %q", pid, line)
			}
			return kib / 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// admissionReview is a CREATE review of a KubeletPolicy whose only rule is `rule`.
func admissionReview(uid string, rule map[string]any) []byte {
	policy := map[string]any{
		"apiVersion": "kubeletpolicy.io/v1alpha1",
		"kind":       "KubeletPolicy",
		"metadata":   map[string]any{"name": "abuse-" + uid},
		"spec": map[string]any{
			"nodeSelector": map[string]any{"matchLabels": map[string]any{"e2e-pool": "nothing-selected"}},
			"rules":        []any{rule},
		},
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       uid,
			"kind":      map[string]any{"group": "kubeletpolicy.io", "version": "v1alpha1", "kind": "KubeletPolicy"},
			"resource":  map[string]any{"group": "kubeletpolicy.io", "version": "v1alpha1", "resource": "kubeletpolicies"},
			"name":      "abuse-" + uid,
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "abuser"},
			"object":    policy,
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		panic(err)
	}
	return b
}

type reviewResponse struct {
	Response struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
		Status  struct {
			Message string `json:"message"`
		} `json:"status"`
	} `json:"response"`
}

func abuseClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the test only needs the bytes there
			MaxIdleConnsPerHost: 64,
		},
	}
}

func TestWebhookUnderAbuse(t *testing.T) {
	w := startWebhooks(t)
	pid := w.cmd.Process.Pid
	url := fmt.Sprintf("https://127.0.0.1:%d/validate-kubeletpolicy", w.port)
	client := abuseClient()
	loop := startApplyLoop(t, "ctl-wh-abuse")
	defer loop.finish()

	t.Run("a 100,000-character field is a short denial", func(t *testing.T) {
		body := admissionReview("huge-owner", map[string]any{
			"id":   "f",
			"file": map[string]any{"target": "KubeletConfigFile", "owner": strings.Repeat("a", 100_000)},
		})
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		var r reviewResponse
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("response: %v: %s", err, raw)
		}
		if r.Response.Allowed || r.Response.UID != "huge-owner" {
			t.Fatalf("want a denial for uid huge-owner, got %s", raw)
		}
		if len(raw) > 4096 || !strings.Contains(r.Response.Status.Message, "spec.rules[0].file.owner") {
			t.Fatalf("want a short denial naming spec.rules[0].file.owner, got %d bytes: %.300s", len(raw), raw)
		}
	})

	t.Run("1,000 connections that never finish the handshake", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < 1000; i++ {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", w.port), 2*time.Second)
			if err != nil {
				continue // the kernel's backlog may refuse some: that is fine
			}
			_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // the first bytes of a ClientHello, then silence
			conns = append(conns, c)
		}
		t.Logf("%d slow connections open", len(conns))
		// While they are open the webhook answers a normal review, and kubectl keeps working.
		eventually(t, 20*time.Second, "a review is answered beside the slow connections", func() error {
			resp, err := abuseClient().Post(url, "application/json", bytes.NewReader(admissionReview("ok", map[string]any{
				"id": "a", "config": map[string]any{"path": "readOnlyPort", "operator": "Equals", "value": 0},
			})))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
		time.Sleep(5 * time.Second)
	})

	t.Run("concurrent bodies just under the request limit", func(t *testing.T) {
		// 2.5 MiB of filler in a string field, 32 senders, 4 rounds each.
		filler := strings.Repeat("x", 5<<19)
		body := admissionReview("big", map[string]any{
			"id": "a", "description": filler,
			"config": map[string]any{"path": "readOnlyPort", "operator": "Equals", "value": 0},
		})
		var ok, busy, other atomic.Int64
		var wg sync.WaitGroup
		for s := 0; s < 32; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := abuseClient()
				for round := 0; round < 4; round++ {
					resp, err := c.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						other.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok.Add(1)
					case 503:
						if resp.Header.Get("Retry-After") == "" {
							t.Errorf("503 without Retry-After")
						}
						busy.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		t.Logf("large bodies: %d answered, %d refused with 503, %d other", ok.Load(), busy.Load(), other.Load())
		if ok.Load() == 0 {
			t.Errorf("no large review was answered")
		}
		if other.Load() != 0 {
			t.Errorf("%d large reviews neither answered nor refused with 503", other.Load())
		}
	})

	loop.finish()
	loop.check(t, "the abuse")
	if !processAlive(pid) || w.exited() {
		t.Fatalf("the webhook process died: %v\n%s", w.waitErr, tail(w.logs(), 40))
	}
	peak := peakRSSMiB(t, pid)
	t.Logf("webhook peak RSS %.1f MiB (limit %d MiB)", peak, webhookMemoryLimitMiB)
	if peak >= webhookMemoryLimitMiB {
		t.Errorf("peak RSS %.1f MiB is over the Deployment's %d MiB limit", peak, webhookMemoryLimitMiB)
	}
}
