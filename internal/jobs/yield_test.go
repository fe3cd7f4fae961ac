package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
	"github.com/glenv/glenv/internal/webhook"
)

func TestYieldWait(t *testing.T) {
	const bound = 20 * time.Millisecond
	for _, tc := range []struct {
		rule      string
		busy      bool
		sinceLast time.Duration
		want      time.Duration
	}{
		{"with no acknowledgement in progress the batch goes at once", false, 0, 0},
		{"an idle receiver never delays processing, however recent the last batch", false, time.Microsecond, 0},
		{"acknowledgements in progress right after a batch: wait up to the whole bound", true, 0, bound},
		{"the floor counts from the last batch's end", true, 15 * time.Millisecond, 5 * time.Millisecond},
		{"the floor is due: the batch goes even while acknowledgements are in progress", true, bound, 0},
		{"a drain that lingered past the bound owes acknowledgements nothing more", true, time.Second, 0},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if got := yieldWait(tc.busy, tc.sinceLast, bound); got != tc.want {
				t.Fatalf("yieldWait(%v, %s, %s) = %s, want %s", tc.busy, tc.sinceLast, bound, got, tc.want)
			}
		})
	}
}

func TestBatchAfterYield(t *testing.T) {
	for _, tc := range []struct {
		rule    string
		perTx   int
		outcome string
		want    int
	}{
		{"a batch the floor let go through acknowledgements in progress is a small one", 32, "floor", floorBatch},
		{"the floor batch is never larger than the usual one", 4, "floor", 4},
		{"after an idle receiver the batch is the usual one", 32, "idle", 32},
		{"with no wait the batch is the usual one", 8, "none", 8},
		{"a drain stopping keeps the usual batch (its transaction fails on the context)", 32, "stop", 32},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if got := batchAfterYield(tc.perTx, tc.outcome); got != tc.want {
				t.Fatalf("batchAfterYield(%d, %s) = %d, want %d", tc.perTx, tc.outcome, got, tc.want)
			}
		})
	}
}

// hookSecrets gives integration "app" (id) the webhook secret "hook-secret".
type hookSecrets struct{ id int64 }

func (h hookSecrets) WebhookSecret(_ context.Context, name string) (int64, string, error) {
	if name != "app" {
		return 0, "", store.ErrNotFound
	}
	return h.id, "hook-secret", nil
}

// yieldWorld is a real webhook receiver in front of a real drain; persist
// may hold an acknowledgement in the group commit (hold) until released.
type yieldWorld struct {
	*world
	q       *Environments
	url     string
	held    chan struct{} // a held acknowledgement reached the commit
	release chan struct{}
	hold    bool
	yields  chan string // how each of the drain's yields ended
}

func newYieldWorld(t *testing.T, s *store.Store, bound time.Duration, hold bool) *yieldWorld {
	y := &yieldWorld{world: newWorld(t, s), held: make(chan struct{}, 1), release: make(chan struct{}),
		hold: hold, yields: make(chan string, 1024)}
	var recv *webhook.Receiver
	persist := func(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
		if y.hold {
			y.held <- struct{}{}
			select {
			case <-y.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return y.q.AcceptDeliveries(ctx, batch, queue)
	}
	recv = webhook.NewReceiver(webhook.Options{Secrets: hookSecrets{y.in.ID}, Persist: persist, Flushers: 1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: webhook.Limits{Answer: time.Minute, Flush: time.Minute}})
	t.Cleanup(recv.Close)
	y.q = startDrainQueue(t, s, y.rt, func(q *Environments) {
		q.Acks, q.ackYieldTest = recv, bound
		q.drainYielded = func(outcome string) {
			select {
			case y.yields <- outcome:
			default: // the test reads what it needs; the rest is dropped
			}
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/hooks/gitlab/{integration}", recv)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	y.url = srv.URL + "/hooks/gitlab/app"
	return y
}

// send posts a push creating branch and returns the answer's status.
func (y *yieldWorld) send(branch string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, y.url, strings.NewReader(pushBody(branch)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", "hook-secret")
	req.Header.Set("Idempotency-Key", branch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitEnvironment waits until branch's environment record exists.
func (y *yieldWorld) waitEnvironment(t *testing.T, branch string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := store.GetEnvironment(context.Background(), y.s.Reader(), "app", branch); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("environment %s not created within %s: its delivery was not processed", branch, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// While an acknowledgement is held in the group commit (the receiver is
// never idle), the drain yields to it before each batch, yet processes
// what was accepted at its floor: the yield ends by its bound.
func TestTheDrainYieldsToAcknowledgementsInProgressYetKeepsItsFloor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		y := newYieldWorld(t, s, 30*time.Millisecond, true)
		answered := make(chan error, 1)
		go func() {
			code, err := y.send("held")
			if err == nil && code != http.StatusAccepted {
				err = fmt.Errorf("answered %d", code)
			}
			answered <- err
		}()
		select {
		case <-y.held:
		case <-time.After(20 * time.Second):
			t.Fatal("the held acknowledgement never reached the group commit")
		}
		var ds []*store.Delivery
		for i := range 3 {
			ds = append(ds, y.pushDelivery(fmt.Sprintf("burst-%d", i)))
		}
		if _, err := y.q.AcceptDeliveries(context.Background(), ds, []bool{true, true, true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if got := waitDelivery(t, s, d.ID, 20*time.Second); got.Status != store.DeliveryProcessed {
				t.Fatalf("delivery %s: %s %s", d.IdempotencyKey, got.Status, got.Result)
			}
		}
		select {
		case err := <-answered:
			t.Fatalf("the held acknowledgement was answered (%v) before it was released: the test held nothing", err)
		default:
		}
		floor := false
		for !floor {
			select {
			case o := <-y.yields:
				if o == "idle" {
					t.Fatal("a yield ended as idle while an acknowledgement was in progress")
				}
				floor = o == "floor"
			case <-time.After(20 * time.Second):
				t.Fatal("the drain processed without yielding to the acknowledgement in progress")
			}
		}
		close(y.release)
		select {
		case err := <-answered:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the released acknowledgement was never answered")
		}
		y.waitEnvironment(t, "held", 20*time.Second)
	})
}

// With the floor an hour away, only the receiver's idleness lets a batch
// go: each delivery, sent alone, is processed without waiting for the
// floor (the ack that wakes the drain is itself in progress then, and the
// drain goes once it is answered).
func TestAnIdleReceiverLetsTheDrainProcessAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		y := newYieldWorld(t, s, time.Hour, false)
		for i := range 3 {
			branch := fmt.Sprintf("alone-%d", i)
			code, err := y.send(branch)
			if err != nil || code != http.StatusAccepted {
				t.Fatalf("delivery %s: %d %v", branch, code, err)
			}
			y.waitEnvironment(t, branch, 20*time.Second)
		}
		for {
			select {
			case o := <-y.yields:
				if o == "floor" {
					t.Fatal("a yield ended by the floor on an idle receiver")
				}
				continue
			default:
			}
			break
		}
	})
}
