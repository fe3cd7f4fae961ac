package gitlabapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseParams(t *testing.T) {
	const multipartBody = "--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nfrom-multipart\r\n--B--\r\n"
	tests := []struct {
		name        string
		query       string
		ctype, body string
		opts        []ParseOption
		key         string
		want        string // "" with sent false: not sent
		sent        bool
		wantErr     bool
	}{
		{name: "query only", query: "name=q", key: "name", want: "q", sent: true},
		{name: "form wins over query", query: "name=q", ctype: "application/x-www-form-urlencoded", body: "name=f", key: "name", want: "f", sent: true},
		{name: "JSON wins over query", query: "name=q", ctype: "application/json", body: `{"name":"j"}`, key: "name", want: "j", sent: true},
		{name: "JSON without content type is sniffed", ctype: "text/plain", body: ` {"name":"j"}`, key: "name", want: "j", sent: true},
		{name: "JSON null is not sent, query shows", query: "name=q", ctype: "application/json", body: `{"name":null}`, key: "name", want: "q", sent: true},
		{name: "JSON null alone is not sent", ctype: "application/json", body: `{"name":null}`, key: "name"},
		{name: "blank body is no body", query: "name=q", ctype: "application/json", body: " \n", key: "name", want: "q", sent: true},
		{name: "first of repeated values", query: "name=a&name=b", key: "name", want: "a", sent: true},
		{name: "empty value is sent", query: "name=", key: "name", want: "", sent: true},
		{name: "multipart read with the option", ctype: "multipart/form-data; boundary=B", body: multipartBody, opts: []ParseOption{Multipart}, key: "name", want: "from-multipart", sent: true},
		{name: "multipart ignored without it", ctype: "multipart/form-data; boundary=B", body: multipartBody, key: "name"},
		{name: "broken multipart with the option", ctype: "multipart/form-data; boundary=X", body: multipartBody, opts: []ParseOption{Multipart}, wantErr: true},
		{name: "broken JSON", ctype: "application/json", body: `{"name":`, wantErr: true},
		{name: "JSON that is not an object", ctype: "application/json", body: `[1]`, wantErr: true},
		{name: "broken form", ctype: "application/x-www-form-urlencoded", body: "name=%zz", wantErr: true},
		{name: "other bodies are ignored", query: "name=q", ctype: "text/plain", body: "name=x", key: "name", want: "q", sent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v4/x?"+tt.query, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.ctype)
			p, err := ParseParams(r, []byte(tt.body), tt.opts...)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, sent := p.Str(tt.key)
			if got != tt.want || sent != tt.sent || p.Has(tt.key) != tt.sent {
				t.Errorf("Str(%q) = %q, %v; want %q, %v", tt.key, got, sent, tt.want, tt.sent)
			}
		})
	}
}

func TestReadParamsAnswersBodyFormatError(t *testing.T) {
	r := httptest.NewRequest("POST", "/api/v4/x", nil)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	if _, ok := ReadParams(w, r, []byte(`{`)); ok {
		t.Fatal("ok for a broken body")
	}
	if w.Code != 400 || w.Body.String() != `{"error":"message body does not match declared format"}` {
		t.Errorf("answer %d %s", w.Code, w.Body)
	}
}

// Str coerces JSON scalars as Grape coerces them to String.
func TestStrCoercion(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Content-Type", "application/json")
	p, err := ParseParams(r, []byte(`{"n":12.50,"big":12345678901234567890,"t":true,"f":false,"s":"x","o":{"a":1},"l":[1,"b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"n": "12.50", "big": "12345678901234567890", "t": "true", "f": "false", "s": "x",
		"o": "map[a:1]", "l": "[1 b]",
	} {
		if got, _ := p.Str(key); got != want {
			t.Errorf("Str(%q) = %q, want %q", key, got, want)
		}
	}
}
