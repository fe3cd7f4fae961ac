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
	// AcksBegun counts the acknowledgements begun so far: unchanged
	// across a wait, none began during it.
	AcksBegun() uint64
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

// burstQuiet is how long the receiver must have been quiet, beyond its
// own 1 ms (AcksIdle), for a yield that follows one the floor ended: the
// receiver was busy for a whole ackYield then, a burst that saturates it,
// and the gaps between its group commits' replies and the senders' next
// requests (a few over 1 ms, as its CPU is shared) let a batch through
// in each. bench/ack's 32 waiting senders had processing run at 480–720
// deliveries/s through the burst instead of the floor's ~200, and ack
// throughput with processing on fell 15–20 % below that without. At a
// steady few hundred a second the floor never ends a yield, so this never
// applies and a batch goes after the usual 1 ms.
const burstQuiet = 3 * time.Millisecond

// quietAfter is the quiet beyond AcksIdle a yield waits for after one
// that ended with lastOutcome: burstQuiet after the floor, else none.
func quietAfter(lastOutcome string) time.Duration {
	if lastOutcome == "floor" {
		return burstQuiet
	}
	return 0
}

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
// "stop". After a yield the floor ended (lastOutcome), idle also needs
// burstQuiet more of quiet (quietAfter), within the same floor. No
// receiver (a replica that only works jobs) means no wait.
func (q *Environments) yieldToAcks(ctx context.Context, last time.Time, lastOutcome string) string {
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
	bound := q.ackYieldBound()
	if wait := yieldWait(busy, time.Since(last), bound); wait > 0 {
		outcome = awaitIdle(ctx, idle, wait)
	}
	if extra := quietAfter(lastOutcome); extra > 0 && (outcome == "idle" || outcome == "none") {
		// Idle already or after the wait, the receiver must stay quiet
		// longer, within the same floor.
		if deadline := last.Add(bound); time.Until(deadline) > 0 {
			outcome = q.awaitQuiet(ctx, extra, deadline)
		}
	}
	if hook := q.drainYielded; hook != nil {
		hook(outcome)
	}
	return outcome
}

// awaitQuiet waits, the receiver being idle, until no acknowledgement
// has begun for extra more, or deadline: "idle", "floor" or "stop".
func (q *Environments) awaitQuiet(ctx context.Context, extra time.Duration, deadline time.Time) string {
	for {
		begun := q.Acks.AcksBegun()
		left := time.Until(deadline)
		if left <= 0 {
			return "floor"
		}
		if !sleep(ctx, min(extra, left)) {
			return "stop"
		}
		if q.Acks.AcksBegun() == begun {
			if extra <= left {
				return "idle"
			}
			return "floor"
		}
		// One began meanwhile: wait for the receiver to be idle again.
		if left = time.Until(deadline); left <= 0 {
			return "floor"
		}
		if o := awaitIdle(ctx, q.Acks.AcksIdle(), left); o != "idle" {
			return o
		}
	}
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
