package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
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
		{"unknown runtime names the choices", nil, []string{"--runtime", "nomad"}, "must be process, kubernetes or record"},
		{"kubernetes flags without the kubernetes runtime", nil, []string{"--kubernetes-ingress-class", "nginx"}, "--kubernetes-ingress-class"},
		{"kubernetes runtime needs a fetch image", nil, []string{"--runtime", "kubernetes", "--kubernetes-fetch-image", ""}, "--kubernetes-fetch-image"},
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

func TestKubernetesSettings(t *testing.T) {
	c, err := parse(t, map[string]string{"HOME": "/h", "GLENV_KUBECONFIG": "/etc/glenv/kubeconfig"},
		"--runtime", "kubernetes", "--kubernetes-ingress-class", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime != "kubernetes" || c.Kubeconfig != "/etc/glenv/kubeconfig" || c.KubernetesIngressClass != "nginx" || c.KubernetesFetchImage != "busybox:1.37" {
		t.Fatalf("kubernetes settings = %+v", c)
	}
}
