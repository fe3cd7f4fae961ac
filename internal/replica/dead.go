package replica

import (
	"strconv"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// QueueName is the River queue of replica id: the runtime jobs of the
// environments it runs wait there, and only it works them.
func QueueName(id int64) string { return "replica_" + strconv.FormatInt(id, 10) }

// ClientID is replica id's name in River: the leader election and the
// jobs it works (attempted_by) show it.
func ClientID(id int64) string { return "glenv-replica-" + strconv.FormatInt(id, 10) }

// Split sorts replicas into the live (a heartbeat within deadAfter of now)
// and the dead. self is always live: it is the one asking.
func Split(replicas []store.Replica, self int64, now time.Time, deadAfter time.Duration) (live, dead []store.Replica) {
	for _, r := range replicas {
		if r.ID == self || now.Sub(r.HeartbeatAt) < deadAfter {
			live = append(live, r)
		} else {
			dead = append(dead, r)
		}
	}
	return live, dead
}

// IDs are the replicas' ids, in order.
func IDs(replicas []store.Replica) []int64 {
	out := make([]int64, len(replicas))
	for i, r := range replicas {
		out[i] = r.ID
	}
	return out
}

// Pick is the live replica a new environment goes to: the one running the
// fewest, the lowest id among equals, so environments spread over the
// replicas as they are created.
func Pick(counts map[int64]int, live []int64) int64 {
	var best int64
	for _, id := range live {
		if best == 0 || counts[id] < counts[best] || counts[id] == counts[best] && id < best {
			best = id
		}
	}
	return best
}
