package runtime

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/limits"
)

func TestShippedSchemaIsTheOneValidationUses(t *testing.T) {
	shipped, err := os.ReadFile("../../schema/glenv.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, schemaJSON) {
		t.Fatal("internal/runtime/glenv.schema.json differs from schema/glenv.schema.json; copy the shipped schema over it")
	}
}

func TestAppConfig(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string // substrings of the error; none = valid
	}{
		{name: "the smallest valid file is run plus health", yml: "run: python3 -m http.server $PORT\nhealth: /\n"},
		{name: "a full file is valid", yml: `build:
  - npm ci
  - npm run build
run: node server.js
health: /healthz
env:
  NODE_ENV: production
  WORKERS: 2
paths: [web/, lib/]
services:
  files: [uploads]
  postgresql: [main]
hooks:
  clone: ./sanitize.sh
`},
		{name: "run is required", yml: "health: /\n", want: []string{"(top level) (line 1): missing property 'run'", "e.g. `run: python3"}},
		{name: "an empty file says what the smallest file is", yml: "", want: []string{"is empty; the smallest valid file is"}},
		{name: "health must be an absolute path", yml: "run: x\nhealth: healthz\n", want: []string{"health (line 2):", "give an absolute URL path"}},
		{name: "an unknown key is named with the keys allowed", yml: "run: x\nhealth: /\nbuidl: make\n", want: []string{"buidl", "use only the keys build, run"}},
		{name: "a build step must be a string", yml: "run: x\nhealth: /\nbuild:\n  - make\n  - {a: b}\n", want: []string{"build[1] (line 5):", "one shell command string"}},
		{name: "service names are lower case", yml: "run: x\nhealth: /\nservices:\n  files: [Uploads]\n", want: []string{"services.files[0]", "lower-case letters"}},
		{name: "glenv's own variables cannot be set", yml: "run: x\nhealth: /\nenv:\n  PORT: 80\n", want: []string{"env.PORT (line 4): is set by glenv itself"}},
		{name: "limits are sizes, a count and a number of CPUs", yml: "run: x\nhealth: /\nlimits:\n  memory: 512M\n  processes: 256\n  cpu: 0.5\n  disk: 2G\n"},
		{name: "a size without a unit is bytes", yml: "run: x\nhealth: /\nlimits:\n  memory: 536870912\n"},
		{name: "a limit that is not a size says how to write one", yml: "run: x\nhealth: /\nlimits:\n  memory: lots\n", want: []string{"limits.memory (line 4):", "give a size such as 512M or 2G"}},
		{name: "an unknown limit is named with the limits allowed", yml: "run: x\nhealth: /\nlimits:\n  swap: 1G\n", want: []string{"limits", "use only limits.memory, limits.processes, limits.cpu and limits.disk"}},
		{name: "processes must be a whole number", yml: "run: x\nhealth: /\nlimits:\n  processes: 2.5\n", want: []string{"limits.processes (line 4):", "whole number"}},
		{name: "cpu must be above zero", yml: "run: x\nhealth: /\nlimits:\n  cpu: 0\n", want: []string{"limits.cpu (line 4):", "0.5, 1 or 2"}},
		{name: "image names the container of --runtime kubernetes", yml: "image: python:3.13-slim\nrun: x\nhealth: /\n"},
		{name: "image must be an image reference", yml: "image: 'python 3'\nrun: x\nhealth: /\n", want: []string{"image (line 1):", "give an image reference"}},
		{name: "broken YAML says how to fix the syntax", yml: "run: [x\nhealth: /\n", want: []string{"is not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseAppConfig([]byte(tt.yml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if cfg.Run == "" || cfg.Health == "" {
					t.Fatalf("parsed %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got %+v", cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAppConfigFields(t *testing.T) {
	cfg, err := ParseAppConfig([]byte("build: make\nrun: ./app\nhealth: /\nenv: {N: 2, B: true}\nservices: {files: [a, b], postgresql: [main]}\nhooks: {clone: ./x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Build) != 1 || cfg.Build[0] != "make" || cfg.Env["N"] != "2" || cfg.Env["B"] != "true" ||
		len(cfg.Files) != 2 || cfg.Postgres[0] != "main" || cfg.Clone != "./x" {
		t.Fatalf("%+v", cfg)
	}
}

func TestAppConfigLimitsAreParsed(t *testing.T) {
	cfg, err := ParseAppConfig([]byte("run: x\nhealth: /\nlimits:\n  memory: 512M\n  processes: 256\n  cpu: 0.5\n  disk: 2G\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (limits.Limits{Memory: 512 << 20, Processes: 256, CPU: 0.5, Disk: 2 << 30}); cfg.Limits != want {
		t.Fatalf("limits %+v, want %+v", cfg.Limits, want)
	}
	cfg, err = ParseAppConfig([]byte("run: x\nhealth: /\n"))
	if err != nil || cfg.Limits != (limits.Limits{}) {
		t.Fatalf("a file without limits asks for %+v (%v); want none, so the server's defaults apply", cfg.Limits, err)
	}
}
