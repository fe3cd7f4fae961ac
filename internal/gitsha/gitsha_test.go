package gitsha

import "testing"

func TestShortAndZero(t *testing.T) {
	for _, tt := range []struct {
		name, sha, short string
		zero             bool
	}{
		{"a full SHA is cut to eight characters", "0123456789abcdef0123456789abcdef01234567", "01234567", false},
		{"a short id is kept as is", "abc", "abc", false},
		{"forty zeros are GitLab's no-commit marker", "0000000000000000000000000000000000000000", "00000000", true},
		{"sixty-four zeros are the SHA-256 marker", "0000000000000000000000000000000000000000000000000000000000000000", "00000000", true},
		{"an empty SHA is not the marker", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Short(tt.sha); got != tt.short {
				t.Errorf("Short(%q) = %q, want %q", tt.sha, got, tt.short)
			}
			if got := IsZero(tt.sha); got != tt.zero {
				t.Errorf("IsZero(%q) = %v, want %v", tt.sha, got, tt.zero)
			}
		})
	}
}
