package gitlabapi

import (
	"testing"
	"time"
)

func TestFormatTime(t *testing.T) {
	at := time.Date(2025, 3, 1, 13, 4, 5, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		got  *string
		want string // "" for null
	}{
		{"UTC, milliseconds", ptr(FormatTime(at)), "2025-03-01T12:04:05.123Z"},
		{"whole seconds keep .000", ptr(FormatTime(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))), "2025-03-01T00:00:00.000Z"},
		{"pointer", FormatTimePtr(&at), "2025-03-01T12:04:05.123Z"},
		{"nil pointer", FormatTimePtr(nil), ""},
		{"set", FormatTimeSet(at), "2025-03-01T12:04:05.123Z"},
		{"zero", FormatTimeSet(time.Time{}), ""},
	}
	for _, tt := range tests {
		switch {
		case tt.want == "" && tt.got != nil:
			t.Errorf("%s: %q, want null", tt.name, *tt.got)
		case tt.want != "" && (tt.got == nil || *tt.got != tt.want):
			t.Errorf("%s: %v, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func ptr(s string) *string { return &s }
