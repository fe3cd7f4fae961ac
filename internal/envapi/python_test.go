package envapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/jobs"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// pythonWithGitLab finds a python3 that imports python-gitlab (Debian's
// python3-gitlab lives in the system interpreter, which a pyenv or venv
// python3 first on PATH does not see).
func pythonWithGitLab() string {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import gitlab").Run() == nil {
			return p
		}
	}
	return ""
}

// TestPythonGitLabManagesGlenvEnvironments runs scripts/python-gitlab-check.py,
// python-gitlab unchanged, against glenv on every database.
func TestPythonGitLabManagesGlenvEnvironments(t *testing.T) {
	python := pythonWithGitLab()
	if python == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("python-gitlab is missing: CI must install Debian's python3-gitlab")
		}
		t.Skip("python-gitlab is not installed (apt-get install python3-gitlab)")
	}
	script, err := filepath.Abs("../../scripts/python-gitlab-check.py")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := startGlenv(t, s, jobs.RecordRuntime{})
		saveBranchEnv(t, g, "main", "active") // one environment glenv made itself
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, script)
		cmd.Env = append(os.Environ(), "GLENV_URL="+g.url, "GLENV_TOKEN="+g.token, "PROJECT="+appPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python-gitlab check failed: %v\n%s", err, out)
		}
		t.Logf("%s", out)
	})
}
