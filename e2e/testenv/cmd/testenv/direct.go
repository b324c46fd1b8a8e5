package main

// The direct kubelet endpoint: every simulated kubelet also serves HTTPS on its own
// loopback address (198.18.A.B -> 127.18.A.B), on a port chosen at the fleet's start and
// kept for the fleet's life, and authenticates and authorizes requests there with the
// kubelet's own code (cmd/kubelet/app.BuildAuth, pkg/kubelet/server). The API server's
// path through the egress proxy does no kubelet-side auth (the API server authorizes
// nodes/proxy itself).

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletserver "k8s.io/kubernetes/pkg/kubelet/server"
)

// loopbackFor maps a node's InternalIP 198.{18,19}.A.B to its direct address 127.{18,19}.A.B.
func loopbackFor(ip net.IP) net.IP {
	v4 := ip.To4()
	return net.IPv4(127, v4[1], v4[2], v4[3]).To4()
}

// reservePort binds (never listens on) ip:port, port 0 choosing an ephemeral one. While
// the socket exists the kernel hands the port to no other port-0 bind, so the kubelet's
// port survives the times nothing listens on it; a connection to it is refused. The
// listener binds the same port alongside it (both set SO_REUSEADDR, only one listens).
func reservePort(ip net.IP, port int) (fd, bound int, err error) {
	fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	if err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err == nil {
		err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte(ip.To4()), Port: port})
	}
	var sa syscall.Sockaddr
	if err == nil {
		sa, err = syscall.Getsockname(fd)
	}
	if err != nil {
		_ = syscall.Close(fd)
		return -1, 0, fmt.Errorf("reserve %s:%d: %w", ip, port, err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port, nil
}

// raiseNoFileLimit makes room for need descriptors (a listener and a reservation per node).
func raiseNoFileLimit(need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= need {
		return
	}
	lim.Cur = need
	if lim.Max < need {
		lim.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logf("fleet: raising RLIMIT_NOFILE to %d: %v", need, err)
	}
}

// sharedAuth is the authenticator and authorizer BuildAuth made for one configuration.
type sharedAuth struct {
	authn authenticator.Request
	authz authorizer.Authorizer
	err   error
}

// authCache builds the kubelet's authenticator/authorizer once per distinct
// authentication+authorization configuration: identical nodes share them (and their
// token and SubjectAccessReview caches); only the attributes getter is per node.
type authCache struct {
	client   kubernetes.Interface // creates TokenReviews and SubjectAccessReviews
	clientCA string               // the cluster CA, standing in for any x509.clientCAFile
	stop     <-chan struct{}

	mu sync.Mutex
	m  map[string]*sharedAuth
}

// forNode returns the kubelet's AuthInterface for a node started with authn/authz.
func (c *authCache) forNode(node string, authn kubeletconfig.KubeletAuthentication, authz kubeletconfig.KubeletAuthorization) (kubeletserver.AuthInterface, error) {
	// The configured path is on the node's filesystem, where it is a placeholder.
	if authn.X509.ClientCAFile != "" {
		authn.X509.ClientCAFile = c.clientCA
	}
	key := fmt.Sprintf("%#v\x00%#v", authn, authz)
	c.mu.Lock()
	s, ok := c.m[key]
	if !ok {
		s = c.build(node, authn, authz)
		c.m[key] = s
	}
	c.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return kubeletserver.NewKubeletAuth(s.authn, kubeletserver.NewNodeAuthorizerAttributesGetter(types.NodeName(node)), s.authz), nil
}

func (c *authCache) build(node string, authn kubeletconfig.KubeletAuthentication, authz kubeletconfig.KubeletAuthorization) *sharedAuth {
	cfg := kubeletconfig.KubeletConfiguration{Authentication: authn, Authorization: authz}
	a, run, err := kubeletapp.BuildAuth(types.NodeName(node), c.client, cfg)
	if err != nil {
		return &sharedAuth{err: err}
	}
	ka, ok := a.(*kubeletserver.KubeletAuth)
	if !ok {
		return &sharedAuth{err: fmt.Errorf("BuildAuth returned %T", a)}
	}
	run(c.stop) // reloads the client CA file
	return &sharedAuth{authn: ka.Request, authz: ka.Authorizer}
}

// kubeletAuthFilter is the kubelet server's auth filter (InstallAuthFilter in
// pkg/kubelet/server/server.go): authenticate (401), then authorize the request's
// attributes in order until one is allowed (403 naming every subresource tried).
func kubeletAuthFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := nodeOfRequest(r)
		if n == nil {
			http.NotFound(w, r)
			return
		}
		n.mu.Lock()
		auth, fineGrained := n.auth, n.fineGrained && n.gateFineGrained
		n.mu.Unlock()
		if auth == nil {
			http.Error(w, "kubelet not running", http.StatusServiceUnavailable)
			return
		}
		info, ok, err := auth.AuthenticateRequest(r)
		if err != nil {
			logf("fleet: node %s: unable to authenticate the request: %v", n.name, err)
		}
		if err != nil || !ok {
			writeKubeletError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		attrs := auth.GetRequestAttributes(info.User, r)
		if !fineGrained && len(attrs) > 1 {
			// Without the gate the kubelet yields only the last attribute (the
			// coarse subresource, e.g. proxy); the gate prepends the fine-grained ones.
			attrs = attrs[len(attrs)-1:]
		}
		if len(attrs) == 0 {
			writeKubeletError(w, http.StatusForbidden, "Authorization error: could not determine attributes for request")
			return
		}
		var subresources []string
		for _, attr := range attrs {
			subresources = append(subresources, attr.GetSubresource())
			decision, _, err := auth.Authorize(r.Context(), attr)
			if err != nil {
				logf("fleet: node %s: authorization error: %v", n.name, err)
				writeKubeletError(w, http.StatusInternalServerError, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
					attr.GetUser().GetName(), attr.GetVerb(), attr.GetResource(), attr.GetSubresource()))
				return
			}
			if decision == authorizer.DecisionAllow {
				next.ServeHTTP(w, r)
				return
			}
		}
		writeKubeletError(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n",
			attrs[0].GetUser().GetName(), attrs[0].GetVerb(), attrs[0].GetResource(), subresources))
	})
}

// writeKubeletError answers as go-restful's WriteErrorString does in the kubelet.
func writeKubeletError(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// serveDirect starts the one TLS server behind every node's direct listener.
func (f *fleet) serveDirect() {
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(f.ca.caCert)
	getCert := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		n := nodeFromConn(hello.Conn)
		if n == nil {
			return nil, errors.New("unknown node")
		}
		return f.certs.get(n)
	}
	// As the kubelet: client certificates are requested (and verified by the
	// authenticator, not the handshake) only when x509.clientCAFile is set.
	plain := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert, NextProtos: []string{"http/1.1"}}
	withCerts := plain.Clone()
	withCerts.ClientAuth, withCerts.ClientCAs = tls.RequestClientCert, clientCAs
	srv := &http.Server{
		Handler:           kubeletAuthFilter(f.kubeletHandler()),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second, // as the kubelet's server
		MaxHeaderBytes:    1 << 20,
		ConnContext:       withNodeContext,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			n := nodeFromConn(hello.Conn)
			if n == nil {
				return nil, errors.New("unknown node")
			}
			n.mu.Lock()
			req := n.requestClientCert
			n.mu.Unlock()
			if req {
				return withCerts, nil
			}
			return plain, nil
		}},
	}
	go func() { _ = srv.ServeTLS(f.direct, "", "") }()
	go func() {
		<-f.ctx.Done()
		_ = f.direct.Close()
	}()
}

// syncListener opens or closes a node's direct listener to match its state: it listens
// while the kubelet runs and its behaviour is not refused.
func (f *fleet) syncListener(n *simNode) {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	up, behavior, _ := n.state()
	want := up && behavior != "refused"
	switch {
	case want && n.listener == nil:
		addr := net.JoinHostPort(n.loopback.String(), fmt.Sprint(n.port))
		var l net.Listener
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if l, err = net.Listen("tcp4", addr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			logf("fleet: node %s: listen %s: %v", n.name, addr, err)
			return
		}
		n.listener = l
		go f.acceptDirect(n, l)
	case !want && n.listener != nil:
		_ = n.listener.Close()
		n.listener = nil
	}
}

// acceptDirect hands a node's accepted connections to the direct TLS server, or holds
// them unanswered when the node is unreachable.
func (f *fleet) acceptDirect(n *simNode, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.ctx.Err() != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // e.g. out of descriptors
			continue
		}
		up, behavior, _ := n.state()
		if !up {
			_ = c.Close()
			continue
		}
		nc := n.track(&nodeConn{Conn: c, r: c, node: n})
		if behavior == "unreachable" {
			go func() {
				// A black hole: the handshake never completes.
				_ = nc.SetReadDeadline(time.Now().Add(10 * time.Minute))
				_, _ = io.Copy(io.Discard, nc)
				_ = nc.Close()
			}()
			continue
		}
		select {
		case f.direct.ch <- nc:
		case <-f.ctx.Done():
			_ = nc.Close()
			return
		}
	}
}
