package main

// Hostile kubelets: /configz answers that are too large, too deep, never finish, arbitrary,
// or throttled. Every body is generated while it is written (or streamed from its file), so a
// 4 GiB answer costs the fleet a few fixed buffers, not 4 GiB.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// behaviorParams are the knobs of the behaviours: node spec fields behavior*, control socket
// query parameters.
type behaviorParams struct {
	Delay      time.Duration // slow: how long /configz waits
	Bytes      int64         // huge: the body's size
	Depth      int           // deep: how many arrays nest in the value
	Body       string        // body: the file served (absolute path)
	RetryAfter int           // throttled: the Retry-After header, in seconds
}

const (
	defaultBehaviorDelay = 10 * time.Second
	defaultHugeBytes     = 64 << 20
	maxHugeBytes         = 4 << 30
	defaultDeepDepth     = 100_000
	maxDeepDepth         = 10_000_000
	defaultRetryAfter    = 5
	maxRetryAfter        = 86_400
)

func defaultBehaviorParams() behaviorParams {
	return behaviorParams{Delay: defaultBehaviorDelay, Bytes: defaultHugeBytes, Depth: defaultDeepDepth,
		RetryAfter: defaultRetryAfter}
}

// parseBehaviorBytes reads a byte count: an integer or a quantity (64Mi, 1G), 0 to 4 GiB.
func parseBehaviorBytes(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("bytes %q is not a byte count (e.g. 67108864 or 64Mi)", s)
	}
	return checkBehaviorBytes(q)
}

func checkBehaviorBytes(q resource.Quantity) (int64, error) {
	v, ok := q.AsInt64()
	switch {
	case q.Sign() < 0:
		return 0, fmt.Errorf("bytes %s is negative", q.String())
	case q.CmpInt64(maxHugeBytes) > 0:
		return 0, fmt.Errorf("bytes %s is over the cap of 4Gi (%d bytes)", q.String(), int64(maxHugeBytes))
	case !ok:
		return 0, fmt.Errorf("bytes %s is not a whole number", q.String())
	}
	return v, nil
}

func checkBehaviorDepth(d int) error {
	if d < 1 || d > maxDeepDepth {
		return fmt.Errorf("depth %d is out of range: 1 to %d", d, maxDeepDepth)
	}
	return nil
}

func checkBehaviorRetryAfter(s int) error {
	if s < 0 || s > maxRetryAfter {
		return fmt.Errorf("retryAfter %d is out of range: 0 to %d seconds", s, maxRetryAfter)
	}
	return nil
}

// checkBehaviorBody requires an absolute path to a regular file.
func checkBehaviorBody(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("body %q must be an absolute path", p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("body %s is not a regular file", p)
	}
	return nil
}

// withQuery returns p changed by the control socket's query parameters (delay, bytes, depth,
// body, retryAfter); the ones not given keep their value. The whole request is refused at the
// first invalid one.
func (p behaviorParams) withQuery(q url.Values) (behaviorParams, error) {
	if v := q.Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return p, fmt.Errorf("delay %q is not a non-negative duration (e.g. 30s)", v)
		}
		p.Delay = d
	}
	if v := q.Get("bytes"); v != "" {
		b, err := parseBehaviorBytes(v)
		if err != nil {
			return p, err
		}
		p.Bytes = b
	}
	if v := q.Get("depth"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("depth %q is not an integer", v)
		}
		if err := checkBehaviorDepth(d); err != nil {
			return p, err
		}
		p.Depth = d
	}
	if v := q.Get("body"); v != "" {
		if err := checkBehaviorBody(v); err != nil {
			return p, err
		}
		p.Body = v
	}
	if v := q.Get("retryAfter"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("retryAfter %q is not a whole number of seconds", v)
		}
		if err := checkBehaviorRetryAfter(s); err != nil {
			return p, err
		}
		p.RetryAfter = s
	}
	return p, nil
}

// checkBehavior refuses an unknown behaviour, and body without a file to serve.
func checkBehavior(b string, p behaviorParams) error {
	if _, ok := behaviors[b]; !ok {
		return fmt.Errorf("unknown behavior %q (known: %v)", b, sortedKeys(behaviors)[1:])
	}
	if b == "body" && p.Body == "" {
		return fmt.Errorf("behavior body needs a file to serve: behaviorBody in the node spec, or &body=PATH")
	}
	return nil
}

// Read-only filler, shared by every hostile answer in flight.
var (
	fillX     = bytes.Repeat([]byte("x"), 32<<10)
	fillOpen  = bytes.Repeat([]byte("["), 32<<10)
	fillClose = bytes.Repeat([]byte("]"), 32<<10)
)

// writeRepeated writes n bytes of fill (any length; fill is repeated), stopping early when
// ctx ends or a write fails.
func writeRepeated(ctx context.Context, w io.Writer, fill []byte, n int64) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := fill
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

const (
	hugePrefix = `{"kubeletconfig":{"x":"`
	hugeSuffix = `"}}`
	deepPrefix = `{"kubeletconfig":{"authentication":{"anonymous":{"enabled":`
	deepSuffix = `}}}}`
)

// writeHuge writes exactly total bytes: a configz whose one string is filler, so that only
// its size is wrong (valid JSON when total leaves room for the closing `"}}`; otherwise a
// cut-off start of it).
func writeHuge(ctx context.Context, w io.Writer, total int64) error {
	head := hugePrefix
	if int64(len(head)) > total {
		head = head[:total]
	}
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	rest := total - int64(len(head))
	tail := ""
	if rest >= int64(len(hugeSuffix)) {
		tail = hugeSuffix
	}
	if err := writeRepeated(ctx, w, fillX, rest-int64(len(tail))); err != nil {
		return err
	}
	_, err := io.WriteString(w, tail)
	return err
}

// writeDeep writes valid JSON whose authentication.anonymous.enabled (a field rules read)
// is depth nested arrays: [[[...]]]. The document nests depth+4 levels.
func writeDeep(ctx context.Context, w io.Writer, depth int) error {
	if _, err := io.WriteString(w, deepPrefix); err != nil {
		return err
	}
	if err := writeRepeated(ctx, w, fillOpen, int64(depth)); err != nil {
		return err
	}
	if err := writeRepeated(ctx, w, fillClose, int64(depth)); err != nil {
		return err
	}
	_, err := io.WriteString(w, deepSuffix)
	return err
}

// untilDone ends when the request's client goes away, the node's behaviour changes or the
// fleet stops (or cancel is called).
func untilDone(r *http.Request, changed, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-stop:
		}
	}()
	return ctx, cancel
}

// serveStreamed answers 200 with a chunked JSON body that write generates.
func serveStreamed(w http.ResponseWriter, ctx context.Context, write func(context.Context, io.Writer) error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := write(ctx, w); err != nil {
		// Returning would end the chunked body cleanly, as if the short body were all of it:
		// this drops the connection instead (the server recovers it silently).
		panic(http.ErrAbortHandler)
	}
}

// serveStall sends the headers (with the full Content-Length) and the first half of body,
// then nothing until ctx ends. Returning short of the Content-Length makes the server close
// the connection.
func serveStall(w http.ResponseWriter, ctx context.Context, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	<-ctx.Done()
}

// serveBodyFile serves the file verbatim (streamed, with its Content-Length) as /configz.
func serveBodyFile(w http.ResponseWriter, path string) {
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, "kpc-testenv: behaviorBody: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "kpc-testenv: behaviorBody "+path+" is not a regular file", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
}

// serveThrottled answers 429 with Retry-After and a Status, as the API server throttles.
func serveThrottled(w http.ResponseWriter, retryAfter int) {
	status := map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": "Too many requests, please try again later.",
		"reason": "TooManyRequests", "details": map[string]any{"retryAfterSeconds": retryAfter},
		"code": http.StatusTooManyRequests,
	}
	b, _ := json.Marshal(status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(append(b, '\n'))
}

// serveHostile answers /configz for the hostile behaviours; false for the others. body is the
// node's real configz (stall sends half of it); changed closes when the node's behaviour
// changes; stop when the fleet stops.
func serveHostile(w http.ResponseWriter, r *http.Request, behavior string, p behaviorParams, body []byte,
	changed, stop <-chan struct{}) bool {
	switch behavior {
	case "huge", "deep", "stall":
	case "body":
		serveBodyFile(w, p.Body)
		return true
	case "throttled":
		serveThrottled(w, p.RetryAfter)
		return true
	default:
		return false
	}
	ctx, cancel := untilDone(r, changed, stop)
	defer cancel()
	switch behavior {
	case "huge":
		serveStreamed(w, ctx, func(ctx context.Context, w io.Writer) error { return writeHuge(ctx, w, p.Bytes) })
	case "deep":
		serveStreamed(w, ctx, func(ctx context.Context, w io.Writer) error { return writeDeep(ctx, w, p.Depth) })
	case "stall":
		if body == nil {
			http.Error(w, "kubelet not running", http.StatusServiceUnavailable)
			return true
		}
		serveStall(w, ctx, body)
	}
	return true
}
