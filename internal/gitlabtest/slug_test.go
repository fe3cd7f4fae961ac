package gitlabtest

import (
	"encoding/json"
	"os"
	"testing"
)

// testdata/environment_slug_vectors.json is a copy of
// /work/shared/gitlab/environment_slug_vectors.json.
func TestEnvironmentSlugVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/environment_slug_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	type vector struct {
		Name *string `json:"name"`
		Slug string  `json:"slug"`
	}
	var v struct {
		Mocked struct {
			Digest string   `json:"mocked_hexdigest"`
			Cases  []vector `json:"cases"`
		} `json:"spec_vectors_with_mocked_hash"`
		Real struct {
			Cases []vector `json:"cases"`
		} `json:"computed_real_hash_vectors"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Mocked.Cases) == 0 || len(v.Real.Cases) == 0 {
		t.Fatal("no vectors read")
	}
	name := func(n *string) string {
		if n == nil {
			return "" // Ruby's nil.to_s
		}
		return *n
	}
	for _, c := range v.Mocked.Cases {
		if got := environmentSlugWith(name(c.Name), func(string) string { return v.Mocked.Digest }); got != c.Slug {
			t.Errorf("GitLab spec (stubbed digest): slug(%q) = %q, want %q", name(c.Name), got, c.Slug)
		}
	}
	for _, c := range v.Real.Cases {
		if got := environmentSlug(name(c.Name)); got != c.Slug {
			t.Errorf("slug(%q) = %q, want %q", name(c.Name), got, c.Slug)
		}
	}
}

func TestGuessTier(t *testing.T) {
	tests := map[string]string{
		"review/feature-x": "development", "dev": "development", "trunk": "development",
		"test": "testing", "qa": "testing", "acceptance": "testing", "acpt": "testing", "integration": "testing",
		"staging": "staging", "stg": "staging", "pre-prod": "staging", "demo": "staging", "model": "staging",
		"production": "production", "prd": "production", "live": "production",
		"canary": "other", "": "other",
	}
	for name, want := range tests {
		if got := guessTier(name); got != want {
			t.Errorf("guessTier(%q) = %q, want %q", name, got, want)
		}
	}
}
