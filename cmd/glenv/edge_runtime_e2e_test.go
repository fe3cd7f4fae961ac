package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// probeApp answers every request with the headers it received, as JSON.
var probeApp = map[string]string{
	".glenv.yml": "run: python3 probe.py\nhealth: /\n",
	"probe.py": `import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.readline()  # waits for the body the proxy forwards
        self.do_GET()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`,
}

func TestAppsSeeForwardedHeadersFromGlenvAndGitLabSeesNoHostPath(t *testing.T) {
	gl := newGitLab(t)
	pid := gl.Project.ID
	shaMain := gl.Commit(t, pid, gitlabtest.Commit{Branch: "main", Files: probeApp})
	g := startGlenv(t, "", "GLENV_RUNTIME=process", "GLENV_PUBLIC_URL=https://glenv.example.test")
	var res integrationJSON
	g.mustJSON(&res, addArgs(gl)...)
	g.waitEnv("app", "main", func(e envJSON, ok bool) bool { return ok && e.State == "active" && e.DeployedSHA == shaMain })

	// A client forges every forwarding header, and the same under names
	// with underscores (one CGI/WSGI variable with the real ones); the app
	// inside its sandbox sees only what glenv says, whether the Front
	// forwards the request (a GET) or ReverseProxy does (a chunked body).
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
		if chunked {
			req, _ = http.NewRequest(http.MethodPost, g.URL+"/", io.NopCloser(strings.NewReader("hello\n")))
			req.ContentLength = -1
		}
		req.Host = "main--app.localhost"
		for k, v := range map[string]string{"X-Real-IP": "6.6.6.6", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
			"X-Forwarded-Proto": "http", "Forwarded": "for=6.6.6.6", "True-Client-IP": "6.6.6.6"} {
			req.Header.Set(k, v)
		}
		for _, k := range []string{"X_Real_Ip", "X_Forwarded_For", "X_Forwarded_Host", "X_Glenv_Replica_Client"} {
			req.Header[k] = []string{"6.6.6.6"}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var seen map[string]string
		err = json.NewDecoder(resp.Body).Decode(&seen)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("probe app: %d %v\n%s", resp.StatusCode, err, g.tail())
		}
		want := map[string]string{"x-real-ip": "127.0.0.1", "x-forwarded-for": "127.0.0.1", "x-forwarded-host": "main--app.localhost",
			"x-forwarded-proto": "https", "forwarded": "", "true-client-ip": ""}
		for k, v := range want {
			if seen[k] != v {
				t.Errorf("chunked %v: the app saw %s = %q, want %q (all: %v)", chunked, k, seen[k], v, seen)
			}
		}
		for k := range seen {
			if strings.Contains(k, "_") {
				t.Errorf("chunked %v: the app got %s, a header with an underscore (all: %v)", chunked, k, seen)
			}
		}
	}

	// A malformed chunked body is the client's fault (400), not the app's
	// (502), and the app keeps serving.
	line, err := slowRequest(t, g.addr, "POST / HTTP/1.1\r\nHost: main--app.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 10*time.Second)
	if err != nil || !strings.Contains(line, " 400 ") {
		t.Fatalf("malformed chunked body to an environment: %q %v, want 400", line, err)
	}
	if code, _, err := g.getEnv("main--app"); err != nil || code != 200 {
		t.Fatalf("the app after a malformed request: %d %v", code, err)
	}

	// A merge request whose deploy fails on a host path (a file stands
	// where its environment's directory goes): GitLab's status, the MR
	// note and the public log link say why, without glenv's host paths.
	next := int64(0)
	for _, e := range g.envs("app") {
		next = max(next, e.ID)
	}
	// Ids are not dense (rows are reserved and dropped): block the next few.
	for id := next + 1; id <= next+20; id++ {
		blocker := filepath.Join(g.dataDir, "runtime", "envs", strconv.FormatInt(id, 10))
		if err := os.WriteFile(blocker, []byte("in the way\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	shaMR := gl.Commit(t, pid, gitlabtest.Commit{Branch: "feature-x", Files: probeApp})
	gl.SetMergeRequest(pid, gitlabtest.MergeRequest{IID: 1, Title: "MR 1", SourceBranch: "feature-x", TargetBranch: "main", SHA: shaMR})
	if code, body := g.deliver("app", res.WebhookSecret, "Merge Request Hook", mrPayload(t, pid, "merge_request_open.json", 1, shaMR, time.Now()), ""); code != 202 {
		t.Fatalf("MR open: %d %s", code, body)
	}
	g.waitEnv("app", "mr-1", func(e envJSON, ok bool) bool { return ok && e.State == "failed" })
	var texts []string
	waitFor(t, g, "a failed status in GitLab", func() bool {
		for _, st := range gl.Statuses(pid, shaMR) {
			if st.Status == "failed" {
				texts = append(texts, st.Description, st.TargetURL)
				return true
			}
		}
		return false
	})
	waitFor(t, g, "the MR note", func() bool {
		notes := gl.Notes(pid, 1)
		for _, n := range notes {
			texts = append(texts, n.Body)
		}
		return len(notes) > 0 && strings.Contains(notes[len(notes)-1].Body, "fail")
	})
	logURL := texts[1]
	if !strings.HasPrefix(logURL, "https://glenv.example.test/logs/") {
		t.Fatalf("status target_url %q is not the public log link", logURL)
	}
	resp, err := http.Get(g.URL + strings.TrimPrefix(logURL, "https://glenv.example.test"))
	if err != nil {
		t.Fatal(err)
	}
	log, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	texts = append(texts, string(log))
	if !strings.Contains(texts[0], "not a directory") || !strings.Contains(string(log), "not a directory") {
		t.Fatalf("GitLab and the public log do not say why the deploy failed:\n%q\n%s", texts[0], log)
	}
	for _, text := range texts {
		if strings.Contains(text, g.dataDir) {
			t.Fatalf("a text people outside see holds the data dir %s:\n%s", g.dataDir, text)
		}
	}
}
