package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// The receiver and ParseEvent validate with gjson, which does it in one
// pass; a body it accepts must be one encoding/json accepts, and the other
// way round, or a 202 would be followed by "payload not understood".
func FuzzValidatorAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{} {}`, `{"a":"\u00"}`, `{"a":"` + "\x01" + `"}`, `{"a":-01}`, `{"a":1.}`,
		`{"a":1e}`, `[1,]`, `{"a":tru}`, " \t{\"a\":[null,true,false,-0.5e+3]}\n", `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `"x"`, ``} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"push.json", "merge_request_open.json"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := gjson.ValidBytes(body), json.Valid(body); got != want {
			t.Fatalf("gjson.ValidBytes(%q) = %v, json.Valid = %v", body, got, want)
		}
	})
}

// readPush reads what encoding/json reads into pushFields, and names the
// same field when one is mistyped.
func TestReadPushReadsAsEncodingJSONDoes(t *testing.T) {
	base := `"ref":"refs/heads/x","before":"0000","after":"1111"`
	for _, body := range []string{
		`{` + base + `,"project_id":7,"project":{"id":7,"default_branch":"main"}}`,
		`{` + base + `,"project_id":null,"project":{"id":9}}`,
		`{` + base + `}`,
		`{` + base + `,"project":null}`,
		`{"ref":5,"before":"0","after":"1"}`,
		`{"ref":["a"],"before":"0","after":"1"}`,
		`{"ref":{"a":1},"before":"0","after":"1"}`,
		`{"ref":true,"before":"0","after":"1"}`,
		`{` + base + `,"project_id":1.5}`,
		`{` + base + `,"project_id":1e3}`,
		`{` + base + `,"project_id":"7"}`,
		`{` + base + `,"project_id":99999999999999999999}`,
		`{` + base + `,"project_id":-3}`,
		`{` + base + `,"project":"group/app"}`,
		`{` + base + `,"project":[1]}`,
		`{` + base + `,"project":{"id":"7"}}`,
		`{` + base + `,"project":{"default_branch":false}}`,
		`{"ref":"refs/heads/caf\u00e9 \"x\"","before":null,"after":"1"}`,
	} {
		t.Run(body, func(t *testing.T) {
			got, gotMsg := readPush([]byte(body))
			var want pushFields
			wantMsg := decodeLenient([]byte(body), &want)
			field := func(msg string) string { f, _, _ := strings.Cut(msg, ":"); return f }
			switch {
			case (gotMsg == "") != (wantMsg == ""), field(gotMsg) != field(wantMsg):
				t.Fatalf("readPush says %q, encoding/json %q", gotMsg, wantMsg)
			case gotMsg == "" && got != want:
				t.Fatalf("readPush read %+v, encoding/json %+v", got, want)
			}
		})
	}
}
