package gitlabtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// params merges what Grape merges: the query string, a form body and a
// JSON body, the body winning.
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
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		p.form = form
	case ct == "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(body), ctParams["boundary"]).ReadForm(32 << 20)
		if err != nil {
			return nil, err
		}
		p.form = url.Values(form.Value)
	case ct == "application/json" || bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&p.body); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// lookup returns the raw value of key and whether it was sent. A JSON null
// counts as not sent.
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

func (p *params) has(key string) bool {
	_, ok := p.lookup(key)
	return ok
}

// str returns key as a string, the way Grape coerces scalars to String.
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
// Grape's messages, which it reports joined by ", ".
type grape struct {
	p    *params
	errs []string
}

func (rq *request) grape() *grape { return &grape{p: rq.p} }

func (g *grape) fail(key, what string) { g.errs = append(g.errs, key+" "+what) }

// ok answers 400 with the collected errors, if any.
func (g *grape) ok(rq *request) bool {
	if len(g.errs) == 0 {
		return true
	}
	rq.grapeError(strings.Join(g.errs, ", "))
	return false
}

// requireString is a required String; it reports whether key was sent.
func (g *grape) requireString(key string) (string, bool) {
	v, ok := g.p.str(key)
	if !ok {
		g.fail(key, "is missing")
	}
	return v, ok
}

func (g *grape) optString(key string) (string, bool) { return g.p.str(key) }

// values checks an optional or required string against its allowed values.
func (g *grape) values(key, v string, present bool, allowed ...string) {
	if !present {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	g.fail(key, "does not have a valid value")
}

// absent is Grape's absence validator.
func (g *grape) absent(key, msg string) {
	if g.p.has(key) {
		g.fail(key, msg)
	}
}

func (g *grape) optBool(key string) (val, present bool) {
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

func (g *grape) requireBool(key string) bool {
	if !g.p.has(key) {
		g.fail(key, "is missing")
		return false
	}
	v, _ := g.optBool(key)
	return v
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

func (g *grape) optFloat(key string) (float64, bool) {
	s, ok := g.p.str(key)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		g.fail(key, "is invalid")
		return 0, false
	}
	return f, true
}

// optTime is a Grape DateTime/Time parameter (ISO 8601 and a few of the
// forms Ruby's DateTime.parse accepts).
func (g *grape) optTime(key string) (time.Time, bool) {
	s, ok := g.p.str(key)
	if !ok {
		return time.Time{}, false
	}
	if t, ok := parseDateTime(s); ok {
		return t, true
	}
	g.fail(key, "is invalid")
	return time.Time{}, false
}

func parseDateTime(s string) (time.Time, bool) {
	layouts := []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05Z0700",
		"2006-01-02T15:04:05",
		"2006-01-02 15:04:05",
		"2006-01-02T15:04",
		"2006-01-02",
		"02/01/2006",
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
