package envapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// params merges what Grape merges: the query string, a form body and a JSON
// body, the body winning. GitLab clients send all three (client-go and
// python-gitlab JSON, curl forms, everyone queries).
type params struct {
	body  map[string]any
	form  url.Values
	query url.Values
}

func parseParams(r *http.Request, body []byte) (*params, error) {
	p := &params{query: r.URL.Query()}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		p.form = form
	case ct == "application/json" || bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&p.body); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// lookup returns the raw value of key and whether it was sent; a JSON null
// counts as not sent, as in Grape.
func (p *params) lookup(key string) (any, bool) {
	if v, ok := p.body[key]; ok && v != nil {
		return v, true
	}
	if vs, ok := p.form[key]; ok && len(vs) > 0 {
		return vs[0], true
	}
	if vs, ok := p.query[key]; ok && len(vs) > 0 {
		return vs[0], true
	}
	return nil, false
}

// str returns key coerced to a String the way Grape does.
func (p *params) str(key string) (string, bool) {
	v, ok := p.lookup(key)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	default:
		return fmt.Sprint(v), true
	}
}

// grape validates declared parameters in declaration order and collects
// Grape's messages, which GitLab reports joined by ", " in {"error": …}.
type grape struct {
	p    *params
	errs []string
}

func (g *grape) fail(key, what string) { g.errs = append(g.errs, key+" "+what) }

// failed returns Grape's error message, or "" when every parameter passed.
func (g *grape) failed() string { return strings.Join(g.errs, ", ") }

func (g *grape) optString(key string) (string, bool) { return g.p.str(key) }

func (g *grape) requireString(key string) (string, bool) {
	v, ok := g.p.str(key)
	if !ok {
		g.fail(key, "is missing")
	}
	return v, ok
}

// values is Grape's `values:` check on a string that was sent.
func (g *grape) values(key, v string, sent bool, allowed ...string) {
	if !sent {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	g.fail(key, "does not have a valid value")
}

// absent is Grape's absence validator (GitLab uses it to refuse `slug`).
func (g *grape) absent(key, msg string) {
	if _, sent := g.p.lookup(key); sent {
		g.fail(key, msg)
	}
}

func (g *grape) optBool(key string) (val, sent bool) {
	s, ok := g.p.str(key)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true", "1", "t", "yes", "y", "on":
		return true, true
	case "false", "0", "f", "no", "n", "off":
		return false, true
	}
	g.fail(key, "is invalid")
	return false, false
}

func (g *grape) optInt(key string) (int64, bool) {
	s, ok := g.p.str(key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		g.fail(key, "is invalid")
		return 0, false
	}
	return n, true
}

// optTime is a Grape Time/DateTime parameter: ISO 8601 and the common forms
// Ruby's DateTime.parse accepts.
func (g *grape) optTime(key string) (time.Time, bool) {
	s, ok := g.p.str(key)
	if !ok {
		return time.Time{}, false
	}
	layouts := []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02 15:04:05",
		"2006-01-02T15:04", "2006-01-02", "02/01/2006"}
	for _, l := range layouts {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return t.UTC(), true
		}
	}
	g.fail(key, "is invalid")
	return time.Time{}, false
}
