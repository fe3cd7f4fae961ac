package jobs

import (
	"context"
	"time"
)

// Acks is the webhook receiver's pressure as the delivery drain sees it
// (internal/webhook's Receiver has it; internal/server wires it in). Under
// a burst the drain gives acknowledgements priority: GitLab disables a hook
// whose deliveries time out or fail repeatedly, while a delivery's
// processing can wait a little.
type Acks interface {
	// AcksIdle returns a channel closed once no acknowledgement is in
	// progress (already closed when none is).
	AcksIdle() <-chan struct{}
}

// ackYield is how long after its last batch the drain yields to
// acknowledgements at most, and floorBatch how many deliveries the batch
// that the floor lets go may hold: through any burst processing goes on at
// floorBatch per ackYield plus the batch's own time (≥ 150 deliveries/s on
// either database), and catches up at full speed once the burst is over.
// A floor batch as large as PostgreSQL's usual 32 processed at ~360/s
// through bench/ack's burst and held its acks to 0.75× the bare commit.
const (
	ackYield   = 40 * time.Millisecond
	floorBatch = 8
)

// batchAfterYield is how many deliveries the batch after a yield that
// ended with outcome may take, perTx being the usual: acknowledgements
// still in progress (the floor let it go) get a small one.
func batchAfterYield(perTx int, outcome string) int {
	if outcome == "floor" {
		return min(perTx, floorBatch)
	}
	return perTx
}

// yieldWait is the drain's decision before a batch: how long to wait for
// acknowledgements in progress to be answered, sinceLast after its last
// batch ended. Nothing when none is in progress (an idle server processes
// at once); otherwise until bound after the last batch at most, which is
// the floor: under any burst a batch starts within bound of the last.
func yieldWait(acksBusy bool, sinceLast, bound time.Duration) time.Duration {
	if !acksBusy || sinceLast >= bound {
		return 0
	}
	return bound - sinceLast
}

// yieldToAcks waits, before one batch of the drain whose last batch ended
// at last, while acknowledgements are in progress, as yieldWait decides,
// and reports how the wait ended: "none" (no wait), "idle", "floor" or
// "stop". No receiver (a replica that only works jobs) means no wait.
func (q *Environments) yieldToAcks(ctx context.Context, last time.Time) string {
	if q.Acks == nil {
		return "none"
	}
	idle := q.Acks.AcksIdle()
	busy := true
	select {
	case <-idle:
		busy = false
	default:
	}
	outcome := "none"
	if wait := yieldWait(busy, time.Since(last), q.ackYieldBound()); wait > 0 {
		outcome = awaitIdle(ctx, idle, wait)
	}
	if hook := q.drainYielded; hook != nil {
		hook(outcome)
	}
	return outcome
}

// awaitIdle waits up to d for idle to close and reports how the wait
// ended: "idle", "floor" (d passed) or "stop" (ctx ended).
func awaitIdle(ctx context.Context, idle <-chan struct{}, d time.Duration) string {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return "idle"
	case <-t.C:
		return "floor"
	case <-ctx.Done():
		return "stop"
	}
}

// ackYieldBound is ackYield unless a test set its own.
func (q *Environments) ackYieldBound() time.Duration {
	if q.ackYieldTest > 0 {
		return q.ackYieldTest
	}
	return ackYield
}
