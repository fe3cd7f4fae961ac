package auth

import "testing"

func TestCleanReturnTo(t *testing.T) {
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"empty returns to the start page", "", "/", true},
		{"a path inside glenv is kept", "/environments?integration=app", "/environments?integration=app", true},
		{"an absolute URL is refused", "https://evil.example/", "", false},
		{"a scheme-relative URL is refused", "//evil.example/", "", false},
		{"a backslash host is refused", "/\\evil.example", "", false},
		{"a relative path is refused", "evil", "", false},
		{"a javascript URL is refused", "javascript:alert(1)", "", false},
		{"an encoded second slash is refused", "/%2F%2Fevil.example", "", false},
		{"control characters are refused", "/a\r\nLocation: x", "", false},
		{"a tab is refused", "/\t/evil.example", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CleanReturnTo(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("CleanReturnTo(%q) = %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
			}
		})
	}
}
