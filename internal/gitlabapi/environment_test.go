package gitlabapi

import (
	"strings"
	"testing"
)

// Moved from internal/gitlabtest/slug_test.go with the tier table it checks.
func TestGuessTier(t *testing.T) {
	tests := map[string]string{
		"review/feature-x": "development", "dev": "development", "trunk": "development",
		"test": "testing", "qa": "testing", "acceptance": "testing", "acpt": "testing", "integration": "testing",
		"staging": "staging", "stg": "staging", "pre-prod": "staging", "demo": "staging", "model": "staging",
		"production": "production", "prd": "production", "live": "production",
		"canary": "other", "": "other",
	}
	for name, want := range tests {
		if got := GuessTier(name); got != want {
			t.Errorf("GuessTier(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestEnvironmentNameRule(t *testing.T) {
	tests := map[string]bool{
		"production": true, "review/feature-x": true, "a": true, "${CI_COMMIT_REF_NAME}": true, "with space": true,
		"v1.2_3": true, " ": true, "a/b/c": true,
		"": false, "/review": false, "review/": false, "/": false, "a\nb": false, "name\n": false, "İstanbul": false,
		"a:b": false, "a@b": false,
	}
	for name, ok := range tests {
		if EnvironmentNameRE.MatchString(name) != ok {
			t.Errorf("%q: matches %v, want %v", name, !ok, ok)
		}
	}
}

func TestCheckEnvironment(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) } // counted in characters, not bytes
	tests := []struct {
		name                     string
		envName                  string
		nameTaken, slugTaken     bool
		externalURL, description string
		k8sNamespace, fluxPath   string
		want                     string
	}{
		{name: "valid", envName: "review/a", externalURL: "https://a.example.com", want: `{}`},
		{name: "blank", envName: "", want: `{"name":["can't be blank","` + EnvironmentNameMessage + `"]}`},
		// Spaces are allowed in names, but a name of nothing else is blank.
		{name: "spaces only", envName: "   ", want: `{"name":["can't be blank"]}`},
		{name: "a tab", envName: "\t", want: `{"name":["can't be blank","` + EnvironmentNameMessage + `"]}`},
		{name: "taken", envName: "review/a", nameTaken: true, slugTaken: true,
			want: `{"name":["has already been taken"],"slug":["has already been taken"]}`},
		{name: "too long and badly formed", envName: "/" + strings.Repeat("n", 255),
			want: `{"name":["is too long (maximum is 255 characters)","` + EnvironmentNameMessage + `"]}`},
		{name: "255 characters are fine", envName: strings.Repeat("n", 255), externalURL: "https://" + long(247),
			description: long(10000), want: `{}`},
		{name: "fields too long", envName: "a", externalURL: "https://" + long(248), description: long(10001),
			want: `{"external_url":["is too long (maximum is 255 characters)"],"description":["is too long (maximum is 10000 characters)"]}`},
		{name: "namespace without agent", envName: "a", k8sNamespace: "ns", fluxPath: "f",
			want: `{"kubernetes_namespace":["cannot be set without a cluster agent"]}`},
		{name: "flux without namespace", envName: "a", fluxPath: "f",
			want: `{"flux_resource_path":["cannot be set without a kubernetes namespace"]}`},
		{name: "javascript", envName: "a", externalURL: "javascript:alert(1)",
			want: `{"external_url":["javascript scheme is not allowed"]}`},
		{name: "data and vbscript", envName: "a", externalURL: "data:text/html,x",
			want: `{"external_url":["data scheme is not allowed"]}`},
		{name: "unparsable", envName: "a", externalURL: "http://a b/%zz",
			want: `{"external_url":["URI is invalid"]}`},
		{name: "other schemes are fine", envName: "a", externalURL: "ftp://x", want: `{}`},
	}
	for _, tt := range tests {
		var errs FieldErrors
		CheckEnvironmentName(&errs, tt.envName, tt.nameTaken, tt.slugTaken)
		CheckEnvironmentFields(&errs, tt.externalURL, tt.description, tt.k8sNamespace, tt.fluxPath)
		b, _ := errs.MarshalJSON()
		if string(b) != tt.want {
			t.Errorf("%s: %s\nwant %s", tt.name, b, tt.want)
		}
	}
}

func TestSearchMatchesNamesAndNamesWithinTheirFolder(t *testing.T) {
	tests := []struct {
		name, search string
		want         bool
	}{
		{"review/feature-1", "REVIEW/", true},
		{"review/feature-1", "feature", true}, // within the folder
		{"review/feature-1", "Feat", true},
		{"review/a/feature", "feature", false}, // only the first segment is the folder
		{"review/a/feature", "a/feat", true},
		{"review//feature", "feature", true}, // every slash after the folder goes
		{"feature-1", "feature", true},
		{"my-feature", "feature", false}, // not inside a name
		{"review/review-x", "review-x", true},
		{"ab/ba-x", "ba", true}, // LTRIM strips the folder's characters, then stops at '/'
	}
	for _, tt := range tests {
		if got := SearchMatches(tt.name, tt.search); got != tt.want {
			t.Errorf("SearchMatches(%q, %q) = %v, want %v", tt.name, tt.search, got, tt.want)
		}
	}
}
