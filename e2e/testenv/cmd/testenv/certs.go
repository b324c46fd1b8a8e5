package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the certificate authority of an environment and the files it issued.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// newCA creates a self-signed CA in dir as NAME.crt and NAME.key (0600).
func newCA(dir, name, cn string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, name+".key"), key); err != nil {
		return nil, err
	}
	return &pki{dir: dir, caCert: cert, caKey: key}, nil
}

// newPKI creates the cluster CA and the service-account signing key pair in dir.
func newPKI(dir string) (*pki, error) {
	p, err := newCA(dir, "ca", "kpc-testenv-ca")
	if err != nil {
		return nil, err
	}
	// Service-account token signing keys (RS256, like kubeadm).
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), sa); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// loadPKI reads the cluster CA written by newPKI.
func loadPKI(dir string) (*pki, error) { return loadCA(dir, "ca") }

// loadCA reads the CA NAME.crt and NAME.key of dir.
func loadCA(dir, name string) (*pki, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s is not a signer", name)
	}
	return &pki{dir: dir, caCert: cert, caKey: signer}, nil
}

// issue signs a leaf certificate for pub.
func (p *pki) issue(cn string, orgs []string, dns []string, ips []net.IP, server bool, pub crypto.PublicKey) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return x509.CreateCertificate(rand.Reader, tmpl, p.caCert, pub, p.caKey)
}

// issueFiles writes NAME.crt and NAME.key into the PKI directory.
func (p *pki) issueFiles(name, cn string, orgs, dns []string, ips []net.IP, server bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := p.issue(cn, orgs, dns, ips, server, key.Public())
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(p.dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(p.dir, name+".key"), key)
}

// kubeletCAName is the CA (pki/kubelet-ca.crt) that signs the simulated kubelets'
// serving certificates. It is not the cluster CA, so ca.crt does not verify a kubelet.
const kubeletCAName = "kubelet-ca"

// generateClusterPKI writes every certificate the control plane needs, and the kubelet CA.
func generateClusterPKI(dir string) error {
	p, err := newPKI(dir)
	if err != nil {
		return err
	}
	if _, err := newCA(dir, kubeletCAName, "kpc-testenv-kubelet-ca"); err != nil {
		return fmt.Errorf("kubelet CA: %w", err)
	}
	loop := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)}
	steps := []struct {
		name, cn string
		orgs     []string
		dns      []string
		ips      []net.IP
		server   bool
	}{
		{"apiserver", "kube-apiserver", nil, []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, loop, true},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil, false},
		{"admin", "kubernetes-admin", []string{"system:masters"}, nil, nil, false},
		{"controller-manager", "system:kube-controller-manager", nil, nil, nil, false},
		{"fleet", "kpc-testenv-fleet", []string{"system:masters"}, nil, nil, false},
	}
	for _, s := range steps {
		if err := p.issueFiles(s.name, s.cn, s.orgs, s.dns, s.ips, s.server); err != nil {
			return fmt.Errorf("issue %s: %w", s.name, err)
		}
	}
	return nil
}
