package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
)

func TestBehaviorParamsWithQuery(t *testing.T) {
	body := filepath.Join(t.TempDir(), "configz.json")
	if err := os.WriteFile(body, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := defaultBehaviorParams()
	for _, tc := range []struct {
		query   string
		want    behaviorParams // compared when errPart is ""
		errPart string
	}{
		{"", base, ""},
		{"delay=30s", behaviorParams{30 * time.Second, defaultHugeBytes, defaultDeepDepth, "", defaultRetryAfter}, ""},
		{"bytes=64Mi", base, ""},
		{"bytes=1000", behaviorParams{defaultBehaviorDelay, 1000, defaultDeepDepth, "", defaultRetryAfter}, ""},
		{"bytes=0", behaviorParams{defaultBehaviorDelay, 0, defaultDeepDepth, "", defaultRetryAfter}, ""},
		{"bytes=4Gi", behaviorParams{defaultBehaviorDelay, 4 << 30, defaultDeepDepth, "", defaultRetryAfter}, ""},
		{"depth=10000000&retryAfter=0", behaviorParams{defaultBehaviorDelay, defaultHugeBytes, 10_000_000, "", 0}, ""},
		{"body=" + url.QueryEscape(body), behaviorParams{defaultBehaviorDelay, defaultHugeBytes, defaultDeepDepth, body, defaultRetryAfter}, ""},
		{"bytes=-1", base, "bytes -1 is negative"},
		{"bytes=4294967297", base, "over the cap of 4Gi"},
		{"bytes=5Gi", base, "bytes 5Gi is over the cap of 4Gi"},
		{"bytes=1e30", base, "over the cap"},
		{"bytes=lots", base, `bytes "lots" is not a byte count`},
		{"bytes=0.5", base, "bytes 500m is not a whole number"},
		{"depth=0", base, "depth 0 is out of range: 1 to 10000000"},
		{"depth=-5", base, "depth -5 is out of range"},
		{"depth=10000001", base, "depth 10000001 is out of range"},
		{"depth=deep", base, `depth "deep" is not an integer`},
		{"retryAfter=-1", base, "retryAfter -1 is out of range"},
		{"retryAfter=5s", base, `retryAfter "5s" is not a whole number of seconds`},
		{"delay=-1s", base, `delay "-1s" is not a non-negative duration`},
		{"delay=soon", base, `delay "soon" is not a non-negative duration`},
		{"body=relative.json", base, `body "relative.json" must be an absolute path`},
		{"body=/no/such/file.json", base, "no such file or directory"},
		{"body=" + url.QueryEscape(filepath.Dir(body)), base, "is not a regular file"},
		// The first invalid parameter refuses the whole request.
		{"delay=1s&bytes=-1", base, "negative"},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := base.withQuery(q)
		switch {
		case tc.errPart == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.errPart == "" && got != tc.want:
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		case tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)):
			t.Errorf("%q: error %v, want one containing %q", tc.query, err, tc.errPart)
		}
	}
}

func TestCheckBehavior(t *testing.T) {
	withBody := defaultBehaviorParams()
	withBody.Body = "/x.json"
	for _, tc := range []struct {
		behavior string
		p        behaviorParams
		errPart  string
	}{
		{"", defaultBehaviorParams(), ""},
		{"huge", defaultBehaviorParams(), ""},
		{"deep", defaultBehaviorParams(), ""},
		{"stall", defaultBehaviorParams(), ""},
		{"throttled", defaultBehaviorParams(), ""},
		{"body", withBody, ""},
		{"body", defaultBehaviorParams(), "behavior body needs a file to serve"},
		{"enormous", defaultBehaviorParams(), `unknown behavior "enormous" (known: [body deep error garbage huge normal`},
	} {
		err := checkBehavior(tc.behavior, tc.p)
		if (tc.errPart == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.errPart)) {
			t.Errorf("%q: %v, want error containing %q", tc.behavior, err, tc.errPart)
		}
	}
}

func TestNodeSpecBehaviorParams(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	bodyFile := filepath.Join(dir, "data", "body.json")
	if err := os.WriteFile(bodyFile, []byte(`{"kubeletconfig":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	def := defaultBehaviorParams()
	for _, tc := range []struct {
		name, spec string
		want       behaviorParams
		errPart    string
	}{
		{"defaults", "behavior: huge\n", def, ""},
		{"quantity", "behavior: huge\nbehaviorBytes: 1Mi\n", behaviorParams{def.Delay, 1 << 20, def.Depth, "", def.RetryAfter}, ""},
		{"integer", "behaviorBytes: 1000\nbehaviorDepth: 7\nbehaviorRetryAfter: 9\nbehaviorDelay: 2s\n",
			behaviorParams{2 * time.Second, 1000, 7, "", 9}, ""},
		{"relative body", "behavior: body\nbehaviorBody: data/body.json\n", behaviorParams{def.Delay, def.Bytes, def.Depth, bodyFile, def.RetryAfter}, ""},
		{"absolute body", "behavior: body\nbehaviorBody: " + bodyFile + "\n", behaviorParams{def.Delay, def.Bytes, def.Depth, bodyFile, def.RetryAfter}, ""},
		{"unknown behaviour", "behavior: enormous\n", def, `unknown behavior "enormous"`},
		{"negative bytes", "behaviorBytes: -1\n", def, "behaviorBytes: bytes -1 is negative"},
		{"bytes over the cap", "behaviorBytes: 5Gi\n", def, "behaviorBytes: bytes 5Gi is over the cap of 4Gi"},
		{"bytes not a number", "behaviorBytes: lots\n", def, `behaviorBytes: bytes "lots" is not a byte count`},
		{"bytes not a scalar", "behaviorBytes: [1]\n", def, `behaviorBytes: bytes "[1]" is not a byte count`},
		{"depth too deep", "behaviorDepth: 10000001\n", def, "behaviorDepth: depth 10000001 is out of range"},
		{"depth zero", "behaviorDepth: 0\n", def, "behaviorDepth: depth 0 is out of range"},
		{"negative retryAfter", "behaviorRetryAfter: -3\n", def, "behaviorRetryAfter: retryAfter -3 is out of range"},
		{"bad delay", "behaviorDelay: soon\n", def, `behaviorDelay "soon"`},
		{"missing body", "behavior: body\nbehaviorBody: data/nope.json\n", def, "behaviorBody: body: stat " + filepath.Join(dir, "data", "nope.json")},
		{"body without a file", "behavior: body\n", def, "behavior body needs a file to serve"},
		{"misspelt field", "behaviorByte: 5\n", def, "unknown field"},
	} {
		file := filepath.Join(dir, "n.yaml")
		if err := os.WriteFile(file, []byte(tc.spec), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := loadNodeSpec(file)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got, err := s.params(dir); err != nil || got != tc.want {
			t.Errorf("%s: %+v (%v), want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestCopyBehaviorBody(t *testing.T) {
	repo := t.TempDir()
	nodes, testdata := filepath.Join(repo, "nodes"), filepath.Join(repo, "testdata")
	for _, d := range []string{nodes, testdata} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(testdata, "b.json"), []byte("BODY"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	specDir := filepath.Join(state, "node-specs")
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, spec string) string {
		p := filepath.Join(nodes, name)
		if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// ../testdata relative to the spec: copied next to the copied spec's parent, and the copy
	// resolves from the state dir exactly as the original does from the repository.
	src := write("a.yaml", "behavior: body\nbehaviorBody: ../testdata/b.json\n")
	if err := copyBehaviorBody(state, src, specDir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(state, "testdata", "b.json")); err != nil || string(b) != "BODY" {
		t.Errorf("copied body: %q %v", b, err)
	}
	// Into the state dir's own entries, or above it: refused.
	if err := os.WriteFile(filepath.Join(repo, "b.json"), []byte("X"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "pki"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "pki", "b.json"), []byte("X"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"../b.json", "../pki/b.json", "../../" + filepath.Base(repo) + "/testdata/b.json"} {
		src := write("bad.yaml", "behaviorBody: "+rel+"\n")
		if err := copyBehaviorBody(state, src, specDir); err == nil || !strings.Contains(err.Error(), "must land in a directory of its own") {
			t.Errorf("%s: %v, want a refusal", rel, err)
		}
	}
	// Absolute paths are used where they are.
	src = write("abs.yaml", "behaviorBody: "+filepath.Join(testdata, "b.json")+"\n")
	if err := copyBehaviorBody(state, src, specDir); err != nil {
		t.Error(err)
	}
}

// hostileServer serves f.kubeletHandler for node n over real HTTP (what the egress path
// and, behind the auth filter, the direct listener serve) and counts handlers in flight.
func hostileServer(t *testing.T, f *fleet, n *simNode) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var inFlight atomic.Int32
	h := f.kubeletHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, n)))
	}))
	t.Cleanup(srv.Close)
	return srv, &inFlight
}

func hostileNode(behavior string, p behaviorParams, configz []byte) *simNode {
	return &simNode{name: "hostile", up: true, behavior: behavior, params: p, configz: configz}
}

// waitUntil polls cond for up to 5s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 5s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGoroutines waits until no more than base goroutines run (leak check).
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the request:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maxJSONDepth is the deepest nesting of objects and arrays in JSON text without strings
// that contain brackets (what writeDeep writes).
func maxJSONDepth(r io.Reader) (int, int64, error) {
	buf := make([]byte, 64<<10)
	depth, max := 0, 0
	var total int64
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			switch c {
			case '[', '{':
				depth++
				if depth > max {
					max = depth
				}
			case ']', '}':
				depth--
			}
		}
		total += int64(n)
		if errors.Is(err, io.EOF) {
			return max, total, nil
		}
		if err != nil {
			return max, total, err
		}
	}
}

func TestHostileConfigzAnswers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fleet{ctx: ctx}
	bodyFile := filepath.Join(t.TempDir(), "configz.json")
	fileContent := []byte(`{"kubeletconfig":{"authentication":{"anonymous":{"enabled":false}}},"x":"` + strings.Repeat("y", 100_000) + `"}`)
	if err := os.WriteFile(bodyFile, fileContent, 0o644); err != nil {
		t.Fatal(err)
	}
	with := func(mod func(*behaviorParams)) behaviorParams {
		p := defaultBehaviorParams()
		mod(&p)
		return p
	}
	type check func(t *testing.T, resp *http.Response)
	status := func(code int, contentType string) check {
		return func(t *testing.T, resp *http.Response) {
			if resp.StatusCode != code || resp.Header.Get("Content-Type") != contentType {
				t.Errorf("%s %q, want %d %q", resp.Status, resp.Header.Get("Content-Type"), code, contentType)
			}
		}
	}
	chunked := func(t *testing.T, resp *http.Response) {
		if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("Content-Length %d, Transfer-Encoding %v: want a chunked stream", resp.ContentLength, resp.TransferEncoding)
		}
	}
	exactBody := func(want []byte) check {
		return func(t *testing.T, resp *http.Response) {
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("body (%d bytes, %v) %.80q, want (%d bytes) %.80q", len(got), err, got, len(want), want)
			}
		}
	}
	hugeBody := func(total int64) check {
		return func(t *testing.T, resp *http.Response) {
			var head bytes.Buffer
			n, err := io.Copy(io.Discard, io.TeeReader(io.LimitReader(resp.Body, int64(len(hugePrefix))), &head))
			rest, err2 := io.Copy(io.Discard, resp.Body)
			if err != nil || err2 != nil || n+rest != total || head.String() != hugePrefix[:n] {
				t.Errorf("streamed %d bytes (%v, %v) starting %q, want %d starting %q", n+rest, err, err2, head.String(), total, hugePrefix)
			}
		}
	}
	validJSON := func(t *testing.T, resp *http.Response) {
		b, err := io.ReadAll(resp.Body)
		if err != nil || !json.Valid(b) {
			t.Errorf("body (%d bytes, %v) is not valid JSON: %.80q", len(b), err, b)
		}
	}
	deepBody := func(depth int) check {
		return func(t *testing.T, resp *http.Response) {
			got, total, err := maxJSONDepth(resp.Body)
			if wantLen := int64(len(deepPrefix) + 2*depth + len(deepSuffix)); err != nil || got != depth+4 || total != wantLen {
				t.Errorf("nests %d levels in %d bytes (%v), want %d levels in %d bytes", got, total, err, depth+4, wantLen)
			}
		}
	}
	throttled := func(retryAfter string, seconds int) check {
		return func(t *testing.T, resp *http.Response) {
			var st metav1.Status
			err := json.NewDecoder(resp.Body).Decode(&st)
			if resp.Header.Get("Retry-After") != retryAfter || err != nil || st.Kind != "Status" || st.Code != 429 ||
				st.Reason != metav1.StatusReasonTooManyRequests || st.Details == nil || st.Details.RetryAfterSeconds != int32(seconds) {
				t.Errorf("Retry-After %q, Status %+v (%v), want Retry-After %s and a TooManyRequests Status", resp.Header.Get("Retry-After"), st, err, retryAfter)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		behavior string
		p        behaviorParams
		checks   []check
	}{
		{"huge, default 64 MiB", "huge", defaultBehaviorParams(), []check{status(200, "application/json"), chunked, hugeBody(64 << 20)}},
		{"huge 1 MiB is valid JSON", "huge", with(func(p *behaviorParams) { p.Bytes = 1 << 20 }), []check{chunked, validJSON}},
		{"huge, exactly the prefix and suffix", "huge", with(func(p *behaviorParams) { p.Bytes = int64(len(hugePrefix + hugeSuffix)) }),
			[]check{exactBody([]byte(hugePrefix + hugeSuffix))}},
		{"huge, cut inside the prefix", "huge", with(func(p *behaviorParams) { p.Bytes = 10 }), []check{exactBody([]byte(hugePrefix[:10]))}},
		{"huge 0 bytes", "huge", with(func(p *behaviorParams) { p.Bytes = 0 }), []check{status(200, "application/json"), exactBody(nil)}},
		{"deep, default 100000", "deep", defaultBehaviorParams(), []check{status(200, "application/json"), chunked, deepBody(100_000)}},
		{"deep 3", "deep", with(func(p *behaviorParams) { p.Depth = 3 }),
			[]check{exactBody([]byte(`{"kubeletconfig":{"authentication":{"anonymous":{"enabled":[[[]]]}}}}`))}},
		// encoding/json stops at 10000 levels: the default is checked by deepBody above.
		{"deep 9000 is valid JSON", "deep", with(func(p *behaviorParams) { p.Depth = 9000 }), []check{validJSON}},
		{"body", "body", with(func(p *behaviorParams) { p.Body = bodyFile }), []check{status(200, "application/json"),
			func(t *testing.T, resp *http.Response) {
				if resp.ContentLength != int64(len(fileContent)) {
					t.Errorf("Content-Length %d, want the file's %d", resp.ContentLength, len(fileContent))
				}
			}, exactBody(fileContent)}},
		{"body, file gone", "body", with(func(p *behaviorParams) { p.Body = bodyFile + ".gone" }),
			[]check{status(500, "text/plain; charset=utf-8")}},
		{"throttled, default", "throttled", defaultBehaviorParams(), []check{status(429, "application/json"), throttled("5", 5)}},
		{"throttled 17s", "throttled", with(func(p *behaviorParams) { p.RetryAfter = 17 }), []check{throttled("17", 17)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, inFlight := hostileServer(t, f, hostileNode(tc.behavior, tc.p, []byte(`{"kubeletconfig":{}}`)))
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := client.Get(srv.URL + "/configz")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.checks {
				c(t, resp)
			}
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			// Streamed, never held: far less allocated (client and server together) than sent.
			if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
				t.Errorf("%d MiB allocated while serving", got>>20)
			}
			waitUntil(t, "the handler returns", func() bool { return inFlight.Load() == 0 })
		})
	}
}

// stallRequest starts GET /configz on a stall node and reads the half body it gets.
func stallRequest(t *testing.T, srvURL string, configz []byte) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srvURL+"/configz", nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(configz)) {
		t.Fatalf("%s, Content-Length %d, want 200 and the whole configz's length %d", resp.Status, resp.ContentLength, len(configz))
	}
	half := make([]byte, len(configz)/2)
	if _, err := io.ReadFull(resp.Body, half); err != nil || !bytes.Equal(half, configz[:len(half)]) {
		t.Fatalf("first half: %q %v", half, err)
	}
	return resp, cancel
}

// readEnds reads the rest of the body in the background: it must block for a while (the
// stall), then end with an error when the stall ends.
func readEnds(t *testing.T, resp *http.Response) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = fmt.Errorf("the body ended cleanly after %d more bytes", len(b))
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the rest of the body did not stall: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	return done
}

func TestStallSendsHalfThenBlocks(t *testing.T) {
	configz := []byte(`{"kubeletconfig":{"authentication":{"anonymous":{"enabled":false}},"readOnlyPort":0}}`)
	for _, end := range []string{"client goes away", "behaviour changes", "fleet stops"} {
		t.Run(end, func(t *testing.T) {
			ctx, stopFleet := context.WithCancel(context.Background())
			defer stopFleet()
			n := hostileNode("stall", defaultBehaviorParams(), configz)
			srv, inFlight := hostileServer(t, &fleet{ctx: ctx}, n)
			base := runtime.NumGoroutine()
			resp, cancel := stallRequest(t, srv.URL, configz)
			defer cancel()
			done := readEnds(t, resp)
			if inFlight.Load() != 1 {
				t.Fatalf("%d handlers in flight, want the stalled one", inFlight.Load())
			}
			switch end {
			case "client goes away":
				cancel()
			case "behaviour changes":
				n.setBehavior("normal", defaultBehaviorParams())
			case "fleet stops":
				stopFleet()
			}
			select {
			case err := <-done:
				if end != "client goes away" && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("the body ended with %v, want unexpected EOF (cut short of its Content-Length)", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the stalled body did not end", end)
			}
			resp.Body.Close()
			waitUntil(t, "the stalled handler returns", func() bool { return inFlight.Load() == 0 })
			waitGoroutines(t, base)
		})
	}
	// Several stalled requests at once, all released by one behaviour change; nothing leaks.
	n := hostileNode("stall", defaultBehaviorParams(), configz)
	srv, inFlight := hostileServer(t, &fleet{ctx: context.Background()}, n)
	base := runtime.NumGoroutine()
	var dones []<-chan error
	for i := 0; i < 5; i++ {
		resp, cancel := stallRequest(t, srv.URL, configz)
		defer cancel()
		defer resp.Body.Close()
		dones = append(dones, readEnds(t, resp))
	}
	n.setBehavior("stall", defaultBehaviorParams()) // a new setting ends the old stalls too
	for _, d := range dones {
		select {
		case <-d:
		case <-time.After(5 * time.Second):
			t.Fatal("a stalled body did not end")
		}
	}
	waitUntil(t, "the stalled handlers return", func() bool { return inFlight.Load() == 0 })
	waitGoroutines(t, base)
	// A stopped kubelet has no configz to send half of.
	stopped := hostileNode("stall", defaultBehaviorParams(), nil)
	srv2, _ := hostileServer(t, &fleet{ctx: context.Background()}, stopped)
	resp, err := http.Get(srv2.URL + "/configz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stall on a stopped kubelet: %s, want 503", resp.Status)
	}
}

// A huge answer stops being generated when its client goes away.
func TestHugeStopsWhenTheClientGoesAway(t *testing.T) {
	n := hostileNode("huge", defaultBehaviorParams(), nil)
	n.params.Bytes = 4 << 30
	srv, inFlight := hostileServer(t, &fleet{ctx: context.Background()}, n)
	base := runtime.NumGoroutine()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(srv.URL + "/configz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitUntil(t, "the huge handler returns", func() bool { return inFlight.Load() == 0 })
	waitGoroutines(t, base)
}

// On the direct endpoint the hostile answers come after authentication and authorization,
// like garbage, error and slow: an unauthenticated client gets 401, not 64 MiB.
func TestHostileAfterKubeletAuth(t *testing.T) {
	cache := &authCache{client: fakeAuthAPI(t, map[string][]string{"reader": {"configz"}}), stop: context.Background().Done(),
		m: map[string]*sharedAuth{}}
	ttl := metav1.Duration{Duration: time.Minute}
	a, err := cache.forNode("n1", kubeletconfig.KubeletAuthentication{Webhook: kubeletconfig.KubeletWebhookAuthentication{Enabled: true, CacheTTL: ttl}},
		kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeWebhook,
			Webhook: kubeletconfig.KubeletWebhookAuthorization{CacheAuthorizedTTL: ttl, CacheUnauthorizedTTL: ttl}})
	if err != nil {
		t.Fatal(err)
	}
	filter := kubeletAuthFilter((&fleet{ctx: context.Background()}).kubeletHandler())
	for _, tc := range []struct {
		behavior, token string
		code            int
	}{
		{"huge", "", 401},
		{"deep", "", 401},
		{"stall", "", 401},
		{"throttled", "", 401},
		{"huge", "user-stranger", 403},
		{"throttled", "user-stranger", 403},
		{"huge", "user-reader", 200},
		{"deep", "user-reader", 200},
		{"throttled", "user-reader", 429},
	} {
		p := defaultBehaviorParams()
		p.Bytes, p.Depth = 1000, 10
		n := &simNode{name: "n1", up: true, behavior: tc.behavior, params: p, auth: a, fineGrained: true, gateFineGrained: true,
			configz: []byte(`{"kubeletconfig":{}}`)}
		req := httptest.NewRequest("GET", "https://127.18.0.1:10250/configz", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		filter.ServeHTTP(rec, req.WithContext(context.WithValue(req.Context(), ctxKey{}, n)))
		if rec.Code != tc.code {
			t.Errorf("%s as %q: %d %.80q, want %d", tc.behavior, tc.token, rec.Code, rec.Body.String(), tc.code)
		}
	}
}
