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

// ackYield is how long the drain yields to acknowledgements before one
// batch at most: the floor that keeps processing going through any burst,
// perTx deliveries per ackYield plus the batch's own time (SQLite: 8 per
// ~25 ms, PostgreSQL: 32). bench/ack measured the trade-off (README,
// "Webhooks").
const ackYield = 20 * time.Millisecond

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
// at last, while acknowledgements are in progress, as yieldWait decides;
// no receiver (a replica that only works jobs) means no wait.
func (q *Environments) yieldToAcks(ctx context.Context, last time.Time) {
	if q.Acks == nil {
		return
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
		t := time.NewTimer(wait)
		select {
		case <-idle:
			outcome = "idle"
		case <-t.C:
			outcome = "floor"
		case <-ctx.Done():
			outcome = "stop"
		}
		t.Stop()
	}
	if hook := q.drainYielded; hook != nil {
		hook(outcome)
	}
}

// ackYieldBound is ackYield unless a test set its own.
func (q *Environments) ackYieldBound() time.Duration {
	if q.ackYieldTest > 0 {
		return q.ackYieldTest
	}
	return ackYield
}
