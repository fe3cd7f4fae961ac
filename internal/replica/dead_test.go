package replica

import (
	"reflect"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

func TestSplit(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(id int64, ago time.Duration) store.Replica {
		return store.Replica{ID: id, HeartbeatAt: now.Add(-ago)}
	}
	tests := []struct {
		name       string
		replicas   []store.Replica
		self       int64
		live, dead []int64
	}{
		{name: "a replica that heartbeat within dead-after is live",
			replicas: []store.Replica{at(1, 0), at(2, 9*time.Second)}, self: 1, live: []int64{1, 2}},
		{name: "a replica silent for dead-after is dead",
			replicas: []store.Replica{at(1, 0), at(2, 10*time.Second), at(3, time.Hour)}, self: 1, live: []int64{1}, dead: []int64{2, 3}},
		{name: "the asking replica is live even when its own beat is late (it is running)",
			replicas: []store.Replica{at(1, time.Minute), at(2, 0)}, self: 1, live: []int64{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, dead := Split(tt.replicas, tt.self, now, 10*time.Second)
			if got := IDs(live); !reflect.DeepEqual(got, orEmpty(tt.live)) {
				t.Errorf("live = %v, want %v", got, tt.live)
			}
			if got := IDs(dead); !reflect.DeepEqual(got, orEmpty(tt.dead)) {
				t.Errorf("dead = %v, want %v", got, tt.dead)
			}
		})
	}
}

func orEmpty(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

func TestPick(t *testing.T) {
	tests := []struct {
		name   string
		counts map[int64]int
		live   []int64
		want   int64
	}{
		{name: "a new environment goes to the live replica running the fewest", counts: map[int64]int{1: 3, 2: 1, 3: 2}, live: []int64{1, 2, 3}, want: 2},
		{name: "a replica running none is the least loaded", counts: map[int64]int{1: 1}, live: []int64{1, 2}, want: 2},
		{name: "among equals the lowest id, so the choice is stable", counts: map[int64]int{}, live: []int64{3, 1, 2}, want: 1},
		{name: "dead replicas' counts do not matter: only live ones are candidates", counts: map[int64]int{9: 0, 1: 5}, live: []int64{1}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Pick(tt.counts, tt.live); got != tt.want {
				t.Fatalf("Pick = %d, want %d", got, tt.want)
			}
		})
	}
}
