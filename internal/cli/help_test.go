package cli

import (
	"bytes"
	"strings"
	"testing"
)

// --help prints flag defaults; secrets set in the environment must not
// become any (GLENV_ADMIN_TOKEN, the database password, the API token).
func TestHelpWithSecretsInTheEnvironmentShowsNone(t *testing.T) {
	env := map[string]string{
		"HOME":                        t.TempDir(),
		"GLENV_ADMIN_TOKEN":           "admin-token-from-env-0123456789",
		"GLENV_DATABASE_URL":          "postgres://glenv:db-password-from-env@127.0.0.1:1/glenv",
		"GLENV_SERVICES_DATABASE_URL": "postgres://apps:services-password-from-env@127.0.0.1:1/apps",
		"GLENV_API_TOKEN":             "api-token-from-env-0123456789",
	}
	secrets := []string{"admin-token-from-env", "db-password-from-env", "services-password-from-env", "api-token-from-env"}
	for _, args := range [][]string{{"serve", "--help"}, {"integration:list", "--help"}, {"activity:log", "--help"}, {"variable:create", "--help"}, {"variable:update", "--help"}, {"--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := NewRoot(func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
			root.SetArgs(args)
			if err := root.Execute(); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			help := out.String() + errOut.String()
			if !strings.Contains(help, "Usage") {
				t.Fatalf("no help printed:\n%s", help)
			}
			for _, s := range secrets {
				if strings.Contains(help, s) {
					t.Errorf("%v shows %q:\n%s", args, s, help)
				}
			}
		})
	}
}

func TestAPITokenFromTheEnvironmentStillReachesTheClient(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir(), "GLENV_API_TOKEN": "api-token-from-env-0123456789"}
	cf := &clientFlags{server: "http://127.0.0.1:1", format: "table"}
	c, err := cf.client(func(k string) string { return env[k] })
	if err != nil || c.token != env["GLENV_API_TOKEN"] {
		t.Fatalf("client token = %v, %v; want GLENV_API_TOKEN", c, err)
	}
	cf.token = "from-the-flag"
	if c, err := cf.client(func(k string) string { return env[k] }); err != nil || c.token != "from-the-flag" {
		t.Fatalf("a flag must win over GLENV_API_TOKEN: %v %v", c, err)
	}
}
