package image

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testRegistry is a real registry (Debian's docker-registry, distribution
// v2) serving on 127.0.0.1 from a temporary directory.
type testRegistry struct {
	host    string // 127.0.0.1:PORT
	storage string // its storage root directory
	caFile  string // PEM of the CA that signed its certificate ("" plain HTTP)
	client  *http.Client
}

// registryBinary finds docker-registry, skipping the test when it is
// missing outside CI and failing it in CI.
func registryBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("docker-registry is not installed (scripts/deps installs it): %v", err)
	}
	t.Skipf("docker-registry is not installed (apt-get install docker-registry, or run scripts/deps): %v", err)
	return ""
}

// needRoot skips tests that unpack layers: owners, device nodes and
// trusted.* xattrs need root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking layers needs root (chown, mknod, trusted.* xattrs)")
	}
}

// startRegistry starts a registry, with TLS from a CA made here when
// withTLS, and waits until GET /v2/ answers. It is killed when t ends.
func startRegistry(t *testing.T, withTLS bool) *testRegistry {
	t.Helper()
	bin := registryBinary(t)
	dir := t.TempDir()
	r := &testRegistry{host: fmt.Sprintf("127.0.0.1:%d", freePort(t)), storage: filepath.Join(dir, "storage"), client: &http.Client{Timeout: 2 * time.Second}}
	tlsConf := ""
	if withTLS {
		cert, key, pool := makeCerts(t, dir)
		r.caFile = filepath.Join(dir, "ca.pem")
		tlsConf = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
		r.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: cove-test-secret
%s`, r.storage, r.host, tlsConf)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	r.run(t, bin, cfgPath, filepath.Join(dir, "registry.log"))
	return r
}

// htpasswdRegistry starts a second docker-registry on r's storage that
// checks Basic credentials itself against an htpasswd file holding user
// with password's bcrypt hash (made by Python's crypt, which libxcrypt
// backs: Debian's registry reads bcrypt only), and returns its host.
func htpasswdRegistry(t *testing.T, r *testRegistry, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("python3", "-W", "ignore", "-c",
		"import crypt, sys; print(sys.argv[1] + ':' + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))", user, password).Output()
	if err != nil || !strings.Contains(string(out), ":$2") {
		t.Fatalf("bcrypt an htpasswd line with python3's crypt: %v %q", err, out)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, out, 0o600); err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n"+
		"http:\n  addr: %s\n  secret: cove-test-secret\nauth:\n  htpasswd:\n    realm: cove-test\n    path: %s\n", r.storage, host, htpasswd)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	second := &testRegistry{host: host, storage: r.storage, client: &http.Client{Timeout: 2 * time.Second}}
	second.run(t, registryBinary(t), cfgPath, filepath.Join(dir, "registry.log"))
	return host
}

// run starts the registry process and waits for it to answer.
func (r *testRegistry) run(t *testing.T, bin, cfgPath, logPath string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := r.client.Get(r.scheme() + "://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized { // 401: it wants credentials
				return
			}
		}
	}
	out, _ := os.ReadFile(logPath)
	t.Fatalf("docker-registry on %s did not answer GET /v2/ within 15s; its log:\n%s", r.host, out)
}

func (r *testRegistry) scheme() string {
	if r.caFile != "" {
		return "https"
	}
	return "http"
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// makeCerts writes a CA (dir/ca.pem) and a certificate for 127.0.0.1
// signed by it (dir/server.pem, dir/server.key), and returns the server's
// files and a pool trusting the CA.
func makeCerts(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	caKey, caDER := newCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cove test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, srvDER := newCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	cert, key = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, cert, "CERTIFICATE", srvDER)
	writePEM(t, key, "EC PRIVATE KEY", keyDER)
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return cert, key, pool
}

// newCert makes a key and a certificate from tmpl, signed by parent's
// key (self-signed when parent is nil).
func newCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// blobFile is where the registry keeps blob hex on disk.
func (r *testRegistry) blobFile(hex string) string {
	return filepath.Join(r.storage, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}
