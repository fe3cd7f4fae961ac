package slug

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func TestHostIsOneDNSLabel(t *testing.T) {
	longest := strings.Repeat("z", MaxIntegrationNameLen)
	names := []string{
		"main",
		"feature/ÜBER-long-ünïcode-branch-name-with-many-words",
		"emoji/🚀🔥-release",
		strings.Repeat("very-long-branch-name/", 20),
		"mr-12345",
		"",
	}
	for _, name := range names {
		for _, integ := range []string{"a", "shop", "a--b", longest} {
			envSlug := Environment(name)
			h := Host(envSlug, integ)
			if len(h) > 62 || !dnsLabelRE.MatchString(h) {
				t.Errorf("Host(%q, %q) = %q (%d bytes): not a DNS label of ≤62 bytes", envSlug, integ, h, len(h))
			}
			gotSlug, gotInteg, ok := ParseHost(h)
			if !ok || gotSlug != envSlug || gotInteg != integ {
				t.Errorf("ParseHost(%q) = %q, %q, %v; want %q, %q, true", h, gotSlug, gotInteg, ok, envSlug, integ)
			}
		}
	}
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		label, slug, integ string
		ok                 bool
	}{
		{"main--shop", "main", "shop", true},
		{"Main--Shop", "main", "shop", true}, // DNS is case-insensitive
		{"review-1-foo-q517sa--a--b", "review-1-foo-q517sa", "a--b", true},
		{"main", "", "", false},
		{"main--", "", "", false},
		{"--shop", "", "", false},
		{"a---b", "", "", false}, // "a" + "-b": integration starts with '-'
		{"1main--shop", "", "", false},
		{"main--shop-", "", "", false},
		{"main--my_shop", "", "", false},
		{strings.Repeat("a", 25) + "--shop", "", "", false},
		{"main--" + strings.Repeat("s", 37), "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		s, i, ok := ParseHost(tt.label)
		if s != tt.slug || i != tt.integ || ok != tt.ok {
			t.Errorf("ParseHost(%q) = %q, %q, %v; want %q, %q, %v", tt.label, s, i, ok, tt.slug, tt.integ, tt.ok)
		}
	}
}

// Slugs that needed a suffix differ only in 6 base-36 characters, so two
// names can collide (about n²/2·36⁶); this pins that the generated set below,
// with shared 17-character prefixes, does not, and that clean names never
// collide with each other.
func TestDistinctNamesGiveDistinctHosts(t *testing.T) {
	seen := make(map[string]string, 10000)
	for i := range 10000 {
		var name string
		switch i % 5 {
		case 0:
			name = fmt.Sprintf("feature/JIRA-%d-improve-the-checkout-page", i)
		case 1:
			name = fmt.Sprintf("fix-%d", i)
		case 2:
			name = fmt.Sprintf("mr-%d", i)
		case 3:
			name = fmt.Sprintf("user/ünïcode-%d-🚀", i)
		default:
			name = fmt.Sprintf("Release/%d.%d.%d", i/100, i/10%10, i%10)
		}
		h := Host(Environment(name), "shop")
		if prev, dup := seen[h]; dup {
			t.Fatalf("names %q and %q share host %q", prev, name, h)
		}
		seen[h] = name
		if len(h) > 62 || !dnsLabelRE.MatchString(h) {
			t.Fatalf("Host for %q = %q: not a DNS label of ≤62 bytes", name, h)
		}
	}
}

func FuzzHostRoundTrip(f *testing.F) {
	f.Add("feature/x", "shop")
	f.Add("🚀", "a--b")
	f.Fuzz(func(t *testing.T, name, integ string) {
		if ValidIntegrationName(integ) != nil {
			return
		}
		h := Host(Environment(name), integ)
		if len(h) > 62 || !dnsLabelRE.MatchString(h) {
			t.Fatalf("Host = %q: not a DNS label of ≤62 bytes", h)
		}
		s, i, ok := ParseHost(h)
		if !ok || s != Environment(name) || i != integ {
			t.Fatalf("ParseHost(%q) = %q, %q, %v", h, s, i, ok)
		}
	})
}

func TestValidIntegrationName(t *testing.T) {
	valid := []string{"a", "0", "shop", "my-app", "a--b", "9lives", strings.Repeat("x", 36)}
	for _, n := range valid {
		if err := ValidIntegrationName(n); err != nil {
			t.Errorf("ValidIntegrationName(%q) = %v, want nil", n, err)
		}
	}
	invalid := []struct{ name, fix string }{
		{"", `"my-app"`},
		{"-a", `try "a"`},
		{"a-", `try "a"`},
		{"Shop", `try "shop"`},
		{"my_app", `try "my-app"`},
		{"ünï", `try "n"`},
		{"🚀", `"my-app"`},
		{strings.Repeat("x", 37), `try "` + strings.Repeat("x", 36) + `"`},
	}
	for _, tt := range invalid {
		err := ValidIntegrationName(tt.name)
		if err == nil {
			t.Errorf("ValidIntegrationName(%q) = nil, want an error", tt.name)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"name ", "1–36 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", tt.fix} {
			if !strings.Contains(msg, want) {
				t.Errorf("ValidIntegrationName(%q) = %q, missing %q", tt.name, msg, want)
			}
		}
		if s := suggestIntegrationName(tt.name); s != "" && ValidIntegrationName(s) != nil {
			t.Errorf("suggestion %q for %q is itself invalid", s, tt.name)
		}
	}
}
