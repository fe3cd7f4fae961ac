package gitlabapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Params merges what Grape merges: the query string, a form body and a JSON
// body, the body winning. GitLab clients send all three (client-go and
// python-gitlab JSON, curl forms, everyone queries).
type Params struct {
	body  map[string]any
	form  url.Values
	query url.Values
	// nested are the names Rack reads as an Array or a Hash from a query or
	// form key with brackets (states[]=a, a[b]=c).
	nested map[string]bool
}

// ErrMalformed is a request GitLab refuses before its API sees it, with
// 400 text/plain "Bad Request" (Malformed): a NUL byte or invalid UTF-8 in
// the path or any parameter, a bad %-escape, a JSON body that does not
// parse (lib/gitlab/middleware/handle_malformed_strings.rb).
var ErrMalformed = errors.New("malformed request")

// UnsupportedTypeError is a body whose media type Grape has no parser for:
// GitLab's API declares JSON only (lib/api/api.rb `format :json`), and
// Grape's formatter refuses anything else but forms with 415
// (grape lib/grape/middleware/formatter.rb #read_rack_input).
type UnsupportedTypeError struct{ MediaType string }

func (e *UnsupportedTypeError) Error() string {
	return "The provided content-type '" + e.MediaType + "' is not supported."
}

// ParseParams reads r's path and query and its already-read body: a
// URL-encoded form, a multipart form (its fields; files are left out) or
// JSON (an object gives parameters; anything else none, as in Grape). A
// malformed request is ErrMalformed; a body of another media type, or of
// none, an *UnsupportedTypeError.
func ParseParams(r *http.Request, body []byte) (*Params, error) {
	if !cleanString(r.URL.Path) {
		return nil, ErrMalformed
	}
	query, err := parseForm(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	p := &Params{query: query}
	p.noteNested(query)
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		if p.form, err = parseForm(string(body)); err != nil {
			return nil, err
		}
	case "multipart/form-data":
		if p.form, err = readMultipart(body, ctParams["boundary"]); err != nil || !cleanValues(p.form) {
			return nil, ErrMalformed
		}
	case "application/json":
		if !utf8.Valid(body) {
			return nil, ErrMalformed
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || !cleanJSON(v) {
			return nil, ErrMalformed
		}
		if _, err := dec.Token(); err != io.EOF { // anything after the value
			return nil, ErrMalformed
		}
		p.body, _ = v.(map[string]any)
	default:
		return nil, &UnsupportedTypeError{MediaType: ct}
	}
	p.noteNested(p.form)
	return p, nil
}

// parseForm is a query or form body as Rack parses it, refusing what
// HandleMalformedStrings refuses (Go's url.Query drops a bad pair instead).
func parseForm(s string) (url.Values, error) {
	v, err := url.ParseQuery(s)
	if err != nil || !cleanValues(v) {
		return nil, ErrMalformed
	}
	return v, nil
}

// readMultipart is a multipart form's fields; files are left out. The body
// is in memory already (and bounded): so are its parts, and nothing goes to
// a temporary file.
func readMultipart(body []byte, boundary string) (url.Values, error) {
	form, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(int64(len(body)))
	if err != nil {
		return nil, err
	}
	form.RemoveAll()
	return url.Values(form.Value), nil
}

// noteNested records the names Rack makes an Array or a Hash of.
func (p *Params) noteNested(v url.Values) {
	for k := range v {
		if i := strings.IndexByte(k, '['); i > 0 {
			if p.nested == nil {
				p.nested = map[string]bool{}
			}
			p.nested[k[:i]] = true
		}
	}
}

// cleanString is a string HandleMalformedStrings lets through: valid UTF-8
// without NUL bytes.
func cleanString(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

func cleanValues(v url.Values) bool {
	for k, vs := range v {
		if !cleanString(k) {
			return false
		}
		for _, s := range vs {
			if !cleanString(s) {
				return false
			}
		}
	}
	return true
}

func cleanJSON(v any) bool {
	switch v := v.(type) {
	case string:
		return cleanString(v)
	case map[string]any:
		for k, e := range v {
			if !cleanString(k) || !cleanJSON(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !cleanJSON(e) {
				return false
			}
		}
	}
	return true
}

// TokenParams are the parameters of r's body that can carry a token
// (SecretParams), read without building the rest: what glenv may look at
// before it knows who is calling, so an anonymous body costs about its own
// size (a JSON body's other values stay raw bytes). Values that are not
// strings are left out. A body of another type, or one that does not parse,
// gives none.
func TokenParams(r *http.Request, body []byte) *Params {
	p := &Params{body: map[string]any{}}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded", "multipart/form-data":
		var form url.Values
		if ct == "multipart/form-data" {
			form, _ = readMultipart(body, ctParams["boundary"])
		} else {
			form, _ = url.ParseQuery(string(body))
		}
		for _, k := range SecretParams {
			if vs := form[k]; len(vs) > 0 && cleanString(vs[len(vs)-1]) {
				p.body[k] = vs[len(vs)-1]
			}
		}
	case "application/json":
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			return p
		}
		for _, k := range SecretParams {
			var v string
			if raw, ok := top[k]; ok && json.Unmarshal(raw, &v) == nil && cleanString(v) {
				p.body[k] = v
			}
		}
	}
	return p
}

// RequestHeadOK refuses, as ReadParams would, what can be told from r's
// path, query and headers alone: a malformed path or query (Malformed
// first, as GitLab's middleware runs ahead of Grape), or a body (announced
// by Content-Length, or chunked) of a type ParseParams does not read. It
// answers the refusal itself.
func RequestHeadOK(w http.ResponseWriter, r *http.Request) bool {
	if _, err := parseForm(r.URL.RawQuery); err != nil || !cleanString(r.URL.Path) {
		Malformed(w)
		return false
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody && !ParsesBody(r) {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		unsupportedType(w, &UnsupportedTypeError{MediaType: ct})
		return false
	}
	return true
}

// unsupportedType is Grape's 415 for a body it has no parser for.
func unsupportedType(w http.ResponseWriter, e *UnsupportedTypeError) {
	WriteJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": e.Error()})
}

// ParsesBody says whether ParseParams reads parameters from a body of r's
// Content-Type (the others are Grape's 415).
func ParsesBody(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" || ct == "application/json"
}

// ReadParams is ParseParams that answers GitLab's refusal itself (Refuse);
// ok is false then.
func ReadParams(w http.ResponseWriter, r *http.Request, body []byte) (p *Params, ok bool) {
	p, err := ParseParams(r, body)
	if err != nil {
		Refuse(w, err)
		return nil, false
	}
	return p, true
}

// Refuse answers an error of ParseParams as GitLab does: Grape's 415 for a
// body of another type, Malformed for the rest.
func Refuse(w http.ResponseWriter, err error) {
	if unsupported, ok := errors.AsType[*UnsupportedTypeError](err); ok {
		unsupportedType(w, unsupported)
		return
	}
	Malformed(w)
}

// Lookup returns the raw value of key and whether it was sent; a JSON null
// counts as not sent, as in Grape. Of a repeated query or form key the last
// value counts, as Rack's parse_nested_query keeps it; a key Rack reads as
// an Array or a Hash (states[]=…) is a []any.
func (p *Params) Lookup(key string) (any, bool) {
	if v, ok := p.body[key]; ok && v != nil {
		return v, true
	}
	if p.nested[key] {
		return []any{}, true
	}
	if vs, ok := p.form[key]; ok && len(vs) > 0 {
		return vs[len(vs)-1], true
	}
	if vs, ok := p.query[key]; ok && len(vs) > 0 {
		return vs[len(vs)-1], true
	}
	return nil, false
}

// Compound reports whether key was sent as an Array or a Hash, which no
// String, Integer or Boolean parameter takes: Grape answers "<key> is
// invalid" (grape lib/grape/validations/types/primitive_coercer.rb #reject?,
// and dry-types' coercions refuse them for the others).
func (p *Params) Compound(key string) bool {
	v, _ := p.Lookup(key)
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// Sent reports whether key was sent at all, a JSON null included: what
// Grape's presence-style validators look at (params.key?).
func (p *Params) Sent(key string) bool {
	_, ok := p.body[key]
	return ok || p.Has(key)
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
		out[k] = vs[len(vs)-1:]
	}
	for k, vs := range p.form {
		out[k] = vs[len(vs)-1:]
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
