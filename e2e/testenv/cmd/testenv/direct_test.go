package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
)

func TestLoopbackFor(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.1": "127.18.0.1", "198.18.19.136": "127.18.19.136", "198.19.255.254": "127.19.255.254",
	} {
		if got := loopbackFor(net.ParseIP(in)).String(); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

func TestReservedPortRefusesUntilListening(t *testing.T) {
	ip := net.ParseIP("127.18.255.201")
	fd, port, err := reservePort(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Close(fd) }()
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("reserved port %s accepted a connection", addr)
	}
	for round := 0; round < 2; round++ {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Fatalf("round %d: listen on the reserved port: %v", round, err)
		}
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close() // closing first leaves TIME_WAIT behind: the re-listen must cope
			}
		}()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("round %d: dial: %v", round, err)
		}
		_, _ = c.Read(make([]byte, 1))
		c.Close()
		l.Close()
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("round %d: closed listener still accepts", round)
		}
	}
}

// fakeAuthAPI answers TokenReviews (token "user-X" is user X) and SubjectAccessReviews
// (allowed when allow[user] holds the subresource) like the API server.
func fakeAuthAPI(t *testing.T, allow map[string][]string) kubernetes.Interface {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
			var tr authenticationv1.TokenReview
			_ = json.NewDecoder(r.Body).Decode(&tr)
			if u, ok := strings.CutPrefix(tr.Spec.Token, "user-"); ok {
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: u}}
			}
			_ = json.NewEncoder(w).Encode(tr)
		case strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
			var sar authorizationv1.SubjectAccessReview
			_ = json.NewDecoder(r.Body).Decode(&sar)
			ra := sar.Spec.ResourceAttributes
			for _, sub := range allow[sar.Spec.User] {
				if ra != nil && ra.Resource == "nodes" && ra.Verb == "get" && ra.Subresource == sub && ra.Name == "n1" {
					sar.Status.Allowed = true
				}
			}
			_ = json.NewEncoder(w).Encode(sar)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestKubeletAuthFilter(t *testing.T) {
	allow := map[string][]string{"configz-reader": {"configz"}, "proxy-user": {"proxy"}}
	cache := &authCache{client: fakeAuthAPI(t, allow), clientCA: "", stop: context.Background().Done(), m: map[string]*sharedAuth{}}
	ttl := metav1.Duration{Duration: time.Minute}
	webhook := func(node string) *simNode {
		authn := kubeletconfig.KubeletAuthentication{Webhook: kubeletconfig.KubeletWebhookAuthentication{Enabled: true, CacheTTL: ttl}}
		authz := kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeWebhook,
			Webhook: kubeletconfig.KubeletWebhookAuthorization{CacheAuthorizedTTL: ttl, CacheUnauthorizedTTL: ttl}}
		a, err := cache.forNode(node, authn, authz)
		if err != nil {
			t.Fatal(err)
		}
		return &simNode{name: node, auth: a, fineGrained: true, gateFineGrained: true}
	}
	n1 := webhook("n1")
	_ = webhook("n2")
	if len(cache.m) != 1 {
		t.Errorf("identically configured nodes built %d authenticators, want 1 shared", len(cache.m))
	}
	a, err := cache.forNode("legacy", kubeletconfig.KubeletAuthentication{Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: true}},
		kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow})
	if err != nil {
		t.Fatal(err)
	}
	legacy := &simNode{name: "legacy", auth: a, fineGrained: true, gateFineGrained: true}
	coarse := &simNode{name: "n1", auth: n1.auth, fineGrained: false, gateFineGrained: true}
	oldGate := &simNode{name: "n1", auth: n1.auth, fineGrained: true, gateFineGrained: false}

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("served")) })
	filter := kubeletAuthFilter(ok)
	for _, tc := range []struct {
		name     string
		node     *simNode
		token    string
		code     int
		bodyPart string
	}{
		{"no token", n1, "", 401, "Unauthorized"},
		{"bad token", n1, "nobody", 401, "Unauthorized"},
		{"no RBAC", n1, "user-stranger", 403, "Forbidden (user=stranger, verb=get, resource=nodes, subresource(s)=[configz proxy])\n"},
		{"configz granted", n1, "user-configz-reader", 200, "served"},
		{"proxy granted", n1, "user-proxy-user", 200, "served"},
		{"switch off: configz is not enough", coarse, "user-configz-reader", 403, "subresource(s)=[proxy])"},
		{"switch off: proxy", coarse, "user-proxy-user", 200, "served"},
		{"gate off: configz is not enough", oldGate, "user-configz-reader", 403, "subresource(s)=[proxy])"},
		{"flags-only kubelet: anonymous, AlwaysAllow", legacy, "", 200, "served"},
	} {
		req := httptest.NewRequest("GET", "https://127.18.0.1:10250/configz", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, tc.node))
		rec := httptest.NewRecorder()
		filter.ServeHTTP(rec, req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.bodyPart) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, rec.Code, rec.Body.String(), tc.code, tc.bodyPart)
		}
	}
}
