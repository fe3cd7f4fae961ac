package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/glenv/glenv/internal/limits"
)

func parse(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	var c Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.Bind(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestDefaultsEnvAndFlags(t *testing.T) {
	c, err := parse(t, map[string]string{"HOME": "/home/u"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.EnvDomain != "localhost" || c.DataDir != "/home/u/.local/share/glenv" ||
		c.SecretKeyFile != "/home/u/.local/share/glenv/secret.key" || c.PublicURL != "http://127.0.0.1:8080" || c.DatabaseURL != "" {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = parse(t, map[string]string{"HOME": "/h", "GLENV_LISTEN": "0.0.0.0:9000", "GLENV_ENV_DOMAIN": "preview.example.com", "GLENV_PUBLIC_URL": "https://glenv.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.EnvDomain != "preview.example.com" || c.PublicURL != "https://glenv.example.com" {
		t.Fatalf("from env = %+v", c)
	}
	c, err = parse(t, map[string]string{"HOME": "/h", "GLENV_LISTEN": "0.0.0.0:9000"}, "--listen", "127.0.0.1:1")
	if err != nil || c.Listen != "127.0.0.1:1" {
		t.Fatalf("a flag must win over the environment: %+v %v", c, err)
	}
}

func TestBadSettingsNameTheFlag(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"public url without scheme", nil, []string{"--public-url", "glenv.example.com"}, "--public-url"},
		{"env domain with a port", nil, []string{"--env-domain", "localhost:8080"}, "--env-domain"},
		{"reconcile interval too short", nil, []string{"--reconcile-interval", "10ms"}, "--reconcile-interval"},
		{"bad duration in the environment", map[string]string{"GLENV_RECONCILE_INTERVAL": "soon"}, nil, "--reconcile-interval"},
		{"unknown log level", nil, []string{"--log-level", "loud"}, "--log-level"},
		{"unknown log format", nil, []string{"--log-format", "xml"}, "--log-format"},
		{"empty listen", nil, []string{"--listen", ""}, "--listen"},
		{"unknown egress", nil, []string{"--environment-egress", "some"}, "--environment-egress \"some\": must be allow or deny"},
		{"a memory that is not a size", nil, []string{"--environment-max-memory", "lots"}, "--environment-max-memory: \"lots\" is not a size"},
		{"a process count that is not a number", map[string]string{"GLENV_ENVIRONMENT_PROCESSES": "many"}, nil, "--environment-processes \"many\""},
		{"a cpu that is not a number", nil, []string{"--environment-cpu", "fast"}, "--environment-cpu \"fast\""},
		{"a default above its ceiling", nil, []string{"--environment-disk", "20G"}, "--environment-disk: the default is above its ceiling --environment-max-disk"},
		{"a reserve that is not a size", nil, []string{"--disk-reserve", "-1"}, "--disk-reserve"},
		{"unknown runtime names the choices", nil, []string{"--runtime", "nomad"}, "must be process, kubernetes or record"},
		{"kubernetes flags without the kubernetes runtime", nil, []string{"--kubernetes-ingress-class", "nginx"}, "--kubernetes-ingress-class"},
		{"kubernetes runtime needs a fetch image", nil, []string{"--runtime", "kubernetes", "--kubernetes-fetch-image", ""}, "--kubernetes-fetch-image"},
		{"volume clone names its choices", nil, []string{"--runtime", "kubernetes", "--kubernetes-volume-clone", "rsync"}, "must be auto, csi or copy"},
		{"volume clone without the kubernetes runtime", nil, []string{"--kubernetes-volume-clone", "copy"}, "--kubernetes-volume-clone: only applies with --runtime kubernetes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h"}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := parse(t, env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

// The values of secret settings come from the environment in production
// (GLENV_ADMIN_TOKEN, a database URL with its password); --help prints flag
// defaults, so no value from the environment may become one.
func TestHelpNeverShowsValuesFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"HOME":                          "/h",
		"GLENV_ADMIN_TOKEN":             "admin-token-from-env-0123456789",
		"GLENV_DATABASE_URL":            "postgres://glenv:db-password-from-env@db.example.com/glenv",
		"GLENV_SERVICES_DATABASE_URL":   "postgres://apps:services-password-from-env@db.example.com/apps",
		"GLENV_LISTEN":                  "127.0.0.1:9191",
		"GLENV_DELIVERY_BODY_RETENTION": "2d",
		"GLENV_ACTIVITY_LOG_MAX_SIZE":   "1MiB",
	}
	var c Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.Bind(fs, func(k string) string { return env[k] })
	help := fs.FlagUsages()
	for _, secret := range []string{"admin-token-from-env", "db-password-from-env", "services-password-from-env", "9191"} {
		if strings.Contains(help, secret) {
			t.Errorf("--help shows %q from the environment:\n%s", secret, help)
		}
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != env["GLENV_ADMIN_TOKEN"] || c.DatabaseURL != env["GLENV_DATABASE_URL"] ||
		c.ServicesDatabaseURL != env["GLENV_SERVICES_DATABASE_URL"] || c.Listen != "127.0.0.1:9191" ||
		c.DeliveryBodyRetention != 48*time.Hour || c.ActivityLogMaxSize != 1<<20 {
		t.Fatalf("the environment must still give the values: %+v", c)
	}
}

func TestABadValueInTheEnvironmentNamesFlagAndVariable(t *testing.T) {
	_, err := parse(t, map[string]string{"HOME": "/h", "GLENV_RETENTION_INTERVAL": "often"})
	if err == nil || !strings.Contains(err.Error(), "--retention-interval") || !strings.Contains(err.Error(), "GLENV_RETENTION_INTERVAL") {
		t.Fatalf("err = %v, want it to name the flag and the variable", err)
	}
}

func TestRetentionSettings(t *testing.T) {
	c, err := parse(t, map[string]string{"HOME": "/h"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DeliveryBodyRetention != 7*24*time.Hour || c.DeliveryRetention != 90*24*time.Hour || c.DeletedEnvironmentRetention != 30*24*time.Hour ||
		c.ActivityLogMaxSize != 8<<20 || c.RetentionInterval != time.Hour || c.ActivityLogRetention != 90*24*time.Hour ||
		c.ActivityHistory != 100 {
		t.Fatalf("retention defaults = %+v", c)
	}
	c, err = parse(t, map[string]string{"HOME": "/h"}, "--delivery-body-retention", "0", "--deleted-environment-retention", "36h",
		"--activity-log-max-size", "512KiB", "--retention-interval", "5m", "--delivery-retention", "0",
		"--activity-history", "0")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeliveryBodyRetention != 0 || c.DeliveryRetention != 0 || c.DeletedEnvironmentRetention != 36*time.Hour || c.ActivityLogMaxSize != 512<<10 || c.RetentionInterval != 5*time.Minute ||
		c.ActivityHistory != 0 {
		t.Fatalf("retention flags = %+v", c)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a log cap below one chunk", []string{"--activity-log-max-size", "1KiB"}, "--activity-log-max-size"},
		{"a log cap that is not a size", []string{"--activity-log-max-size", "lots"}, "activity-log-max-size"},
		{"days must be whole", []string{"--delivery-body-retention", "1.5d"}, "delivery-body-retention"},
		{"a negative retention", []string{"--deleted-environment-retention", "-1h"}, "--deleted-environment-retention"},
		{"a negative log retention", []string{"--activity-log-retention", "-1h"}, "--activity-log-retention"},
		{"a negative delivery retention", []string{"--delivery-retention", "-1h"}, "--delivery-retention"},
		{"a negative history", []string{"--activity-history", "-1"}, "--activity-history"},
		{"a history that is not a number", []string{"--activity-history", "lots"}, "activity-history"},
		{"a retention interval under a second", []string{"--retention-interval", "1ms"}, "--retention-interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, map[string]string{"HOME": "/h"}, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
}

func TestEnvironmentLimitFlags(t *testing.T) {
	c, err := parse(t, map[string]string{"HOME": "/h"})
	if err != nil {
		t.Fatal(err)
	}
	want := limits.Server{
		Default: limits.Limits{Memory: 1 << 30, Processes: 512, CPU: 1, Disk: 2 << 30},
		Max:     limits.Limits{Memory: 4 << 30, Processes: 4096, CPU: 2, Disk: 10 << 30},
	}
	if c.EnvironmentLimits != want || c.DiskReserve != 1<<30 || c.EnvironmentEgress != "allow" {
		t.Fatalf("defaults: %+v reserve %d egress %q; want %+v, 1G, allow", c.EnvironmentLimits, c.DiskReserve, c.EnvironmentEgress, want)
	}
	c, err = parse(t, map[string]string{"HOME": "/h", "GLENV_ENVIRONMENT_MAX_MEMORY": "8G"},
		"--environment-memory", "512M", "--environment-max-cpu", "", "--environment-egress", "deny", "--disk-reserve", "256M")
	if err != nil {
		t.Fatal(err)
	}
	if c.EnvironmentLimits.Default.Memory != 512<<20 || c.EnvironmentLimits.Max.Memory != 8<<30 || c.EnvironmentLimits.Max.CPU != 0 ||
		c.EnvironmentEgress != "deny" || c.DiskReserve != 256<<20 {
		t.Fatalf("from flags and environment: %+v reserve %d egress %q", c.EnvironmentLimits, c.DiskReserve, c.EnvironmentEgress)
	}
}

func TestKubernetesSettings(t *testing.T) {
	c, err := parse(t, map[string]string{"HOME": "/h", "GLENV_KUBECONFIG": "/etc/glenv/kubeconfig"},
		"--runtime", "kubernetes", "--kubernetes-ingress-class", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime != "kubernetes" || c.Kubeconfig != "/etc/glenv/kubeconfig" || c.KubernetesIngressClass != "nginx" || c.KubernetesFetchImage != "busybox:1.37" || c.KubernetesVolumeClone != "auto" {
		t.Fatalf("kubernetes settings = %+v", c)
	}
}
