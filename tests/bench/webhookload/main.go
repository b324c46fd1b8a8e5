// webhookload: a closed-loop HTTPS load generator for scripts/bench-webhook.sh (standard
// library only; `go run main.go`). Each of -conns workers keeps one TLS connection alive and
// sends POST requests back to back (a new connection only when the server closes one); after
// -warmup, every request's latency is recorded for -duration. Prints one line:
//
//	conns=64 requests=123456 errors=0 reconnects=12 rps=12345.6 p50_ms=1.234 p99_ms=5.678 max_ms=9.9
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9443", "host:port")
	path := flag.String("path", "/validate-kubeletpolicy", "request path")
	bodyFile := flag.String("body", "", "request body file (JSON)")
	caFile := flag.String("ca", "", "CA bundle to verify the server with")
	conns := flag.Int("conns", 64, "concurrent keep-alive connections")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before")
	expect := flag.String("expect", "", "substring every response body must contain")
	flag.Parse()

	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fail(err)
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(*caFile); err != nil || !pool.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("CA %s: %v", *caFile, err))
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(*conns)}
	req := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n", *path, *addr, len(body)))
	req = append(req, body...)

	var measuring, stop atomic.Bool
	var errors, reconnects atomic.Int64
	lat := make([][]time.Duration, *conns)
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var c *tls.Conn
			var r *bufio.Reader
			for !stop.Load() {
				if c == nil {
					var err error
					if c, err = tls.Dial("tcp", *addr, cfg); err != nil {
						errors.Add(1)
						time.Sleep(10 * time.Millisecond)
						c = nil
						continue
					}
					r = bufio.NewReaderSize(c, 64<<10)
				}
				start := time.Now()
				_, err := c.Write(req)
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(r, nil)
				}
				var data []byte
				if err == nil {
					data, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				elapsed := time.Since(start)
				ok := err == nil && resp.StatusCode == 200 && (*expect == "" || bytes.Contains(data, []byte(*expect)))
				if measuring.Load() && !stop.Load() {
					if ok {
						lat[i] = append(lat[i], elapsed)
					} else {
						errors.Add(1)
					}
				}
				if err != nil || resp.Close {
					c.Close()
					c = nil
					if measuring.Load() {
						reconnects.Add(1)
					}
				}
			}
			if c != nil {
				c.Close()
			}
		}(i)
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	t0 := time.Now()
	time.Sleep(*duration)
	stop.Store(true)
	elapsed := time.Since(t0)
	wg.Wait()

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	fmt.Printf("conns=%d requests=%d errors=%d reconnects=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		*conns, len(all), errors.Load(), reconnects.Load(), float64(len(all))/elapsed.Seconds(), q(0.50), q(0.99), q(1))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "webhookload:", err)
	os.Exit(1)
}
