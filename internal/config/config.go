// Package config defines every setting of `glenv serve` once: its flag, its
// GLENV_* environment variable and its default. No other package reads the
// environment; they receive a Config.
package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
	UnsafeNoSandbox     bool
	// Kubeconfig, with --runtime kubernetes, is the cluster to run
	// environments on (empty: the in-cluster service account).
	Kubeconfig             string
	KubernetesIngressClass string
	KubernetesStorageClass string
	KubernetesFetchImage   string
}

// setting is one flag with its env var and help text.
type setting struct {
	name, help string
	str        *string
	dur        *time.Duration
	boolean    *bool
	def        string
}

func (c *Config) settings(getenv func(string) string) []setting {
	return []setting{
		{name: "listen", str: &c.Listen, def: "127.0.0.1:8080", help: "address the HTTP server listens on (API, webhooks and environments)"},
		{name: "data-dir", str: &c.DataDir, def: c.DefaultDataDir(getenv), help: "directory for the SQLite database, secret key, admin token and environments"},
		{name: "database-url", str: &c.DatabaseURL, help: "database URL: empty = SQLite in the data dir, sqlite:///path/to/file.db, or postgres://…"},
		{name: "public-url", str: &c.PublicURL, help: "URL GitLab and people reach glenv at (webhook URLs derive from it); default http://<listen>"},
		{name: "env-domain", str: &c.EnvDomain, def: "localhost", help: "domain under which environments get their host names (<slug>--<integration>.<env-domain>)"},
		{name: "secret-key-file", str: &c.SecretKeyFile, help: "file holding the key that encrypts secrets at rest; default <data-dir>/secret.key, generated on first start"},
		{name: "admin-token", str: &c.AdminToken, help: "seed an admin API token with this value (else one is generated into <data-dir>/admin-token on first start)"},
		{name: "reconcile-interval", dur: &c.ReconcileInterval, def: "3m", help: "how often GitLab's branches and merge requests are compared with glenv's environments"},
		{name: "job-rescue-after", dur: &c.JobRescueAfter, def: "6m", help: "how long a job may run before it counts as lost (its process died) and is run again"},
		{name: "log-level", str: &c.LogLevel, def: "info", help: "debug, info, warn or error"},
		{name: "log-format", str: &c.LogFormat, def: "text", help: "text or json"},
		{name: "runtime", str: &c.Runtime, def: "process", help: "process: build and run each environment's app from its .glenv.yml; kubernetes: run each in its own namespace on a cluster; record: only record deploys (tests, dry runs)"},
		{name: "kubeconfig", str: &c.Kubeconfig, help: "with --runtime kubernetes: kubeconfig file of the cluster; empty = the in-cluster service account"},
		{name: "kubernetes-ingress-class", str: &c.KubernetesIngressClass, help: "with --runtime kubernetes: ingressClassName of environments' Ingresses; empty = the cluster's default class"},
		{name: "kubernetes-storage-class", str: &c.KubernetesStorageClass, help: "with --runtime kubernetes: storage class of services.files volumes (a CSI class that can clone); empty = the cluster's default"},
		{name: "kubernetes-fetch-image", str: &c.KubernetesFetchImage, def: "busybox:1.37", help: "with --runtime kubernetes: image of the init container that downloads the tree (needs sh, wget and tar)"},
		{name: "services-database-url", str: &c.ServicesDatabaseURL, help: "PostgreSQL for apps' services.postgresql databases (a role with CREATEDB and CREATEROLE); empty = glenv runs its own in <data-dir>/postgresql (needs the postgresql package)"},
		{name: "unsafe-no-sandbox", boolean: &c.UnsafeNoSandbox, def: "false", help: "run merge request code even where bubblewrap is missing, unsandboxed, with glenv's own user (it can then read glenv's data)"},
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

// Bind registers every setting on fs. Defaults come from GLENV_* variables
// when set, so an explicit flag still wins over the environment.
func (c *Config) Bind(fs *pflag.FlagSet, getenv func(string) string) {
	for _, s := range c.settings(getenv) {
		def := s.def
		help := s.help + " [" + EnvName(s.name) + "]"
		if v := getenv(EnvName(s.name)); v != "" {
			def = v
		}
		switch {
		case s.str != nil:
			fs.StringVar(s.str, s.name, def, help)
		case s.dur != nil:
			d, err := time.ParseDuration(def)
			if err != nil {
				// A bad env value is reported by Validate through the raw string.
				d = -1
			}
			fs.DurationVar(s.dur, s.name, d, help)
		case s.boolean != nil:
			fs.BoolVar(s.boolean, s.name, def == "true" || def == "1", help)
		}
	}
}

// Validate checks the resolved settings and fills derived defaults. Errors
// name the flag, the rule and the fix.
func (c *Config) Validate() error {
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
	if c.Runtime == "kubernetes" && c.KubernetesFetchImage == "" {
		return fmt.Errorf("--kubernetes-fetch-image: must name an image with sh, wget and tar, e.g. busybox:1.37")
	}
	if c.ServicesDatabaseURL != "" && !strings.HasPrefix(c.ServicesDatabaseURL, "postgres://") && !strings.HasPrefix(c.ServicesDatabaseURL, "postgresql://") {
		return fmt.Errorf("--services-database-url: must be a postgres://user:password@host:port/db URL")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: must be text or json", c.LogFormat)
	}
	return nil
}
