package activitylog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		text string
		size int
		want []string
	}{
		{"text within the size stays whole", "abc", 4, []string{"abc"}},
		{"text over the size is cut at the size", "abcdefg", 3, []string{"abc", "def", "g"}},
		{"a cut never splits a rune", "aé€x", 3, []string{"aé", "€", "x"}},
		{"a rune wider than the size goes whole", "€€", 2, []string{"€", "€"}},
		{"empty text is one empty piece", "", 3, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := split(tt.text, tt.size)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("split(%q, %d) = %q, want %q", tt.text, tt.size, got, tt.want)
			}
			if strings.Join(got, "") != tt.text {
				t.Fatalf("pieces %q do not add up to %q", got, tt.text)
			}
		})
	}
}

func TestSplitKeepsEveryPieceValidUTF8(t *testing.T) {
	text := strings.Repeat("ab€é", 1000)
	for _, p := range split(text, 7) {
		if !utf8.ValidString(p) || len(p) > 7 {
			t.Fatalf("piece %q: valid %v, %d bytes", p, utf8.ValidString(p), len(p))
		}
	}
}
