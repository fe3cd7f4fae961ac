package feedback

import (
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/store"
)

// Issue 17: a paused environment's note says it is paused and how it
// wakes, not that it was stopped.
func TestNoteSaysAnIdleEnvironmentIsPaused(t *testing.T) {
	v := noteView{Env: store.Environment{Name: "mr-7", State: store.StatePaused, DeployedSHA: "0123456789abcdef"}}
	body := v.body()
	if !strings.Contains(body, "paused while idle") || !strings.Contains(body, "| **State** | paused |") {
		t.Fatalf("note of a paused environment:\n%s", body)
	}
	if !v.settled() {
		t.Fatal("a paused environment is an outcome: its note is edited")
	}
}
