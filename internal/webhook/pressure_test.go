package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// The receiver is idle until an authenticated delivery arrives, busy while
// it waits for its commit, and idle again once it is answered: what the
// delivery drain yields to (internal/jobs/yield.go).
func TestAcksIdleFollowsAuthenticatedDeliveriesInProgress(t *testing.T) {
	held, release := make(chan struct{}, 1), make(chan struct{})
	persist := func(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
		held <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return make([]bool, len(batch)), nil
	}
	r := NewReceiver(Options{Secrets: fixedSecrets{}, Persist: persist, Flushers: 1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(r.Close)
	select {
	case <-r.AcksIdle():
	default:
		t.Fatal("a receiver that has received nothing is not idle")
	}
	if w := post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": "wrong"}, strings.NewReader(`{}`)); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", w.Code)
	}
	select {
	case <-r.AcksIdle():
	case <-time.After(20 * time.Second):
		t.Fatal("a refused stranger's request left the receiver busy")
	}
	answered := make(chan int, 1)
	go func() {
		w := post(r, "/hooks/gitlab/app", map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}, strings.NewReader(`{"object_kind":"push"}`))
		answered <- w.Code
	}()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the delivery never reached the group commit")
	}
	idle := r.AcksIdle()
	select {
	case <-idle:
		t.Fatal("the receiver is idle while a delivery waits for its commit")
	default:
	}
	close(release)
	select {
	case code := <-answered:
		if code != http.StatusAccepted {
			t.Fatalf("answered %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the released delivery was never answered")
	}
	select {
	case <-idle: // the channel taken while busy closes once quiet
	case <-time.After(20 * time.Second):
		t.Fatal("the receiver never became idle after its last delivery was answered")
	}
}
