// Package kubetest starts a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, with kwok
// simulating one node whose pods become Running and Ready (nothing runs in
// them), and a storage provisioner (provisioner.go). The binaries come from
// scripts/kube-binaries through GLENV_KUBE_BIN, etcd too (Debian's
// etcd-server only when that build failed: see findEtcd).
//
// A package starts one control plane for all its tests (Main and Shared);
// each test works in namespaces of its own.
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
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	// WatchCache says the API server runs with its watch cache, on the
	// etcd scripts/kube-binaries builds (off on Debian's etcd 3.4).
	WatchCache bool

	dir    string
	procs  []*proc
	rmdirs []string // outside dir: removed by stop
	// stopStorage ends the test provisioner (provisioner.go).
	stopStorage context.CancelFunc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
}

var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Main runs a package's tests and then stops the control plane Shared
// started, if any test asked for one:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if c := shared.cluster; c != nil {
		c.stop()
		os.RemoveAll(c.dir)
	}
	return code
}

// Shared returns the package's control plane, started by the first test
// that asks (a package without Main leaks it until the test binary exits).
// Tests share it, so each uses namespaces of its own. Without the binaries
// it skips with a message, or fails under CI=true.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	need(t)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "glenv-kubetest")
		if err != nil {
			shared.err = err
			return
		}
		shared.cluster, shared.err = launch(context.Background(), dir, LaunchOptions{})
		if shared.err != nil {
			os.RemoveAll(dir)
		}
	})
	if shared.err != nil {
		t.Fatalf("start the Kubernetes control plane: %v", shared.err)
	}
	c := shared.cluster
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.tails())
		}
	})
	return c
}

// Start starts a control plane of t's own and stops it when t ends; Shared
// is cheaper.
func Start(t testing.TB) *Cluster {
	t.Helper()
	need(t)
	c, err := launch(t.Context(), t.TempDir(), LaunchOptions{})
	if err != nil {
		t.Fatalf("start the Kubernetes control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.tails())
		}
		c.stop()
	})
	return c
}

// binaries are the control plane's parts GLENV_KUBE_BIN must hold.
var binaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// need skips t, or fails it under CI=true, when a part of the control plane
// is missing.
func need(t testing.TB) {
	t.Helper()
	msg := missingPart()
	if msg == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		// .ci/run builds the control plane: a missing part is a failure.
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// missingPart says which part of the control plane is missing, and how to
// get it; "" when none is.
func missingPart() string {
	bin := os.Getenv("GLENV_KUBE_BIN")
	missing := ""
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(bin, b)); bin == "" || err != nil {
			missing = b
			break
		}
	}
	if _, _, err := findEtcd(bin); err != nil {
		missing = "etcd (built by scripts/kube-binaries, or the Debian package etcd-server)"
	}
	if missing == "" {
		return ""
	}
	return fmt.Sprintf("no Kubernetes control plane: %s not found (GLENV_KUBE_BIN=%q); build it with `scripts/kube-binaries` and export GLENV_KUBE_BIN=<the dir it prints>", missing, bin)
}

// LaunchOptions tune a control plane Launch starts.
type LaunchOptions struct {
	// NoWatchAll leaves out the two controllers that watch every kind of
	// object (the garbage collector and the resource quota controller).
	// With the watch cache off (see launch) each of their watches is
	// served from etcd, decoded again for each of them: most of the API
	// server's work in a burst of environments that neither needs. Only
	// for measurements that say so: without the garbage collector, what a
	// deleted owner owned stays.
	NoWatchAll bool
}

// Launch starts a control plane outside a test (bench programs), its files
// in dir; Stop ends it.
func Launch(ctx context.Context, dir string, o LaunchOptions) (*Cluster, error) {
	if msg := missingPart(); msg != "" {
		return nil, errors.New(msg)
	}
	return launch(ctx, dir, o)
}

// Stop ends a control plane Launch started.
func (c *Cluster) Stop() { c.stop() }

// launch starts etcd, the API server, the controller-manager, the scheduler
// and kwok with one fake node, and returns once the API server is ready and
// the node exists.
func launch(ctx context.Context, dir string, o LaunchOptions) (_ *Cluster, err error) {
	bin := os.Getenv("GLENV_KUBE_BIN")
	etcd, watchCache, err := findEtcd(bin)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, WatchCache: watchCache}
	if !watchCache {
		fmt.Fprintf(os.Stderr, "kubetest: no etcd in GLENV_KUBE_BIN (%s): using %s (Debian's, 3.4) with the API server's watch cache off; scripts/kube-binaries builds a newer one\n", bin, etcd)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.tails())
			c.stop()
		}
	}()
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, data, 0o600)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	saKey, err := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	if err != nil {
		return nil, err
	}
	saPub, err := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	tokens, err := write("tokens.csv", []byte(token+",glenv-test,glenv-test,system:masters\n"))
	if err != nil {
		return nil, err
	}
	stages, err := write("kwok-stages.yaml", kwokStages)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	// etcd 3.4 has no --unsafe-no-fsync: its data goes to memory
	// (/dev/shm) where there is one, so a write costs no disk flush.
	etcdDir := filepath.Join(dir, "etcd")
	if d, err := os.MkdirTemp("/dev/shm", "glenv-kubetest-etcd"); err == nil {
		etcdDir = d
		c.rmdirs = append(c.rmdirs, d)
	}
	etcdArgs := []string{"--data-dir", etcdDir, "--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL, "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default=" + peerURL, "--name", "default", "--listen-metrics-urls", "http://127.0.0.1:" + strconv.Itoa(ports[6])}
	if watchCache {
		// A test cluster's data is thrown away: no flush per write.
		etcdArgs = append(etcdArgs, "--unsafe-no-fsync")
	}
	if err := c.start(dir, "etcd", etcd, etcdArgs...); err != nil {
		return nil, err
	}
	apiPort := ports[2]
	// The watch cache serves every list and watch from memory, decoded
	// once, instead of from etcd for each watcher: it needs etcd's
	// progress notifications (RequestWatchProgress, etcd ≥ 3.5), without
	// which the cache of a resource nobody wrote yet never reaches the
	// current revision, and a watch or list of it from "now" waits and
	// then fails with "Too large resource version" (what Debian's etcd 3.4
	// did here). So it is on only with the etcd scripts/kube-binaries
	// builds.
	watchCacheFlag := "--watch-cache=" + strconv.FormatBool(watchCache)
	if err := c.start(dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"), "--etcd-servers", clientURL, watchCacheFlag,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", filepath.Join(dir, "certs"), "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey, "--token-auth-file", tokens,
		"--authorization-mode=RBAC,Node", "--service-cluster-ip-range=10.96.0.0/16",
		// On 127.0.0.1 the apiserver exits at start without this.
		"--endpoint-reconciler-type=none",
		// Cloning a parent's services.files claim into another
		// namespace (dataSourceRef.namespace) is behind this alpha
		// gate; without it the API server drops the dataSourceRef.
		"--feature-gates=CrossNamespaceVolumeDataSource=true"); err != nil {
		return nil, err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := waitReady(ctx, host, token); err != nil {
		return nil, err
	}
	c.Kubeconfig, err = write("kubeconfig", fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: test, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
`, host, token))
	if err != nil {
		return nil, err
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	gates := []string{}
	if !watchCache {
		// These controllers wait until their informers have seen their
		// own writes; without etcd progress notifications (etcd 3.4,
		// watch cache off) an informer's version only moves with its
		// own events, so they requeue with back-off for seconds.
		gates = append(gates, "--feature-gates=StaleControllerConsistencyReplicaSet=false,StaleControllerConsistencyJob=false")
	}
	controllers := "--controllers=*"
	if o.NoWatchAll {
		controllers += ",-garbage-collector-controller,-resourcequota-controller"
	}
	cmArgs := append([]string{kc, controllers,
		"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig, "--leader-elect=false",
		"--service-account-private-key-file", saKey, "--use-service-account-credentials=false",
		// No front proxy here: do not look for its client CA.
		"--authentication-skip-lookup",
		// The burst benchmark creates a thousand Deployments at once:
		// tuned as large clusters tune it (the defaults, 20/s in bursts
		// of 30 and 5 syncs at a time, suit a small one); each environment
		// costs the controllers about 8 requests.
		"--kube-api-qps=1000", "--kube-api-burst=2000", "--concurrent-deployment-syncs=50", "--concurrent-replicaset-syncs=50",
		"--concurrent-namespace-syncs=10",
		"--bind-address=127.0.0.1", "--secure-port", strconv.Itoa(ports[3])}, gates...)
	if err := c.start(dir, "kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), cmArgs...); err != nil {
		return nil, err
	}
	if err := c.start(dir, "kube-scheduler", filepath.Join(bin, "kube-scheduler"), kc,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--authentication-skip-lookup",
		// A burst binds a pod per environment: the default 50/s is 20 s
		// for a thousand.
		"--kube-api-qps=1000", "--kube-api-burst=2000",
		"--bind-address=127.0.0.1", "--secure-port", strconv.Itoa(ports[4])); err != nil {
		return nil, err
	}
	if err := c.start(dir, "kwok", filepath.Join(bin, "kwok"), kc, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--node-ip=10.0.0.1", "--cidr=10.0.0.1/16",
		"--server-address", "127.0.0.1:"+strconv.Itoa(ports[5]), "--config", stages); err != nil {
		return nil, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, err
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	var node corev1.Node
	if err := yaml.Unmarshal(nodeYAML, &node); err != nil {
		return nil, err
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, &node, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create the kwok node: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.stopStorage = cancel
	if err := installStorage(sctx, c.Client); err != nil {
		return nil, err
	}
	return c, nil
}

// findEtcd is the etcd scripts/kube-binaries built into bin (watch cache on),
// else Debian's on the PATH (watch cache off: it is 3.4).
func findEtcd(bin string) (path string, watchCache bool, err error) {
	if bin != "" {
		p := filepath.Join(bin, "etcd")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, true, nil
		}
	}
	p, err := exec.LookPath("etcd")
	return p, false, err
}

// Dir holds the processes' logs (<name>.log) while the cluster runs.
func (c *Cluster) Dir() string { return c.dir }

// start runs a control-plane process, its output in dir/<name>.log.
func (c *Cluster) start(dir, name, path string, args ...string) error {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// client-go 1.3x opens informers with a watch-list request, which
	// needs the watch cache: without it, ask for list+watch at once
	// instead of failing first every time.
	cmd.Env = os.Environ()
	if !c.WatchCache {
		cmd.Env = append(cmd.Env, "KUBE_FEATURE_WatchListClient=false")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs = append(c.procs, &proc{name: name, cmd: cmd, log: logf})
	return nil
}

// stop ends the processes, last started first.
func (c *Cluster) stop() {
	if c.stopStorage != nil {
		c.stopStorage()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		p.log.Close()
	}
	c.procs = nil
	for _, d := range c.rmdirs {
		os.RemoveAll(d)
	}
	c.rmdirs = nil
}

// tails is the end of every process's log, for a failed test.
func (c *Cluster) tails() string {
	var b strings.Builder
	for _, p := range c.procs {
		log, err := os.ReadFile(p.log.Name())
		if err != nil {
			continue
		}
		if len(log) > 3000 {
			log = log[len(log)-3000:]
		}
		fmt.Fprintf(&b, "--- tail of %s.log:\n%s\n", p.name, log)
	}
	return b.String()
}

// waitReady waits for the apiserver's /readyz: a process outside the test
// has no event to wait on, so this asks until a deadline.
func waitReady(ctx context.Context, host, token string) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("kube-apiserver not ready within 3m")
		case <-tick.C:
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// CPU is the CPU time (user + system) each control-plane process used so
// far, by name: where a burst's work goes on the machine.
func (c *Cluster) CPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range c.procs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses: utime
		// and stime are the 12th and 13th, in clock ticks (100 a second
		// on Linux).
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		out[p.name] = time.Duration(u+k) * 10 * time.Millisecond
	}
	return out
}
