package runtime_test

import (
	"testing"

	"github.com/glenv/glenv/internal/runtime"
)

// After a redeploy the old process stops once the new one answered its
// first request (settle.go; TestSettledWaitsForTheFirstAnswer times the
// order), and also when no request comes.
func TestTheOldProcessStopsOnceTheNewOneAnsweredItsFirstRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	env := w.deploySupervised(t, 80, "first-80", "none")
	w.deploySupervised(t, 80, "second-80", "none")
	if code, body, err := w.get(env.Host); err != nil || code != 200 || body != "serving second-80\n" {
		t.Fatalf("after the redeploy the proxy answers %d %q %v", code, body, err)
	}
	noProcessesLeft(t, "first-80")

	// No request after this one: its old process stops all the same.
	w.deploySupervised(t, 80, "third-80", "none")
	noProcessesLeft(t, "second-80")
	if code, body, err := w.get(env.Host); err != nil || code != 200 || body != "serving third-80\n" {
		t.Fatalf("after the second redeploy the proxy answers %d %q %v", code, body, err)
	}
}
