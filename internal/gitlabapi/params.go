package gitlabapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
)

// Params merges what Grape merges: the query string, a form body and a JSON
// body, the body winning. GitLab clients send all three (client-go and
// python-gitlab JSON, curl forms, everyone queries).
type Params struct {
	body  map[string]any
	form  url.Values
	query url.Values
}

// ParseOption widens what ParseParams reads.
type ParseOption int

// Multipart makes ParseParams read multipart/form-data bodies too (their
// fields; files are left out). Without it such a body is ignored.
const Multipart ParseOption = 1

// ParseParams reads r's query and its already-read body: a URL-encoded
// form, a JSON object (by Content-Type, or a body that starts with '{'),
// and with Multipart a multipart form. A body that does not parse is an
// error, which Grape answers with BodyFormatError.
func ParseParams(r *http.Request, body []byte, opts ...ParseOption) (*Params, error) {
	p := &Params{query: r.URL.Query()}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	withMultipart := false
	for _, o := range opts {
		withMultipart = withMultipart || o == Multipart
	}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		p.form = form
	case ct == "multipart/form-data" && withMultipart:
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

// ReadParams is ParseParams that answers Grape's 400 itself when the body
// does not parse; ok is false then.
func ReadParams(w http.ResponseWriter, r *http.Request, body []byte, opts ...ParseOption) (p *Params, ok bool) {
	p, err := ParseParams(r, body, opts...)
	if err != nil {
		BodyFormatError(w)
		return nil, false
	}
	return p, true
}

// Lookup returns the raw value of key and whether it was sent; a JSON null
// counts as not sent, as in Grape.
func (p *Params) Lookup(key string) (any, bool) {
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

// Null reports whether key was sent as a JSON null. Grape keeps such a key
// (its presence check and declared_params look for the key, not a value),
// so the model sees nil: an attribute cleared, a required one blank.
func (p *Params) Null(key string) bool {
	v, ok := p.body[key]
	return ok && v == nil
}

// Has reports whether key was sent.
func (p *Params) Has(key string) bool {
	_, ok := p.Lookup(key)
	return ok
}

// Str returns key coerced to a String the way Grape does.
func (p *Params) Str(key string) (string, bool) {
	v, ok := p.Lookup(key)
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

// Values is Grape's `params` for Link headers: the query, a form body and a
// JSON body (the body winning, as in Lookup) and the route's parameters,
// each as the string a client sent.
func (p *Params) Values(vars map[string]string) url.Values {
	out := url.Values{}
	for k, vs := range p.query {
		out[k] = vs[:1]
	}
	for k, vs := range p.form {
		out[k] = vs[:1]
	}
	for k := range p.body {
		if v, ok := p.Str(k); ok {
			out.Set(k, v)
		}
	}
	for k, v := range vars {
		out.Set(k, v)
	}
	return out
}
