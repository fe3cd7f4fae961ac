package gitlabapi

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func queryParams(t *testing.T, q string) *Params {
	t.Helper()
	r := httptest.NewRequest("GET", "/?"+q, nil)
	p, err := ParseParams(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGrapeMessages declares parameters the way endpoints do and checks the
// joined message Grape answers with.
func TestGrapeMessages(t *testing.T) {
	declare := func(g *Grape) {
		g.RequireString("name")
		g.Absent("slug", "is automatically generated and cannot be changed")
		tier, hasTier := g.OptString("tier")
		g.Values("tier", tier, hasTier, "production", "other")
		g.OptInt("limit")
		g.OptBool("dry_run")
		g.OptFloat("coverage")
		g.OptTime("before")
	}
	tests := []struct{ query, want string }{
		{"name=a", ""},
		{"name=a&tier=other&limit=%205%20&dry_run=YES&coverage=1.5&before=2025-01-02", ""},
		{"", "name is missing"},
		{"name=a&slug=b", "slug is automatically generated and cannot be changed"},
		{"name=a&tier=nope", "tier does not have a valid value"},
		{"name=a&tier=", "tier does not have a valid value"},
		{"name=a&limit=1.5", "limit is invalid"},
		{"name=a&limit=&dry_run=", ""}, // an empty Integer or Boolean is no value
		{"name=a&dry_run=tRuE", "dry_run is invalid"},
		{"name=a&dry_run=maybe", "dry_run is invalid"},
		{"name=a&coverage=x", "coverage is invalid"},
		{"name=a&before=yesterday", "before is invalid"},
		{"slug=&tier=x&limit=x&dry_run=x&coverage=x&before=x",
			"name is missing, slug is automatically generated and cannot be changed, tier does not have a valid value, " +
				"limit is invalid, dry_run is invalid, coverage is invalid, before is invalid"},
	}
	for _, tt := range tests {
		g := queryParams(t, tt.query).Grape()
		declare(g)
		if got := g.Failed(); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.query, got, tt.want)
		}
		w := httptest.NewRecorder()
		if ok := g.OK(w); ok != (tt.want == "") {
			t.Errorf("%q: OK = %v", tt.query, ok)
		}
		if tt.want != "" && (w.Code != 400 || w.Body.String() != `{"error":"`+tt.want+`"}`) {
			t.Errorf("%q: answered %d %s", tt.query, w.Code, w.Body)
		}
	}
}

func TestOptBool(t *testing.T) {
	tests := []struct {
		value     string
		val, sent bool
		failed    bool
	}{
		{"true", true, true, false}, {"1", true, true, false}, {"T", true, true, false}, {"yes", true, true, false},
		{"y", true, true, false}, {"On", true, true, false},
		{"false", false, true, false}, {"0", false, true, false}, {"f", false, true, false}, {"NO", false, true, false},
		{"n", false, true, false}, {"off", false, true, false}, {"True", true, true, false}, {"FALSE", false, true, false},
		// dry-types lists three cases of each word, no others.
		{"tRuE", false, false, true}, {"oN", false, false, true}, {"YeS", false, false, true},
		// Grape takes an empty string for no value.
		{"", false, false, false},
		{"2", false, false, true}, {"maybe", false, false, true}, {" true", false, false, true},
	}
	for _, tt := range tests {
		g := queryParams(t, "b="+url.QueryEscape(tt.value)).Grape()
		val, sent := g.OptBool("b")
		if val != tt.val || sent != tt.sent || (g.Failed() != "") != tt.failed {
			t.Errorf("%q: %v %v failed %q", tt.value, val, sent, g.Failed())
		}
	}
	g := queryParams(t, "").Grape()
	if val, sent := g.OptBool("b"); val || sent || g.Failed() != "" {
		t.Errorf("missing: %v %v %q", val, sent, g.Failed())
	}
}

func TestRequireBool(t *testing.T) {
	for _, tt := range []struct {
		query, failed string
		val           bool
	}{{"tag=true", "", true}, {"tag=no", "", false}, {"", "tag is missing", false}, {"tag=x", "tag is invalid", false}} {
		g := queryParams(t, tt.query).Grape()
		if val := g.RequireBool("tag"); val != tt.val || g.Failed() != tt.failed {
			t.Errorf("%q: %v %q", tt.query, val, g.Failed())
		}
	}
}

func TestOptTimeForms(t *testing.T) {
	tests := []struct{ value, want string }{
		{"2025-03-01T12:30:45.123Z", "2025-03-01T12:30:45.123Z"},
		{"2025-03-01T12:30:45+02:00", "2025-03-01T10:30:45Z"},
		{"2025-03-01T12:30:45+0200", "2025-03-01T10:30:45Z"},
		{"2025-03-01T12:30:45", "2025-03-01T12:30:45Z"},
		{"2025-03-01 12:30:45", "2025-03-01T12:30:45Z"},
		{"2025-03-01T12:30", "2025-03-01T12:30:00Z"},
		{" 2025-03-01 ", "2025-03-01T00:00:00Z"},
		{"01/03/2025", "2025-03-01T00:00:00Z"}, // day first
		{"2025-13-01", ""},
		{"March 1st", ""},
	}
	for _, tt := range tests {
		g := queryParams(t, "at="+url.QueryEscape(tt.value)).Grape()
		got, ok := g.OptTime("at")
		if tt.want == "" {
			if ok || g.Failed() != "at is invalid" {
				t.Errorf("%q: %v %v %q", tt.value, got, ok, g.Failed())
			}
			continue
		}
		if !ok || got.Location() != time.UTC || got.Format(time.RFC3339Nano) != tt.want {
			t.Errorf("%q: %v %v, want %s", tt.value, got, ok, tt.want)
		}
	}
}

func TestRequireTime(t *testing.T) {
	for _, tt := range []struct{ query, failed string }{
		{"before=2025-01-01", ""}, {"", "before is missing"}, {"before=x", "before is invalid"}, {"before=", "before is invalid"},
	} {
		g := queryParams(t, tt.query).Grape()
		g.RequireTime("before")
		if g.Failed() != tt.failed {
			t.Errorf("%q: %q, want %q", tt.query, g.Failed(), tt.failed)
		}
	}
}

func TestPathInt(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int64
		ok    bool
	}{{"42", 42, true}, {"-1", -1, true}, {"x", 0, false}, {"4.2", 0, false}, {"", 0, false},
		// Ruby's Integer has no bound: valid, and nothing has that id.
		{"99999999999999999999", NoSuchID, true}, {"-99999999999999999999", NoSuchID, true},
		// Ruby's Integer("1_0", 10) is 10; an underscore must stand between digits.
		{"1_0", 10, true}, {"1_000_000", 1000000, true}, {"_10", 0, false}, {"10_", 0, false}, {"1__0", 0, false}} {
		w := httptest.NewRecorder()
		got, ok := PathInt(w, map[string]string{"environment_id": tt.value}, "environment_id")
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: %d %v", tt.value, got, ok)
		}
		if !ok && (w.Code != 400 || w.Body.String() != `{"error":"environment_id is invalid"}`) {
			t.Errorf("%q: answered %d %s", tt.value, w.Code, w.Body)
		}
	}
}
