package slug

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

var slugRE = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

// vectors mirrors gitlab/environment_slug_vectors.json (copied to testdata).
type vectors struct {
	Spec struct {
		MockedHexdigest string `json:"mocked_hexdigest"`
		Cases           []struct {
			Name *string `json:"name"` // null in one case: Ruby's nil.to_s is ""
			Slug string  `json:"slug"`
		} `json:"cases"`
	} `json:"spec_vectors_with_mocked_hash"`
	Real struct {
		Cases []struct {
			Name string `json:"name"`
			Slug string `json:"slug"`
		} `json:"cases"`
	} `json:"computed_real_hash_vectors"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/environment_slug_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Spec.Cases) == 0 || len(v.Real.Cases) == 0 || v.Spec.MockedHexdigest == "" {
		t.Fatal("vector file layout changed: no cases found")
	}
	return v
}

// GitLab's spec stubs the digest, so these run through generate with the
// same stub; the suffix of "a"*64 must come out as the file's "q517sa".
func TestEnvironmentGitLabSpecVectors(t *testing.T) {
	v := loadVectors(t)
	stub := func(string) string { return v.Spec.MockedHexdigest }
	for _, c := range v.Spec.Cases {
		name := ""
		if c.Name != nil {
			name = *c.Name
		}
		if got := generate(name, stub); got != c.Slug {
			t.Errorf("generate(%q) with stubbed digest = %q, want %q", name, got, c.Slug)
		}
	}
}

func TestEnvironmentRealHashVectors(t *testing.T) {
	for _, c := range loadVectors(t).Real.Cases {
		if got := Environment(c.Name); got != c.Slug {
			t.Errorf("Environment(%q) = %q, want %q", c.Name, got, c.Slug)
		}
	}
}

func TestEnvironmentUnusualNames(t *testing.T) {
	tests := []struct {
		name, wantPrefix string
	}{
		{"feature/ÜBER-long-ünïcode-branch-name-with-many-words", "feature-ber-long-"},
		{"emoji/🚀-launch", "emoji-launch-"},
		{"🚀", "env-"},
		{"İstanbul", "i-stanbul-"}, // Ruby downcases 'İ' to "i" + U+0307
		{"\u212Aelvin", "kelvin-"}, // KELVIN SIGN downcases to ASCII 'k'
		{"日本語ブランチ", "env-"},
		{"---", "env-"},
		{"env-", "env"},
		{"UPPER/" + strings.Repeat("x", 300), "upper-xxxxxxxxxxx-"},
		{"\xff\xfeinvalid-utf8", "env-invalid-utf8-"},
	}
	for _, tt := range tests {
		got := Environment(tt.name)
		if !strings.HasPrefix(got, tt.wantPrefix) {
			t.Errorf("Environment(%q) = %q, want prefix %q", tt.name, got, tt.wantPrefix)
		}
		checkSlug(t, tt.name, got)
	}
}

func checkSlug(t *testing.T, name, got string) {
	t.Helper()
	if !slugRE.MatchString(got) || len(got) > MaxEnvironmentLen || strings.Contains(got, "--") {
		t.Errorf("Environment(%q) = %q: not a valid slug (pattern, ≤24 bytes, no \"--\")", name, got)
	}
	if again := Environment(name); again != got {
		t.Errorf("Environment(%q) not deterministic: %q then %q", name, got, again)
	}
}

func FuzzEnvironment(f *testing.F) {
	for _, s := range []string{"", "main", "review/1-foo", "feature/ÜBER-ünïcode", "🚀", "İ", "--a--", "9", strings.Repeat("a-", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkSlug(t, name, Environment(name))
	})
}
