package runtime_test

import (
	"sync"
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

// A refill of the spare namespace that ends after a redeploy began stages
// its sandbox from the app that still runs; the redeploy never takes it.
// Once the redeploy replaced that app, nothing of the old app may wait in
// the spare: the switch drops it.
func TestARedeployDropsASandboxStagedFromTheAppItReplaces(t *testing.T) {
	t.Parallel()
	w := newWorld(t, runtime.Options{})
	requireStaging(t, w.rt)
	env := w.deploySupervised(t, 82, "first-82", "none")
	var staged bool
	var once sync.Once
	runtime.SetBeforeSwitch(w.rt, func(id int64) {
		if id == env.ID {
			once.Do(func() { staged = runtime.StageSpareNow(w.rt, id) })
		}
	})
	w.deploySupervised(t, 82, "second-82", "none")
	if !staged {
		t.Fatal("no sandbox could be staged from the first app while the redeploy ran")
	}
	if runtime.Prestaged(w.rt, env.ID) {
		t.Fatal("the sandbox staged from the replaced app is still in the spare after the switch")
	}
	noProcessesLeft(t, "first-82")
}
