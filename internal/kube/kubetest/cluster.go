// Package kubetest starts a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, with kwok
// simulating one node whose pods become Running and Ready (nothing runs in
// them). The binaries come from scripts/kube-binaries through
// GLENV_KUBE_BIN; etcd from Debian's etcd-server.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

//go:embed testdata/kwok-stages.yaml
var kwokStages []byte

//go:embed testdata/node.yaml
var nodeYAML []byte

// Cluster is a running control plane.
type Cluster struct {
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
}

// Start starts a cluster for t and stops it when t ends. Without the
// binaries it skips with a message, or fails under CI=true when
// GLENV_KUBE_BIN names a folder that lacks them.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := os.Getenv("GLENV_KUBE_BIN")
	missing := ""
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(bin, b)); bin == "" || err != nil {
			missing = b
			break
		}
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		missing = "etcd (Debian package etcd-server)"
	}
	if missing != "" {
		msg := fmt.Sprintf("no Kubernetes control plane: %s not found (GLENV_KUBE_BIN=%q); build it with `scripts/kube-binaries` and export GLENV_KUBE_BIN=<the dir it prints>", missing, bin)
		if os.Getenv("CI") == "true" && bin != "" {
			// .ci/run promised a control plane: a missing part is a failure.
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	tokens := write("tokens.csv", []byte(token+",glenv-test,glenv-test,system:masters\n"))
	stages := write("kwok-stages.yaml", kwokStages)

	ports := freePorts(t, 7)
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	start(t, dir, "etcd", etcd, "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL, "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--name", "default", "--listen-metrics-urls", "http://127.0.0.1:"+strconv.Itoa(ports[6]))
	apiPort := ports[2]
	start(t, dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"), "--etcd-servers", clientURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", filepath.Join(dir, "certs"), "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey, "--token-auth-file", tokens,
		"--authorization-mode=RBAC,Node", "--service-cluster-ip-range=10.96.0.0/16",
		// On 127.0.0.1 the apiserver exits at start without this.
		"--endpoint-reconciler-type=none")
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	waitReady(t, dir, host, token)
	kubeconfig := write("kubeconfig", fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: test, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
`, host, token))
	kc := "--kubeconfig=" + kubeconfig
	start(t, dir, "kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), kc,
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig, "--leader-elect=false",
		"--service-account-private-key-file", saKey, "--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", "--secure-port", strconv.Itoa(ports[3]))
	start(t, dir, "kube-scheduler", filepath.Join(bin, "kube-scheduler"), kc,
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port", strconv.Itoa(ports[4]))
	start(t, dir, "kwok", filepath.Join(bin, "kwok"), kc, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--node-ip=10.0.0.1", "--cidr=10.0.0.1/24",
		"--server-address", "127.0.0.1:"+strconv.Itoa(ports[5]), "--config", stages)

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var node corev1.Node
	if err := yaml.Unmarshal(nodeYAML, &node); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Create(t.Context(), &node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the kwok node: %v", err)
	}
	return &Cluster{Kubeconfig: kubeconfig, Config: cfg, Client: client}
}

// start runs a control-plane process, its output in dir/<name>.log (shown
// when the test fails), and stops it when the test ends.
func start(t testing.TB, dir, name, path string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- tail of %s.log:\n%s", name, b)
			}
		}
	})
}

// waitReady waits for the apiserver's /readyz: a process outside the test
// has no event to wait on, so this asks until a deadline.
func waitReady(t testing.TB, dir, host, token string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(filepath.Join(dir, "kube-apiserver.log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Fatalf("kube-apiserver not ready within 3m; its log ends:\n%s", b)
		case <-tick.C:
		}
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
