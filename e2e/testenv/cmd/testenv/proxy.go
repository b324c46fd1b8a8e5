package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// certCache issues kubelet serving certificates on first use, signed by the kubelet CA
// (pki/kubelet-ca.crt): SANs are the node name, its InternalIP and its direct address.
type certCache struct {
	ca  *pki
	key *ecdsa.PrivateKey
	m   sync.Map // node name -> *tls.Certificate
}

func newCertCache(ca *pki) (*certCache, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &certCache{ca: ca, key: key}, nil
}

func (c *certCache) get(n *simNode) (*tls.Certificate, error) {
	if v, ok := c.m.Load(n.name); ok {
		return v.(*tls.Certificate), nil
	}
	der, err := c.ca.issue("system:node:"+n.name, []string{"system:nodes"}, []string{n.name}, []net.IP{n.ip, n.loopback}, true, c.key.Public())
	if err != nil {
		return nil, err
	}
	cert := &tls.Certificate{Certificate: [][]byte{der, c.ca.caCert.Raw}, PrivateKey: c.key}
	v, _ := c.m.LoadOrStore(n.name, cert)
	return v.(*tls.Certificate), nil
}

// nodeConn is a connection to one simulated kubelet: a CONNECT tunnel or a connection
// accepted on its direct listener.
type nodeConn struct {
	net.Conn
	r    io.Reader // bytes the proxy buffered, then the connection
	node *simNode
}

func (c *nodeConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *nodeConn) Close() error {
	c.node.mu.Lock()
	delete(c.node.conns, c)
	c.node.mu.Unlock()
	return c.Conn.Close()
}

// track records an open connection so that dropConnections can close it.
func (n *simNode) track(nc *nodeConn) *nodeConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = map[*nodeConn]struct{}{}
	}
	n.conns[nc] = struct{}{}
	return nc
}

// dropConnections closes every open connection to a node's kubelet, as a kubelet that
// stops (or a network that starts dropping packets) does to kept-alive connections.
func (n *simNode) dropConnections() {
	n.mu.Lock()
	conns := make([]*nodeConn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.conns = nil
	n.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

// chanListener hands tunnels to the kubelet HTTPS server.
type chanListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *chanListener) Addr() net.Addr { return &net.UnixAddr{Name: "kubelets", Net: "unix"} }

type ctxKey struct{}

func nodeFromConn(c net.Conn) *simNode {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if nc, ok := c.(*nodeConn); ok {
		return nc.node
	}
	return nil
}

// withNodeContext is the kubelet servers' ConnContext: requests know their node.
func withNodeContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, ctxKey{}, nodeFromConn(c))
}

func nodeOfRequest(r *http.Request) *simNode {
	n, _ := r.Context().Value(ctxKey{}).(*simNode)
	return n
}

// serveEgress listens on the egress-selector socket: an HTTP CONNECT proxy that sends
// 198.18.0.0/15 to the simulated kubelets (served in this process), passes 127.0.0.0/8
// through, and refuses everything else without dialing it.
func (f *fleet) serveEgress() error {
	sock := f.info.EgressSocket
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	_ = os.Chmod(sock, 0o600)

	pool := x509.NewCertPool()
	pool.AddCert(f.ca.caCert)
	kl := &chanListener{ch: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{
		Handler:           f.kubeletHandler(),
		ReadHeaderTimeout: 30 * time.Second,
		ConnContext:       withNodeContext,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  pool,
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				n := nodeFromConn(hello.Conn)
				if n == nil {
					return nil, errors.New("unknown node")
				}
				return f.certs.get(n)
			},
		},
	}
	go func() { _ = srv.ServeTLS(kl, "", "") }()
	go func() {
		<-f.ctx.Done()
		_ = l.Close()
		_ = kl.Close()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.handleConnect(c, kl)
		}
	}()
	return nil
}

// connectReply answers a CONNECT with an error. The reason phrase carries the cause,
// because the API server reports the status line, not the body.
func connectReply(c net.Conn, code int, msg string) {
	reason := http.StatusText(code)
	switch {
	case strings.Contains(msg, "connection refused"):
		reason = "Connection Refused"
	case strings.Contains(msg, "no route to host"):
		reason = "No Route To Host"
	case code == http.StatusForbidden:
		reason = "Forbidden By Testenv Egress Policy"
	}
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, reason, len(msg), msg)
}

func (f *fleet) handleConnect(c net.Conn, kl *chanListener) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		connectReply(c, http.StatusMethodNotAllowed, "only CONNECT is supported\n")
		c.Close()
		return
	}
	target := req.Host
	host, portStr, err := net.SplitHostPort(target)
	port, perr := strconv.Atoi(portStr)
	if perr == nil && (port <= 0 || port > 65535) {
		perr = errors.New("port out of range")
	}
	ip := net.ParseIP(host)
	if err != nil || perr != nil || ip == nil {
		// Names are never resolved: resolving could send packets off the machine.
		f.egressLog("REFUSED %s: not an IP:port", target)
		connectReply(c, http.StatusForbidden, fmt.Sprintf("kpc-testenv egress: %s is not an IP address and port\n", target))
		c.Close()
		return
	}
	switch {
	case ip.IsLoopback() && ip.To4() != nil:
		up, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)), 10*time.Second)
		if err != nil {
			f.egressLog("FAILED %s: %v", target, err)
			connectReply(c, http.StatusBadGateway, err.Error()+"\n")
			c.Close()
			return
		}
		f.egressLog("PASS %s", target)
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			_, _ = up.Write(b)
		}
		go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() }()
		_, _ = io.Copy(c, up)
		c.Close()
		up.Close()
	case inFleetRange(ip):
		n := f.byIP[[4]byte(ip.To4())]
		if n == nil {
			f.egressLog("REFUSED %s: no simulated node has this address", target)
			connectReply(c, http.StatusServiceUnavailable, "dial tcp "+target+": connect: no route to host\n")
			c.Close()
			return
		}
		// The port is not checked: the API server dials whatever port the Node publishes.
		up, behavior, _ := n.state()
		switch {
		case behavior == "unreachable":
			// A black hole: hold the connection, answer nothing, until the client gives up.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Minute))
			_, _ = io.Copy(io.Discard, br)
			c.Close()
			return
		case behavior == "refused" || !up:
			connectReply(c, http.StatusServiceUnavailable, "dial tcp "+target+": connect: connection refused\n")
			c.Close()
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		nc := n.track(&nodeConn{Conn: c, r: io.MultiReader(bytesOf(br), c), node: n})
		select {
		case kl.ch <- nc:
		case <-f.ctx.Done():
			c.Close()
		}
	default:
		f.egressLog("REFUSED %s: outside 198.18.0.0/15 and 127.0.0.0/8 (never dialed)", target)
		connectReply(c, http.StatusForbidden, fmt.Sprintf("kpc-testenv egress: connections to %s are not allowed\n", target))
		c.Close()
	}
}

func bytesOf(br *bufio.Reader) io.Reader {
	n := br.Buffered()
	if n == 0 {
		return strings.NewReader("")
	}
	b, _ := br.Peek(n)
	return strings.NewReader(string(b))
}

// kubeletHandler serves the simulated kubelet endpoints of the node the request came to.
func (f *fleet) kubeletHandler() http.Handler {
	mux := http.NewServeMux()
	nodeOf := nodeOfRequest
	mux.HandleFunc("/configz", func(w http.ResponseWriter, r *http.Request) {
		n := nodeOf(r)
		if n == nil {
			http.NotFound(w, r)
			return
		}
		n.mu.Lock()
		body, behavior, params, up := n.configz, n.behavior, n.params, n.up
		changed := n.behaviorChanged()
		n.mu.Unlock()
		if serveHostile(w, r, behavior, params, body, changed, f.ctx.Done()) {
			return
		}
		switch behavior {
		case "unreachable", "refused":
			// Only reachable through a connection opened before the change.
			<-r.Context().Done()
			return
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "<html>this is not JSON {\"kubeletconfig\": \n")
			return
		case "error":
			http.Error(w, "simulated kubelet error", http.StatusInternalServerError)
			return
		case "slow":
			select {
			case <-time.After(params.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if !up || body == nil {
			http.Error(w, "kubelet not running", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		n := nodeOf(r)
		if n == nil {
			http.NotFound(w, r)
			return
		}
		f.pods.serveLogs(w, r, n, r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not simulated by kpc-testenv: "+r.URL.Path, http.StatusNotFound)
	})
	return mux
}

// runFleetCtl talks to a running fleet's control socket.
func fleetRequest(dir, method, path string) (string, error) {
	sock := filepath.Join(dir, "fleet.sock")
	c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	req, _ := http.NewRequest(method, "http://fleet"+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
