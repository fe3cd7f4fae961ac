package envapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The golden cases are the contract's oracle. Each file in
// testdata/golden holds one rule of GitLab's Environments API as GitLab's
// own source and specs state it (the "gitlab" field names the file and
// lines), written as the requests a client sends and the answers (status,
// body, headers) GitLab gives. They share no code with glenv or the double:
// both run every case, on every database, and must give GitLab's answer.
//
// A case runs in a project of its own. Its steps are requests or
// fixtures (states a client cannot reach through the API, which each
// target sets up its own way). In paths, query values, headers and
// expected answers:
//
//	{env:NAME}          the id of environment NAME (learnt from answers)
//	{project}           the project's URL-encoded path ({project_path} raw, {project_id} its id)
//	{base}              scheme://host the target answered from
//	{days_ago:N}        now minus N days, ISO 8601 ({days_ahead:N} ahead)
//	{http_date_ago:N}   now minus N hours as an HTTP date ({http_date_ahead:N} ahead)
//	{repeat:C:N}        the character C N times
//	{etag}              the ETag of the last answer that had one
//
// and in expected bodies these stand for any value of their kind:
// "<int>", "<int|null>", "<time>" (GitLab's UTC millisecond format),
// "<string>", "<string|null>", "<any>", and "<re:REGEXP>" (headers take
// "<re:REGEXP>" and "<absent>" too). Objects must have exactly
// the keys written (GitLab's entities leave keys out, and never add one).
type goldenCase struct {
	Rule   string       `json:"rule"`
	GitLab []string     `json:"gitlab"`
	Steps  []goldenStep `json:"steps"`
}

type goldenStep struct {
	Note     string          `json:"note"`
	Fixture  string          `json:"fixture"`
	Env      string          `json:"env"`
	Days     int             `json:"days"`
	Request  *goldenRequest  `json:"request"`
	Response *goldenResponse `json:"response"`
}

type goldenRequest struct {
	Method string            `json:"method"`
	Path   string            `json:"path"` // below /api/v4/projects/:id/
	Query  map[string]string `json:"query"`
	Body   map[string]any    `json:"body"`
	Header map[string]string `json:"header"`
	// As "restricted" sends the request as a caller who may read but not
	// stop the environment the "unstoppable" fixture made; "reporter" and
	// "developer" as a project Reporter (20) and Developer (30). Unset is a
	// Maintainer (40).
	As string `json:"as"`
}

type goldenResponse struct {
	Status int               `json:"status"`
	Body   json.RawMessage   `json:"body"`
	Header map[string]string `json:"header"` // "<absent>": must not be sent
}

// goldenTarget is glenv or the double as the golden runner drives them.
type goldenTarget struct {
	name    string
	url     string
	token   func(as string) string
	project func(t *testing.T) (id int64, path string)
	// fixture sets up what step names in the project, learning ids.
	fixture func(t *testing.T, pid int64, step goldenStep, ids map[string]int64)
}

func loadGoldenCases(t *testing.T) map[string]goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases in testdata/golden: %v", err)
	}
	out := map[string]goldenCase{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c goldenCase
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if c.Rule == "" || len(c.GitLab) == 0 || len(c.Steps) == 0 {
			t.Fatalf("%s: a golden case needs its rule, the GitLab source it comes from and steps", f)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = c
	}
	return out
}

// runGolden runs one case against one target in a fresh project.
func runGolden(t *testing.T, tg goldenTarget, c goldenCase) {
	pid, path := tg.project(t)
	ids := map[string]int64{}
	etag := "" // the ETag of the last answer that had one
	vars := func(s string) string {
		return expand(s, map[string]string{"{project}": url.PathEscape(path), "{project_path}": path,
			"{project_id}": strconv.FormatInt(pid, 10), "{base}": tg.url, "{etag}": etag}, ids)
	}
	for i, st := range c.Steps {
		where := fmt.Sprintf("step %d (%s)", i+1, st.Note)
		if st.Fixture != "" {
			tg.fixture(t, pid, st, ids)
			continue
		}
		if st.Request == nil {
			t.Fatalf("%s: neither a fixture nor a request", where)
		}
		status, header, body := goldenDo(t, tg, st.Request, vars)
		learnIDs(body, ids)
		if st.Response == nil {
			if status >= 300 {
				t.Fatalf("%s: setup request answered %d: %s", where, status, body)
			}
			continue
		}
		if status != st.Response.Status {
			t.Errorf("%s: status %d, want %d; body %s", where, status, st.Response.Status, body)
		}
		for k, want := range st.Response.Header {
			got, present := header[http.CanonicalHeaderKey(k)]
			re, isRE := strings.CutPrefix(want, "<re:")
			switch {
			case want == "<absent>" && present:
				t.Errorf("%s: header %s = %q, GitLab does not send it", where, k, got)
			case isRE && (!present || !regexp.MustCompile(strings.TrimSuffix(re, ">")).MatchString(strings.Join(got, ", "))):
				t.Errorf("%s: header %s = %q, want %s", where, k, strings.Join(got, ", "), want)
			case !isRE && want != "<absent>" && (!present || strings.Join(got, ", ") != vars(want)):
				t.Errorf("%s: header %s\n got %q\nwant %q", where, k, strings.Join(got, ", "), vars(want))
			}
		}
		if v := header.Get("ETag"); v != "" {
			etag = v
		}
		if len(st.Response.Body) > 0 {
			var want, got any
			if err := json.Unmarshal(st.Response.Body, &want); err != nil {
				t.Fatalf("%s: expected body: %v", where, err)
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Errorf("%s: answer is not JSON: %s", where, body)
				continue
			}
			var errs []string
			matchJSON("body", want, got, vars, &errs)
			for _, e := range errs {
				t.Errorf("%s: %s", where, e)
			}
			if len(errs) > 0 {
				t.Logf("%s: whole answer %s", where, body)
			}
		}
	}
}

func goldenDo(t *testing.T, tg goldenTarget, rq *goldenRequest, vars func(string) string) (int, http.Header, []byte) {
	t.Helper()
	q := url.Values{}
	for k, v := range rq.Query {
		q.Set(k, vars(v))
	}
	u := tg.url + "/api/v4/projects/{project}/" + rq.Path
	u = vars(u)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if rq.Body != nil {
		b, _ := json.Marshal(expandAll(rq.Body, vars))
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(rq.Method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("PRIVATE-TOKEN", tg.token(rq.As))
	for k, v := range rq.Header {
		req.Header.Set(k, vars(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func expandAll(v any, vars func(string) string) any {
	switch v := v.(type) {
	case string:
		return vars(v)
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = expandAll(e, vars)
		}
		return out
	}
	return v
}

// learnIDs remembers the ids of the environments an answer shows.
func learnIDs(body []byte, ids map[string]int64) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			name, _ := v["name"].(string)
			if id, ok := v["id"].(float64); ok && name != "" && v["slug"] != nil {
				ids[name] = int64(id)
			}
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
}

var placeholderRE = regexp.MustCompile(`\{(env|days_ago|days_ahead|http_date_ago|http_date_ahead|repeat):([^}]*)\}`)

func expand(s string, fixed map[string]string, ids map[string]int64) string {
	for k, v := range fixed {
		s = strings.ReplaceAll(s, k, v)
	}
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		p := placeholderRE.FindStringSubmatch(m)
		n, _ := strconv.Atoi(p[2])
		switch p[1] {
		case "env":
			if id, ok := ids[p[2]]; ok {
				return strconv.FormatInt(id, 10)
			}
			return "999999999" // an environment that was never created
		case "days_ago":
			return time.Now().AddDate(0, 0, -n).UTC().Format(time.RFC3339)
		case "days_ahead":
			return time.Now().AddDate(0, 0, n).UTC().Format(time.RFC3339)
		case "http_date_ago":
			return time.Now().Add(-time.Duration(n) * time.Hour).UTC().Format(http.TimeFormat)
		case "http_date_ahead":
			return time.Now().Add(time.Duration(n) * time.Hour).UTC().Format(http.TimeFormat)
		default: // repeat:C:N
			c, count, _ := strings.Cut(p[2], ":")
			k, _ := strconv.Atoi(count)
			return strings.Repeat(c, k)
		}
	})
}

// matchJSON compares an answer with GitLab's, placeholders standing for
// values of their kind.
func matchJSON(path string, want, got any, vars func(string) string, errs *[]string) {
	fail := func(format string, a ...any) { *errs = append(*errs, path+": "+fmt.Sprintf(format, a...)) }
	switch w := want.(type) {
	case string:
		if strings.HasPrefix(w, "<") && strings.HasSuffix(w, ">") {
			if !matchKind(w[1:len(w)-1], got) {
				fail("%s, want %s", jsonText(got), w)
			}
			return
		}
		if g, ok := got.(string); !ok || g != vars(w) {
			fail("%s, want %q", jsonText(got), vars(w))
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			fail("%s, want an object", jsonText(got))
			return
		}
		for k, wv := range w {
			gv, has := g[k]
			if !has {
				fail("key %q is missing", k)
				continue
			}
			matchJSON(path+"."+k, wv, gv, vars, errs)
		}
		var extra []string
		for k := range g {
			if _, has := w[k]; !has {
				extra = append(extra, k)
			}
		}
		slices.Sort(extra)
		if len(extra) > 0 {
			fail("keys %q are not in GitLab's answer", extra)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			fail("%s, want %d items", jsonText(got), len(w))
			return
		}
		for i := range w {
			matchJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], vars, errs)
		}
	default:
		if jsonText(want) != jsonText(got) {
			fail("%s, want %s", jsonText(got), jsonText(want))
		}
	}
}

func matchKind(kind string, got any) bool {
	if re, ok := strings.CutPrefix(kind, "re:"); ok {
		s, isString := got.(string)
		return isString && regexp.MustCompile(re).MatchString(s)
	}
	switch kind {
	case "any":
		return true
	case "int":
		f, ok := got.(float64)
		return ok && f == float64(int64(f))
	case "time":
		s, ok := got.(string)
		return ok && apiTimeRE.MatchString(s)
	case "string":
		_, ok := got.(string)
		return ok
	case "string|null":
		_, ok := got.(string)
		return ok || got == nil
	case "int|null":
		return got == nil || matchKind("int", got)
	}
	panic("golden: unknown placeholder <" + kind + ">")
}
