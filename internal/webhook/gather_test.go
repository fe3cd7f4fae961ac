package webhook

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// batches records the size of each batch a committer persists; hold, when
// set, keeps a batch's persist waiting until it is closed.
type batches struct {
	mu    sync.Mutex
	sizes []int
	hold  chan struct{}
	began chan int // each batch's size as its persist begins
}

func (b *batches) persist(ctx context.Context, batch []*store.Delivery, queue []bool) ([]bool, error) {
	if b.began != nil {
		b.began <- len(batch)
	}
	if b.hold != nil && len(batch) == 1 && batch[0].Event == "hold" {
		<-b.hold
	}
	b.mu.Lock()
	b.sizes = append(b.sizes, len(batch))
	b.mu.Unlock()
	return make([]bool, len(batch)), nil
}

func (b *batches) seen() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// submitAsync submits a delivery of event on its own goroutine and returns
// a channel that receives its outcome.
func submitAsync(c *committer, event string) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.submit(ctx, &store.Delivery{Event: event}, true)
		done <- err
	}()
	return done
}

func wait(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not committed after 20 s", what)
	}
}

// TestALoneDeliveryIsCommittedAtOnce: with no other delivery in progress
// the committer does not wait for more (the gather bound here is an hour:
// a wait would never end within the test).
func TestALoneDeliveryIsCommittedAtOnce(t *testing.T) {
	var inProgress atomic.Int64
	b := &batches{}
	c := newGatheringCommitter(b.persist, 1, time.Minute, func() int { return int(inProgress.Load()) }, time.Hour)
	defer c.close(time.Second)
	for i := range 3 {
		inProgress.Store(1) // this delivery only
		wait(t, submitAsync(c, "Push Hook"), "a lone delivery")
		if got := b.seen(); len(got) != i+1 || got[i] != 1 {
			t.Fatalf("batches %v, want one more of 1", got)
		}
	}
}

// TestDeliveriesInProgressJoinTheBatch: while others are in progress
// (their bodies being read), the committer waits for them and commits them
// together, one transaction instead of one each.
func TestDeliveriesInProgressJoinTheBatch(t *testing.T) {
	var inProgress atomic.Int64
	inProgress.Store(5)
	b := &batches{began: make(chan int, 10)}
	c := newGatheringCommitter(b.persist, 1, time.Minute, func() int { return int(inProgress.Load()) }, time.Hour)
	defer c.close(time.Second)
	var all []<-chan error
	for range 5 {
		all = append(all, submitAsync(c, "Push Hook"))
	}
	for i, done := range all {
		wait(t, done, "delivery "+string(rune('1'+i)))
	}
	if got := b.seen(); len(got) != 1 || got[0] != 5 {
		t.Fatalf("batches %v, want the five in one", got)
	}
}

// TestTheGatherEndsWhenOthersDoNotCome: deliveries counted in progress
// that never reach the committer (a slow body, a refusal) hold a batch
// back by the gather bound only.
func TestTheGatherEndsWhenOthersDoNotCome(t *testing.T) {
	b := &batches{}
	c := newGatheringCommitter(b.persist, 1, time.Minute, func() int { return 4 }, time.Millisecond)
	defer c.close(time.Second)
	wait(t, submitAsync(c, "Push Hook"), "a delivery while three others never come")
	if got := b.seen(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("batches %v, want one of 1", got)
	}
}

// TestABatchBeingCommittedIsNotWaitedFor: with two flushers (PostgreSQL),
// deliveries in a batch another flusher is committing are in progress but
// will not come: a delivery arriving meanwhile is committed at once.
func TestABatchBeingCommittedIsNotWaitedFor(t *testing.T) {
	var inProgress atomic.Int64
	inProgress.Store(1)
	b := &batches{hold: make(chan struct{}), began: make(chan int, 10)}
	c := newGatheringCommitter(b.persist, 2, time.Minute, func() int { return int(inProgress.Load()) }, time.Hour)
	defer c.close(time.Second)
	held := submitAsync(c, "hold")
	<-b.began // its persist is under way, and stays so
	inProgress.Store(2)
	wait(t, submitAsync(c, "Push Hook"), "a delivery while another batch is being committed")
	close(b.hold)
	wait(t, held, "the held batch")
	if got := b.seen(); len(got) != 2 || got[0] != 1 || got[1] != 1 {
		t.Fatalf("batches %v, want two of 1", got)
	}
}

// TestFlushersDoNotWaitForEachOthersBatches: with two flushers, what the
// other one holds, gathering or committing, is not waited for.
func TestFlushersDoNotWaitForEachOthersBatches(t *testing.T) {
	for range 20 {
		b := &batches{}
		c := newGatheringCommitter(b.persist, 2, time.Minute, func() int { return 2 }, time.Hour)
		one, two := submitAsync(c, "Push Hook"), submitAsync(c, "Push Hook")
		wait(t, one, "the first of two deliveries in progress")
		wait(t, two, "the second")
		c.close(time.Second)
	}
}
