package gitlabapi

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestReadEnvironmentAttrs(t *testing.T) {
	g := queryParams(t, "external_url=%20https://x%20&tier=staging&cluster_agent_id=3&kubernetes_namespace=ns&"+
		"flux_resource_path=f&description=&auto_stop_setting=with_action").Grape()
	a := ReadEnvironmentAttrs(g)
	want := EnvironmentAttrs{ExternalURL: " https://x ", Tier: "staging", AutoStopSetting: "with_action",
		KubernetesNamespace: "ns", FluxResourcePath: "f", HasExternalURL: true, HasTier: true, HasDescription: true,
		HasAutoStopSetting: true, ClusterAgent: true}
	if a != want || g.Failed() != "" {
		t.Errorf("attrs %+v, failed %q", a, g.Failed())
	}
	ext, tier, desc := "old", "old", "old"
	a.Apply("review/a", &ext, &tier, &desc)
	if ext != " https://x " || tier != "staging" || desc != "" {
		t.Errorf("applied: %q %q %q; want external_url as sent (no strip in the model)", ext, tier, desc)
	}

	g = queryParams(t, "name=renamed").Grape()
	if a := ReadEnvironmentAttrs(g); a != (EnvironmentAttrs{}) || g.Failed() != "" {
		t.Errorf("nothing sent: %+v, failed %q", a, g.Failed())
	} else if a.Apply("review/a", &ext, &tier, &desc); ext != " https://x " || tier != "staging" || desc != "" {
		t.Errorf("nothing sent changed %q %q %q", ext, tier, desc)
	}

	// JSON nulls clear external_url and description and guess the tier
	// again; blank namespaces are nullified; null auto_stop_setting and
	// name are not attributes that change.
	r := httptest.NewRequest("PUT", "/", nil)
	r.Header.Set("Content-Type", "application/json")
	p, err := ParseParams(r, []byte(`{"external_url":null,"description":null,"tier":null,"kubernetes_namespace":" ",`+
		`"flux_resource_path":"","auto_stop_setting":null}`))
	if err != nil {
		t.Fatal(err)
	}
	g = p.Grape()
	a = ReadEnvironmentAttrs(g)
	if want := (EnvironmentAttrs{HasExternalURL: true, HasDescription: true, GuessTier: true}); a != want || g.Failed() != "" {
		t.Errorf("nulls: %+v, failed %q", a, g.Failed())
	}
	ext, tier, desc = "https://x", "other", "old"
	if a.Apply("review/a", &ext, &tier, &desc); ext != "" || tier != "development" || desc != "" {
		t.Errorf("nulls applied: %q %q %q", ext, tier, desc)
	}
	if ReadEnvironmentName(g); g.Failed() != "name is missing" {
		t.Errorf("no name: failed %q, want name is missing", g.Failed())
	}
	if p, err = ParseParams(r, []byte(`{"name":null}`)); err != nil {
		t.Fatal(err)
	}
	if g = p.Grape(); ReadEnvironmentName(g) != "" || g.Failed() != "" {
		t.Errorf("a null name is sent (Grape's presence check looks for the key): failed %q", g.Failed())
	}

	g = queryParams(t, "slug=x&tier=prod&cluster_agent_id=x&auto_stop_setting=never").Grape()
	ReadEnvironmentAttrs(g)
	if want := "slug is automatically generated and cannot be changed, tier does not have a valid value, " +
		"cluster_agent_id is invalid, auto_stop_setting does not have a valid value"; g.Failed() != want {
		t.Errorf("failed %q\nwant   %q", g.Failed(), want)
	}
}

func TestReadEnvironmentFilter(t *testing.T) {
	tests := []struct {
		query  string
		want   EnvironmentFilter
		failed string
	}{
		{"", EnvironmentFilter{}, ""},
		{"name=prod&states=stopped", EnvironmentFilter{Name: "prod", States: "stopped", HasStates: true}, ""},
		{"search=rev", EnvironmentFilter{Search: "rev"}, ""},
		{"name=&search=", EnvironmentFilter{}, "name, search cannot be used together"},
		{"states=gone&name=a&search=b", EnvironmentFilter{Name: "a", Search: "b", States: "gone", HasStates: true},
			"states does not have a valid value, name, search cannot be used together"},
	}
	for _, tt := range tests {
		g := queryParams(t, tt.query).Grape()
		if got := ReadEnvironmentFilter(g); got != tt.want || g.Failed() != tt.failed {
			t.Errorf("%q: %+v %q", tt.query, got, g.Failed())
		}
	}
}

func TestCheckStaleBefore(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		before time.Time
		ok     bool
	}{
		{now.Add(-7 * 24 * time.Hour), true},
		{now.Add(-7*24*time.Hour + time.Nanosecond), false},
		{now.AddDate(-10, 0, 0), true},
		{now.AddDate(-10, 0, 0).Add(-time.Nanosecond), false},
		{now.AddDate(-1, 0, 0), true},
		{now, false},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		if CheckStaleBefore(w, tt.before, now) != tt.ok {
			t.Errorf("%v: want %v", tt.before, tt.ok)
		}
		if want := map[bool]string{true: "", false: `{"message":"400 Bad request - Invalid Date"}`}[tt.ok]; w.Body.String() != want {
			t.Errorf("%v: answered %s", tt.before, w.Body)
		}
	}
	g := queryParams(t, "").Grape()
	if before := ReadStaleBefore(g); !before.IsZero() || g.Failed() != "before is missing" {
		t.Errorf("missing before: %v %q", before, g.Failed())
	}
}

func TestReviewApps(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		query  string
		want   ReviewApps // after Defaults, has* left out
		failed string
	}{
		{"", ReviewApps{Before: now.Add(-30 * 24 * time.Hour), Limit: 100, DryRun: true}, ""},
		{"before=2025-01-01&limit=1000&dry_run=false", ReviewApps{Before: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 1000}, ""},
		{"limit=1&dry_run=true", ReviewApps{Before: now.Add(-30 * 24 * time.Hour), Limit: 1, DryRun: true}, ""},
		{"limit=0", ReviewApps{}, "limit does not have a valid value"},
		{"limit=1001", ReviewApps{}, "limit does not have a valid value"},
		{"before=x&limit=x&dry_run=x", ReviewApps{}, "before is invalid, limit is invalid, dry_run is invalid"},
	}
	for _, tt := range tests {
		g := queryParams(t, tt.query).Grape()
		r := ReadReviewApps(g)
		if g.Failed() != tt.failed {
			t.Errorf("%q: failed %q, want %q", tt.query, g.Failed(), tt.failed)
			continue
		}
		if tt.failed != "" {
			continue
		}
		got := r.Defaults(now)
		if !got.Before.Equal(tt.want.Before) || got.Limit != tt.want.Limit || got.DryRun != tt.want.DryRun {
			t.Errorf("%q: %+v, want %+v", tt.query, got, tt.want)
		}
	}
}
