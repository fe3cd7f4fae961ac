package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeVariablesAPI records the requests the variable commands make.
type fakeVariablesAPI struct {
	mu   sync.Mutex
	reqs []string // "METHOD path body"
}

func (f *fakeVariablesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.EscapedPath()+" "+strings.TrimSpace(string(b)))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/api/v1/environments":
		io.WriteString(w, `[{"id":3,"name":"feature/login","integration":"app"}]`)
	case r.Method == http.MethodGet:
		io.WriteString(w, `{"name":"API_KEY","level":"integration","integration":"app","value_set":true,"sensitive":true}`)
	default:
		io.WriteString(w, `{"variable":{"name":"API_KEY","level":"integration","integration":"app","value_set":true,"sensitive":true},"redeploys":["main"]}`)
	}
}

func runCLI(t *testing.T, srv *httptest.Server, stdin string, args ...string) (string, error) {
	t.Helper()
	env := map[string]string{"HOME": t.TempDir(), "GLENV_SERVER": srv.URL, "GLENV_API_TOKEN": "test-token-0123456789"}
	var out, errOut bytes.Buffer
	root := NewRoot(func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

func TestVariableCommandsSendWhatWasGiven(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"--value - reads the value from stdin, without its trailing newline", "s3cret-from-stdin\n",
			[]string{"variable:create", "API_KEY", "--value", "-", "--sensitive", "-i", "app"},
			`POST /api/v1/integrations/app/variables {"name":"API_KEY","value":"s3cret-from-stdin","sensitive":true}`},
		{"defaults are left to the server", "",
			[]string{"variable:create", "MODE", "--value", "x", "-i", "app"},
			`POST /api/v1/integrations/app/variables {"name":"MODE","value":"x"}`},
		{"an update sends only the flags given", "",
			[]string{"variable:update", "MODE", "--visible-run=false", "-i", "app"},
			`PATCH /api/v1/integrations/app/variables/MODE {"visible_run":false}`},
		{"an environment's level, its name path-escaped, its integration found", "",
			[]string{"variable:delete", "MODE", "-e", "feature/login"},
			`DELETE /api/v1/integrations/app/environments/feature%2Flogin/variables/MODE `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeVariablesAPI{}
			srv := httptest.NewServer(f)
			defer srv.Close()
			out, err := runCLI(t, srv, tt.stdin, tt.args...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", tt.args, err, out)
			}
			last := f.reqs[len(f.reqs)-1]
			if strings.TrimSpace(last) != strings.TrimSpace(tt.want) {
				t.Fatalf("sent %q, want %q", last, tt.want)
			}
			if !strings.Contains(out, "Redeploying") || !strings.Contains(out, "main") {
				t.Fatalf("the output does not say what is redeployed:\n%s", out)
			}
		})
	}
}

func TestVariableGetNeverPrintsASensitiveValue(t *testing.T) {
	srv := httptest.NewServer(&fakeVariablesAPI{})
	defer srv.Close()
	out, err := runCLI(t, srv, "", "variable:get", "API_KEY", "-i", "app")
	if err != nil || !strings.Contains(out, "[sensitive: set, never shown]") {
		t.Fatalf("variable:get: %v\n%s", err, out)
	}
	out, err = runCLI(t, srv, "", "variable:get", "API_KEY", "-i", "app", "--format", "json")
	var v map[string]any
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v["value_set"] != true {
		t.Fatalf("variable:get --format json: %v\n%s", err, out)
	}
}

func TestVariableCreateNeedsAValue(t *testing.T) {
	srv := httptest.NewServer(&fakeVariablesAPI{})
	defer srv.Close()
	if out, err := runCLI(t, srv, "", "variable:create", "K", "-i", "app"); err == nil || !strings.Contains(err.Error(), "--value") {
		t.Fatalf("no --value: %v\n%s", err, out)
	}
}
