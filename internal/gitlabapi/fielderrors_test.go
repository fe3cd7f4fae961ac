package gitlabapi

import (
	"encoding/json"
	"testing"
)

func TestFieldErrors(t *testing.T) {
	tests := []struct {
		name    string
		add     [][2]string
		json    string
		inspect string
	}{
		{"none", nil, `{}`, `{}`},
		{"validation order, not alphabetical", [][2]string{{"name", "can't be blank"}, {"external_url", "URI is invalid"}, {"name", "is too long"}},
			`{"name":["can't be blank","is too long"],"external_url":["URI is invalid"]}`,
			`{:name=>["can't be blank", "is too long"], :external_url=>["URI is invalid"]}`},
		{"quotes escaped", [][2]string{{"status", `cannot transition via "run"`}},
			`{"status":["cannot transition via \"run\""]}`, `{:status=>["cannot transition via \"run\""]}`},
	}
	for _, tt := range tests {
		var e FieldErrors
		for _, a := range tt.add {
			e.Add(a[0], a[1])
		}
		if e.Empty() != (len(tt.add) == 0) {
			t.Errorf("%s: Empty = %v", tt.name, e.Empty())
		}
		b, err := json.Marshal(e)
		if err != nil || string(b) != tt.json {
			t.Errorf("%s: JSON %s %v, want %s", tt.name, b, err, tt.json)
		}
		if got := e.RubyInspect(); got != tt.inspect {
			t.Errorf("%s: inspect %s, want %s", tt.name, got, tt.inspect)
		}
	}
}
