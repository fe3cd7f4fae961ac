package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// backlog is what processing did during one measurement of glenv with
// processing on: acknowledgements come first under a burst (internal/jobs'
// drain yields to them), so the honest report of that trade-off is how many
// deliveries were processed while the burst lasted, how many were left,
// and how long the settle took to clear them.
type backlog struct {
	processed int64         // deliveries processed during the measurement
	elapsed   time.Duration // the measurement's duration (settle excluded)
	left      int64         // accepted deliveries left when the load stopped
	settle    time.Duration // how long clearing them took
	// p50, p99: accepted → processed of the deliveries received during
	// the measurement (received_at → processed_at, both glenv's clock).
	p50, p99 time.Duration
}

// rate is the processing rate during the measurement, deliveries/s.
func (b backlog) rate() float64 {
	if b.elapsed <= 0 {
		return 0
	}
	return float64(b.processed) / b.elapsed.Seconds()
}

// deliveryMark is where a measurement starts: the highest delivery id and
// how many deliveries were processed so far.
type deliveryMark struct{ maxID, processed int64 }

func (g *glenv) mark() deliveryMark {
	var m deliveryMark
	must(g.read.QueryRowContext(context.Background(),
		`SELECT COALESCE(MAX(id), 0), COUNT(*) FILTER (WHERE status <> 'accepted') FROM deliveries`).Scan(&m.maxID, &m.processed))
	return m
}

// measureBacklog runs after the load of a measurement that started at m
// and lasted elapsed: it counts what was processed and left, waits for the
// backlog to clear (timing it), then reads the processing latencies.
func (g *glenv) measureBacklog(m deliveryMark, elapsed time.Duration) backlog {
	now := g.mark()
	b := backlog{processed: now.processed - m.processed, elapsed: elapsed}
	left, err := store.CountDeliveries(context.Background(), g.read, store.DeliveryAccepted)
	must(err)
	b.left = int64(left)
	t0 := time.Now()
	g.waitDrained()
	if b.left > 0 {
		b.settle = time.Since(t0)
	}
	// The ids are integers this program read: formatting them into the
	// query keeps it the same on both databases.
	rows, err := g.read.QueryContext(context.Background(), fmt.Sprintf(
		`SELECT processed_at - received_at FROM deliveries WHERE id > %d AND id <= %d AND status <> 'accepted'`, m.maxID, now.maxID))
	must(err)
	defer rows.Close()
	var lat []time.Duration
	for rows.Next() {
		var us int64
		must(rows.Scan(&us))
		lat = append(lat, time.Duration(us)*time.Microsecond)
	}
	must(rows.Err())
	if len(lat) > 0 {
		slices.Sort(lat)
		b.p50, b.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return b
}

// reportBacklog prints the processing side of "glenv, processing on".
func reportBacklog(db string, on *target) {
	if on == nil || len(on.closed) == 0 || on.closed[0].backlog == nil {
		return
	}
	var rate []float64
	var left, settle, p50, p99 []time.Duration
	for _, s := range on.closed {
		rate = append(rate, s.backlog.rate())
		left = append(left, time.Duration(s.backlog.left))
		settle = append(settle, s.backlog.settle)
	}
	for _, s := range on.open {
		p50, p99 = append(p50, s.backlog.p50), append(p99, s.backlog.p99)
	}
	fmt.Printf("%s, processing during the closed-loop burst (acks first): processed %s deliveries/s; backlog at its end %s; cleared in %s\n",
		db, spreadF(rate, "%.0f"), spreadN(left), spreadD(settle))
	if len(p50) > 0 {
		fmt.Printf("%s, open loop: accepted → processed p50 %s, p99 %s\n", db, spreadD(p50), spreadD(p99))
	}
}

func spreadN(v []time.Duration) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf("%d / %d / %d", s[0], s[len(s)/2], s[len(s)-1])
}
