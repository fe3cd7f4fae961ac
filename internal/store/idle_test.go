package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParsePauseAfter(t *testing.T) {
	tests := []struct {
		name, in string
		want     PauseAfter
		err      string
	}{
		{"off is the default", "off", 0, ""},
		{"zero is off", "0", 0, ""},
		{"a Go duration", "4h", PauseAfter(4 * time.Hour), ""},
		{"whole days", "2d", PauseAfter(48 * time.Hour), ""},
		{"less than a minute is refused", "30s", 0, "at least 1m"},
		{"more than a year is refused", "400d", 0, "at most 365d"},
		{"garbage names the forms", "soon", 0, "such as 4h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePauseAfter(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "pause_after") {
					t.Fatalf("ParsePauseAfter(%q) = %v, %v; want an error naming pause_after with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePauseAfter(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	b, _ := json.Marshal(struct{ P PauseAfter }{PauseAfter(4 * time.Hour)})
	if string(b) != `{"P":"4h0m0s"}` {
		t.Fatalf("JSON %s", b)
	}
}

// Issue 17: a paused environment is "available" to GitLab tools, and a
// filter on available finds it.
func TestAPausedEnvironmentIsAvailableInGitLabTerms(t *testing.T) {
	if got := GitLabState(StatePaused); got != "available" {
		t.Fatalf("GitLabState(paused) = %q, want available", got)
	}
	found := false
	for _, s := range statesFor("available") {
		found = found || s == StatePaused
	}
	if !found {
		t.Fatal("filtering on available misses paused environments")
	}
}
