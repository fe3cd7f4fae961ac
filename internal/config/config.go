// Package config defines every setting of `glenv serve` once: its flag, its
// GLENV_* environment variable and its default. No other package reads the
// environment; they receive a Config.
package config

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/glenv/glenv/internal/limits"
)

// Config is the server's configuration, resolved from flags, GLENV_* variables and defaults.
type Config struct {
	Listen            string
	DataDir           string
	DatabaseURL       string
	PublicURL         string
	EnvDomain         string
	SecretKeyFile     string
	AdminToken        string
	ReconcileInterval time.Duration
	JobRescueAfter    time.Duration
	LogLevel          string
	LogFormat         string
	// Runtime is "process" (build and run apps) or "record" (record
	// deploys without running anything: tests, dry runs).
	Runtime             string
	ServicesDatabaseURL string
	// ServicesConnectionLimit is each environment role's CONNECTION LIMIT
	// when its .glenv.yml asks for none, and the most it may ask for.
	ServicesConnectionLimit int
	UnsafeNoSandbox         bool
	// Admins are host/username pairs (comma-separated) who are admins when
	// they sign in with GitLab.
	Admins string
	// Kubeconfig, with --runtime kubernetes, is the cluster to run
	// environments on (empty: the in-cluster service account).
	Kubeconfig             string
	KubernetesIngressClass string
	KubernetesStorageClass string
	KubernetesFetchImage   string
	// KubernetesVolumeClone is how services.files claims get the parent's
	// data: auto, csi or copy (internal/kube/volume.go).
	KubernetesVolumeClone string
	// KubernetesQPS and KubernetesBurst bound glenv's own requests to the
	// Kubernetes API (client-go's token bucket); 0 QPS = no client-side
	// limit (kubernetes.go).
	KubernetesQPS   int
	KubernetesBurst int
	// Workers is how many jobs (deploys, removals, feedback) run at once;
	// 0 = the runtime's default (kubernetes.go).
	Workers int

	// Retention: what glenv keeps, and for how long (internal/retention).
	// A zero age keeps things forever.
	DeliveryBodyRetention       time.Duration
	DeliveryRetention           time.Duration
	DeletedEnvironmentRetention time.Duration
	ActivityLogMaxSize          int64
	ActivityLogRetention        time.Duration
	ActivityHistory             int
	RetentionInterval           time.Duration

	// bound remembers where Bind registered the flags, so Validate can fill
	// the ones not given on the command line from GLENV_* variables.
	bound *binding

	// EnvironmentEgress is allow (environments reach the outside world)
	// or deny (only their databases).
	EnvironmentEgress string
	// EnvironmentLimits are each environment's default limits and the
	// most its .glenv.yml may ask for; DiskReserve is the free space glenv
	// keeps on its data dir's filesystem. Parsed by Validate from the
	// environment-* and disk-reserve flags.
	EnvironmentLimits limits.Server
	DiskReserve       int64
	limitFlags        limitFlags

	// Several replicas on one PostgreSQL (internal/replica): where the
	// others reach this one, how often it heartbeats, and how long a
	// silent one lives before the others take its environments over.
	ReplicaAddress   string
	ReplicaHeartbeat time.Duration
	ReplicaDeadAfter time.Duration
}

type binding struct {
	fs     *pflag.FlagSet
	getenv func(string) string
}

// limitFlags are the raw values of the limit flags, parsed by Validate.
type limitFlags struct {
	memory, maxMemory, processes, maxProcesses, cpu, maxCPU, disk, maxDisk, diskReserve string
}

// setting is one flag with its env var and help text.
type setting struct {
	name, help string
	str        *string
	dur        *time.Duration
	size       *int64
	boolean    *bool
	integer    *int
	def        string
	// secret settings never show their value: not in --help, not in errors.
	secret bool
}

func (c *Config) settings(getenv func(string) string) []setting {
	return []setting{
		{name: "listen", str: &c.Listen, def: "127.0.0.1:8080", help: "address the HTTP server listens on (API, webhooks and environments)"},
		{name: "data-dir", str: &c.DataDir, def: c.DefaultDataDir(getenv), help: "directory for the SQLite database, secret key, admin token and environments"},
		{name: "database-url", str: &c.DatabaseURL, secret: true, help: "database URL: empty = SQLite in the data dir, sqlite:///path/to/file.db, or postgres://…"},
		{name: "public-url", str: &c.PublicURL, help: "URL GitLab and people reach glenv at (webhook URLs derive from it); default http://<listen>"},
		{name: "env-domain", str: &c.EnvDomain, def: "localhost", help: "domain under which environments get their host names (<slug>--<integration>.<env-domain>)"},
		{name: "secret-key-file", str: &c.SecretKeyFile, help: "file holding the key that encrypts secrets at rest; default <data-dir>/secret.key, generated on first start"},
		{name: "admin-token", str: &c.AdminToken, secret: true, help: "seed an admin API token with this value (else one is generated into <data-dir>/admin-token on first start)"},
		{name: "reconcile-interval", dur: &c.ReconcileInterval, def: "3m", help: "how often GitLab's branches and merge requests are compared with glenv's environments"},
		{name: "job-rescue-after", dur: &c.JobRescueAfter, def: "6m", help: "how long a job may run before it counts as lost (its process died) and is run again"},
		{name: "log-level", str: &c.LogLevel, def: "info", help: "debug, info, warn or error"},
		{name: "log-format", str: &c.LogFormat, def: "text", help: "text or json"},
		{name: "runtime", str: &c.Runtime, def: "process", help: "process: build and run each environment's app from its .glenv.yml; kubernetes: run each in its own namespace on a cluster; record: only record deploys (tests, dry runs)"},
		{name: "kubeconfig", str: &c.Kubeconfig, help: "with --runtime kubernetes: kubeconfig file of the cluster; empty = the in-cluster service account"},
		{name: "kubernetes-ingress-class", str: &c.KubernetesIngressClass, help: "with --runtime kubernetes: ingressClassName of environments' Ingresses; empty = the cluster's default class"},
		{name: "kubernetes-storage-class", str: &c.KubernetesStorageClass, help: "with --runtime kubernetes: storage class of services.files volumes (a CSI class that can clone); empty = the cluster's default"},
		{name: "kubernetes-volume-clone", str: &c.KubernetesVolumeClone, def: "auto", help: "with --runtime kubernetes: how services.files volumes get the parent's data: csi (a CSI clone, dataSourceRef), copy (a Job copies the parent's volume), auto (csi where the storage class's provisioner is a CSI driver, else copy)"},
		{name: "kubernetes-fetch-image", str: &c.KubernetesFetchImage, def: "busybox:1.37", help: "with --runtime kubernetes: image of the init container that downloads the tree (needs sh, wget and tar)"},
		{name: "kubernetes-qps", integer: &c.KubernetesQPS, def: "200", help: "with --runtime kubernetes: requests per second glenv may send the Kubernetes API, sustained (0 = no client-side limit: the API server's priority and fairness alone)"},
		{name: "kubernetes-burst", integer: &c.KubernetesBurst, def: "1000", help: "with --runtime kubernetes: requests glenv may send the Kubernetes API at once above --kubernetes-qps (a new environment costs about 6)"},
		{name: "workers", integer: &c.Workers, def: "0", help: "jobs (deploys, removals, feedback) run at once; 0 = 8, or 128 with --runtime kubernetes, where a deploy mostly waits on the cluster"},
		{name: "services-database-url", str: &c.ServicesDatabaseURL, secret: true, help: "PostgreSQL for apps' services.postgresql databases (a role with CREATEDB and CREATEROLE); empty = glenv runs its own in <data-dir>/postgresql (needs the postgresql package)"},
		{name: "services-database-connection-limit", integer: &c.ServicesConnectionLimit, def: "20", help: "connections each environment may hold to one of its services.postgresql databases: the default, and the most a .glenv.yml connection_limit may ask for"},
		{name: "admins", str: &c.Admins, help: "comma-separated GitLab accounts that are glenv admins when they sign in, as host/username, e.g. gitlab.example.com/alice"},
		{name: "unsafe-no-sandbox", boolean: &c.UnsafeNoSandbox, def: "false", help: "run merge request, branch and tag code even where bubblewrap or pasta is missing, unsandboxed, with glenv's own user (it can then read glenv's data)"},
		{name: "delivery-body-retention", dur: &c.DeliveryBodyRetention, def: "7d", help: "drop webhook deliveries' bodies this long after they were received (once processed), keeping headers and results (0 = keep forever)"},
		{name: "delivery-retention", dur: &c.DeliveryRetention, def: "90d", help: "forget webhook deliveries whole (headers, status, result) this long after they were received, once processed; GitLab resending one after that has it processed again (0 = keep forever)"},
		{name: "deleted-environment-retention", dur: &c.DeletedEnvironmentRetention, def: "30d", help: "forget deleted environments (and their activities and logs) this long after they were deleted (0 = keep forever)"},
		{name: "activity-log-max-size", size: &c.ActivityLogMaxSize, def: "8MiB", help: "keep at most this much of each activity's log: the tail, marked where it was cut"},
		{name: "activity-log-retention", dur: &c.ActivityLogRetention, def: "90d", help: "drop activities' logs this long after they completed; the activities stay (0 = keep forever)"},
		{name: "activity-history", integer: &c.ActivityHistory, def: "100", help: "activities (deploys, syncs, stops…) each environment keeps, newest first; older ones go with their logs, except unfinished ones, the last successful deploy, the newest of each kind and deploys GitLab does not fully show yet (0 = keep all)"},
		{name: "retention-interval", dur: &c.RetentionInterval, def: "1h", help: "how often the retention job drops old deliveries, bodies, logs, activities and deleted environments"},
		{name: "environment-egress", str: &c.EnvironmentEgress, def: "allow", help: "allow: environments reach the outside world (never the host's loopback, except their databases); deny: only their databases"},
		{name: "environment-memory", str: &c.limitFlags.memory, def: "1G", help: "memory of an environment whose .glenv.yml sets no limits.memory (all its processes together)"},
		{name: "environment-max-memory", str: &c.limitFlags.maxMemory, def: "4G", help: "the most limits.memory an environment may ask for"},
		{name: "environment-processes", str: &c.limitFlags.processes, def: "512", help: "processes of an environment whose .glenv.yml sets no limits.processes"},
		{name: "environment-max-processes", str: &c.limitFlags.maxProcesses, def: "4096", help: "the most limits.processes an environment may ask for"},
		{name: "environment-cpu", str: &c.limitFlags.cpu, def: "1", help: "CPUs' worth of time of an environment whose .glenv.yml sets no limits.cpu"},
		{name: "environment-max-cpu", str: &c.limitFlags.maxCPU, def: "2", help: "the most limits.cpu an environment may ask for"},
		{name: "environment-disk", str: &c.limitFlags.disk, def: "2G", help: "disk of an environment whose .glenv.yml sets no limits.disk; over it, it is stopped"},
		{name: "environment-max-disk", str: &c.limitFlags.maxDisk, def: "10G", help: "the most limits.disk an environment may ask for"},
		{name: "replica-address", str: &c.ReplicaAddress, help: "with PostgreSQL: host:port where the other glenv replicas reach this one, to forward requests for the environments it runs; default --listen"},
		{name: "replica-heartbeat", dur: &c.ReplicaHeartbeat, def: "2s", help: "with PostgreSQL: how often this replica records that it is alive"},
		{name: "replica-dead-after", dur: &c.ReplicaDeadAfter, def: "10s", help: "with PostgreSQL: a replica silent this long is dead, and the others deploy its environments again"},
		{name: "disk-reserve", str: &c.limitFlags.diskReserve, def: "1G", help: "free space kept on the data dir's filesystem: below it /readyz says not ready and the environment writing the most is stopped"},
	}
}

// DefaultDataDir is $XDG_DATA_HOME/glenv, else ~/.local/share/glenv.
func (c *Config) DefaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "glenv")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "glenv")
	}
	return "glenv-data"
}

// EnvName is the environment variable that backs a flag.
func EnvName(flag string) string {
	return "GLENV_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Bind registers every setting on fs with its built-in default. GLENV_*
// variables are read by Validate, after parsing, for the flags not given:
// a flag wins over the environment, and --help never shows a value from the
// environment (GLENV_ADMIN_TOKEN, a database password).
func (c *Config) Bind(fs *pflag.FlagSet, getenv func(string) string) {
	for _, s := range c.settings(getenv) {
		help := s.help + " [" + EnvName(s.name) + "]"
		switch {
		case s.str != nil:
			fs.StringVar(s.str, s.name, s.def, help)
		case s.dur != nil:
			d, err := parseDuration(s.def)
			if err != nil {
				panic("config: bad default for --" + s.name)
			}
			*s.dur = d
			fs.Var((*durationValue)(s.dur), s.name, help)
		case s.size != nil:
			n, err := parseSize(s.def)
			if err != nil {
				panic("config: bad default for --" + s.name)
			}
			*s.size = n
			fs.Var((*sizeValue)(s.size), s.name, help)
		case s.boolean != nil:
			fs.BoolVar(s.boolean, s.name, s.def == "true", help)
		case s.integer != nil:
			n, err := strconv.Atoi(s.def)
			if err != nil {
				panic("config: bad default for --" + s.name)
			}
			fs.IntVar(s.integer, s.name, n, help)
		}
	}
	c.bound = &binding{fs: fs, getenv: getenv}
}

// applyEnv sets each flag not given on the command line from its GLENV_*
// variable.
func (c *Config) applyEnv() error {
	if c.bound == nil {
		return nil
	}
	for _, s := range c.settings(c.bound.getenv) {
		v := c.bound.getenv(EnvName(s.name))
		if v == "" || c.bound.fs.Changed(s.name) {
			continue
		}
		if err := c.bound.fs.Set(s.name, v); err != nil {
			shown := fmt.Sprintf("%q", v)
			if s.secret {
				shown = "(value hidden)"
			}
			return fmt.Errorf("--%s from %s %s: %s", s.name, EnvName(s.name), shown, kindRule(s))
		}
	}
	return nil
}

// kindRule says what a setting's value must look like.
func kindRule(s setting) string {
	switch {
	case s.dur != nil:
		return "must be a duration such as 90s, 3m, 12h or 30d"
	case s.size != nil:
		return "must be a size such as 8MiB, 512KiB or 1048576 (bytes)"
	case s.boolean != nil:
		return "must be true or false"
	case s.integer != nil:
		return "must be a whole number"
	}
	return "invalid value"
}

// Validate checks the resolved settings and fills derived defaults. Errors
// name the flag, the rule and the fix.
func (c *Config) Validate() error {
	if err := c.applyEnv(); err != nil {
		return err
	}
	if c.Listen == "" {
		return fmt.Errorf("--listen: must be host:port, e.g. 127.0.0.1:8080")
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir: must not be empty; pass a writable directory")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.SecretKeyFile == "" {
		c.SecretKeyFile = filepath.Join(c.DataDir, "secret.key")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--public-url %q: must be an absolute http(s) URL such as https://glenv.example.com", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.EnvDomain == "" || strings.ContainsAny(c.EnvDomain, "/: ") {
		return fmt.Errorf("--env-domain %q: must be a DNS domain such as localhost or preview.example.com", c.EnvDomain)
	}
	if c.ReconcileInterval < time.Second {
		return fmt.Errorf("--reconcile-interval: must be a duration of at least 1s, e.g. 3m")
	}
	if c.JobRescueAfter < time.Second {
		return fmt.Errorf("--job-rescue-after: must be a duration of at least 1s, e.g. 6m")
	}
	if c.ServicesConnectionLimit == 0 && c.bound == nil {
		c.ServicesConnectionLimit = 20 // a Config built in code, not from flags
	}
	if c.ServicesConnectionLimit < 1 {
		return fmt.Errorf("--services-database-connection-limit: must be a whole number of at least 1, e.g. 20")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: must be one of debug, info, warn, error", c.LogLevel)
	}
	switch c.Runtime {
	case "process", "record", "kubernetes":
	default:
		return fmt.Errorf("--runtime %q: must be process, kubernetes or record", c.Runtime)
	}
	if c.Runtime != "kubernetes" && (c.Kubeconfig != "" || c.KubernetesIngressClass != "" || c.KubernetesStorageClass != "") {
		return fmt.Errorf("--kubeconfig, --kubernetes-ingress-class and --kubernetes-storage-class: only apply with --runtime kubernetes; add --runtime kubernetes or drop them")
	}
	if c.KubernetesVolumeClone == "" {
		// A Config built in code gets the flag's default, as the other
		// kubernetes settings do (kubernetes.go).
		c.KubernetesVolumeClone = "auto"
	}
	switch c.KubernetesVolumeClone {
	case "auto", "csi", "copy":
	default:
		return fmt.Errorf("--kubernetes-volume-clone %q: must be auto, csi or copy", c.KubernetesVolumeClone)
	}
	if c.Runtime != "kubernetes" && c.KubernetesVolumeClone != "auto" {
		return fmt.Errorf("--kubernetes-volume-clone: only applies with --runtime kubernetes; add --runtime kubernetes or drop it")
	}
	if err := c.validateKubernetes(); err != nil {
		return err
	}
	if c.Runtime == "kubernetes" && c.KubernetesFetchImage == "" {
		return fmt.Errorf("--kubernetes-fetch-image: must name an image with sh, wget and tar, e.g. busybox:1.37")
	}
	if c.ServicesDatabaseURL != "" && !strings.HasPrefix(c.ServicesDatabaseURL, "postgres://") && !strings.HasPrefix(c.ServicesDatabaseURL, "postgresql://") {
		return fmt.Errorf("--services-database-url: must be a postgres://user:password@host:port/db URL")
	}
	for _, a := range c.AdminList() {
		if host, user, ok := strings.Cut(a, "/"); !ok || host == "" || user == "" || strings.Contains(user, "/") {
			return fmt.Errorf("--admins: %q must be host/username, e.g. gitlab.example.com/alice", a)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: must be text or json", c.LogFormat)
	}
	if c.EnvironmentEgress == "" && c.bound == nil {
		// Built by hand (tests, benchmarks) without Bind: the default.
		c.EnvironmentEgress = "allow"
	}
	switch c.EnvironmentEgress {
	case "allow", "deny":
	default:
		return fmt.Errorf("--environment-egress %q: must be allow or deny", c.EnvironmentEgress)
	}
	if err := c.parseLimits(); err != nil {
		return err
	}
	if err := c.validateReplicas(); err != nil {
		return err
	}
	return c.validateRetention()
}

// parseLimits reads the limit flags; a flag left empty has no value (no
// default, no ceiling).
func (c *Config) parseLimits() error {
	f := c.limitFlags
	size := func(flag, v string, into *int64) error {
		if strings.TrimSpace(v) == "" {
			return nil
		}
		n, err := limits.ParseSize(v)
		if err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
		*into = n
		return nil
	}
	count := func(flag, v string, into *int) error {
		if strings.TrimSpace(v) == "" {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("--%s %q: must be a whole number of processes such as 512", flag, v)
		}
		*into = n
		return nil
	}
	cpus := func(flag, v string, into *float64) error {
		if strings.TrimSpace(v) == "" {
			return nil
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return fmt.Errorf("--%s %q: must be a number of CPUs such as 0.5, 1 or 2", flag, v)
		}
		*into = n
		return nil
	}
	d, m := &c.EnvironmentLimits.Default, &c.EnvironmentLimits.Max
	for _, err := range []error{
		size("environment-memory", f.memory, &d.Memory), size("environment-max-memory", f.maxMemory, &m.Memory),
		count("environment-processes", f.processes, &d.Processes), count("environment-max-processes", f.maxProcesses, &m.Processes),
		cpus("environment-cpu", f.cpu, &d.CPU), cpus("environment-max-cpu", f.maxCPU, &m.CPU),
		size("environment-disk", f.disk, &d.Disk), size("environment-max-disk", f.maxDisk, &m.Disk),
		size("disk-reserve", f.diskReserve, &c.DiskReserve),
	} {
		if err != nil {
			return err
		}
	}
	// A default above its ceiling is a mistake worth stopping for.
	for _, x := range []struct {
		flag      string
		def, ceil float64
	}{
		{"environment-memory", float64(d.Memory), float64(m.Memory)},
		{"environment-processes", float64(d.Processes), float64(m.Processes)},
		{"environment-cpu", d.CPU, m.CPU},
		{"environment-disk", float64(d.Disk), float64(m.Disk)},
	} {
		if x.ceil > 0 && x.def > x.ceil {
			return fmt.Errorf("--%s: the default is above its ceiling --%s; lower the one or raise the other",
				x.flag, strings.Replace(x.flag, "environment-", "environment-max-", 1))
		}
	}
	return nil
}

// MinActivityLogMaxSize keeps the log cap above one chunk of log, so the
// kept tail is never empty while a build still writes.
const MinActivityLogMaxSize = 64 << 10

func (c *Config) validateRetention() error {
	if c.DeliveryBodyRetention < 0 {
		return fmt.Errorf("--delivery-body-retention: must not be negative; 0 keeps bodies forever, e.g. 7d")
	}
	if c.DeliveryRetention < 0 {
		return fmt.Errorf("--delivery-retention: must not be negative; 0 keeps deliveries forever, e.g. 90d")
	}
	if c.DeletedEnvironmentRetention < 0 {
		return fmt.Errorf("--deleted-environment-retention: must not be negative; 0 keeps deleted environments forever, e.g. 30d")
	}
	if c.ActivityLogRetention < 0 {
		return fmt.Errorf("--activity-log-retention: must not be negative; 0 keeps logs forever, e.g. 90d")
	}
	if c.ActivityHistory < 0 {
		return fmt.Errorf("--activity-history: must not be negative; 0 keeps every activity, e.g. 100")
	}
	if c.ActivityLogMaxSize == 0 && c.bound == nil {
		// Built by hand (tests, benchmarks) without Bind: take the default.
		c.ActivityLogMaxSize = 8 << 20
	}
	if c.ActivityLogMaxSize < MinActivityLogMaxSize {
		return fmt.Errorf("--activity-log-max-size: must be at least 64KiB, e.g. 8MiB")
	}
	if c.RetentionInterval == 0 && c.bound == nil {
		c.RetentionInterval = time.Hour
	}
	if c.RetentionInterval < time.Second {
		return fmt.Errorf("--retention-interval: must be a duration of at least 1s, e.g. 1h")
	}
	return nil
}

// AdminList is --admins split into host/username pairs.
func (c *Config) AdminList() []string {
	var out []string
	for _, a := range strings.Split(c.Admins, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, strings.ToLower(a))
		}
	}
	return out
}
