package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/glenv/glenv/internal/limits"
	"github.com/glenv/glenv/internal/store"
)

// withDefaultLimits fills the server defaults nobody set.
func withDefaultLimits(l limits.Limits) limits.Limits {
	if l.Memory == 0 {
		l.Memory = 1 << 30
	}
	if l.Processes == 0 {
		l.Processes = 512
	}
	if l.CPU == 0 {
		l.CPU = 1
	}
	if l.Disk == 0 {
		l.Disk = 2 << 30
	}
	return l
}

// setupIsolation finds pasta and makes glenv's cgroups; what is missing is
// logged once here and said again in each deploy's log.
func (r *Runtime) setupIsolation(dir string) {
	if r.opts.DisableIsolation || r.opts.DisableSandbox {
		r.sb.cgWhy = "isolation is disabled"
		return
	}
	if pasta, err := lookPath("pasta", r.opts.Path); err == nil {
		run := filepath.Join(dir, "tmp")
		r.sb.net = &network{pasta: fastestPasta(pasta, r.opts.Path), egress: !r.opts.DenyEgress, asRoot: r.sb.asRoot, runDir: run}
		r.setupDNS(dir)
	}
	cg, err := openCgroups(baseCgroupName(dir))
	if err != nil {
		r.sb.cgWhy = err.Error()
		r.log.Warn("no cgroups: memory and process limits hold per process only (prlimit) and CPU is not limited", "reason", err)
		return
	}
	r.sb.cg = cg
}

// fastestPasta is pasta.avx2 where the CPU has AVX2 and it is installed
// beside pasta: pasta would exec it itself (passt's arch.c), and every
// exec on a deploy's path costs, most on a busy machine.
func fastestPasta(pasta, path string) string {
	avx2, err := lookPath("pasta.avx2", path)
	if err != nil {
		return pasta
	}
	cpu, err := os.ReadFile("/proc/cpuinfo")
	if err != nil || !hasFlag(cpu, "avx2") {
		return pasta
	}
	return avx2
}

// hasFlag reports whether /proc/cpuinfo's flags lines name flag.
func hasFlag(cpuinfo []byte, flag string) bool {
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			return slices.Contains(strings.Fields(v), flag)
		}
	}
	return false
}

// setupDNS makes name resolution work inside the network namespaces when
// the host's resolver is on its loopback (planDNS).
func (r *Runtime) setupDNS(dir string) {
	host := r.opts.HostResolvConf
	if host == "" {
		host = "/etc/resolv.conf"
	}
	b, err := os.ReadFile(host)
	if err != nil {
		r.log.Warn("cannot read the host's resolver configuration: environments resolve names with the host's file as it is", "file", host, "err", err)
		return
	}
	plan := planDNS(string(b), r.sb.net.egress)
	if plan.resolvConf == "" {
		return
	}
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte(plan.resolvConf), 0o644); err != nil {
		r.log.Warn("cannot write the environments' resolv.conf: they cannot resolve names through the host's loopback resolver", "file", path, "err", err)
		return
	}
	r.sb.net.dns, r.sb.net.resolvConf = plan.pastaArgs, path
	if host != "/etc/resolv.conf" {
		// pasta reads /etc/resolv.conf itself: it is shown this one there.
		r.sb.net.hostResolvConf = host
	}
	r.log.Info("the host's DNS resolver is on its loopback: environments reach it through pasta at "+dnsForwardAddr+" (UDP port 53 only)", "file", host)
}

// refuseUnsandboxed refuses to run any code without the sandbox unless
// --unsafe-no-sandbox says so: a branch or tag is as much someone's
// unreviewed code as a merge request.
func (r *Runtime) refuseUnsandboxed(env store.Environment) error {
	if r.sb.enabled() || r.opts.UnsafeNoSandbox {
		return nil
	}
	what := "branch"
	switch env.Kind {
	case "mr":
		what = "merge request"
	case "tag":
		what = "tag"
	}
	why := "bubblewrap (bwrap) is not available here; install the bubblewrap package"
	if r.opts.DisableSandbox {
		why = "the sandbox is disabled"
	} else if reason := r.sandboxWhy; reason != "" {
		why = reason
	}
	return fmt.Errorf("refusing to run %s code without a sandbox: %s, or start glenv with --unsafe-no-sandbox to run it unsandboxed", what, why)
}

// applyLimits resolves the environment's limits from its .glenv.yml, its
// integration's ceilings and the server's, and makes them its commands'
// from now on.
func (r *Runtime) applyLimits(in store.Integration, cfg AppConfig, uid int, logf func(string, ...any)) error {
	srv := r.opts.Limits.ForIntegration(in.Name, in.Ceilings.Limits())
	if srv.Own != (limits.Limits{}) {
		logf("ceilings of integration %s: %s (the server's for the rest)", in.Name, srv.Own)
	}
	lim, err := srv.Resolve(cfg.Limits)
	if err != nil {
		var le *limits.Error
		if errors.As(err, &le) {
			return &ConfigError{Problems: le.Problems}
		}
		return err
	}
	if r.sb.cg == nil && r.sb.prlimit == "" {
		return fmt.Errorf("cannot enforce limits (%s): cgroups are not usable here (%s) and prlimit is not installed; install util-linux, or run glenv where it can create cgroups (as root, or in a delegated cgroup v2)", lim, r.sb.cgWhy)
	}
	r.sb.setLimits(uid, lim)
	logf("%s", r.sb.describe(lim))
	if r.sb.net == nil && r.sb.enabled() {
		logf("warning: no network namespace (isolation disabled): the app shares the host's network")
	}
	return nil
}

// connectionLimit is the CONNECTION LIMIT to ask internal/data for, for a
// database whose .glenv.yml asked for requested (0: nothing) under the
// integration's ceiling (0: none of its own; the server's then decides,
// see data.roleLimit). The integration's ceiling is also the default.
func connectionLimit(service string, requested int, in store.Integration) (int, error) {
	ceiling := in.DatabaseConnectionLimit
	switch {
	case ceiling <= 0:
		return requested, nil
	case requested == 0:
		return ceiling, nil
	case requested > ceiling:
		return 0, &ConfigError{Problems: []string{fmt.Sprintf("services.postgresql %s connection_limit: %d is over integration %s's ceiling of %d connections (glenv integration:update %s --services-database-connection-limit); ask for at most %d",
			service, requested, in.Name, ceiling, in.Name, ceiling)}}
	}
	return requested, nil
}

// check runs j to the end and returns its output: the probe that the
// sandbox works here.
func (sb *sandbox) check(j job) (string, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", err
	}
	read := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(pr, 64<<10))
		_, _ = io.Copy(io.Discard, pr)
		pr.Close()
		read <- string(b)
	}()
	l := sb.command(j)
	l.out = pw
	err = l.Start()
	if err == nil {
		err = l.Wait()
	}
	pw.Close()
	return <-read, err
}
