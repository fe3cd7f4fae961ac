package view

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glenv/glenv/internal/store"
)

// keys returns the JSON keys v is shown with.
func keys(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// The JSON names are /api/v1's contract: scripts and the CLI read them.
// A store field that is internal (seen SHAs, tombstone times, bodies) never
// shows, whatever the store adds.
func TestTheNativeAPIShowsItsContractNotTheStoresRows(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"environment", NewEnvironment(store.Environment{ID: 1, MRIID: 7, PendingActivityID: 3, SeenSHAs: []string{"a"},
			DeletedAt: now, MRUpdatedAt: now}, "http://x/"),
			"created_at deployed_sha description detached external_url gitlab_state head_sha host id integration kind mr_iid name parent pending_activity_id project_id ref slug state tier updated_at url"},
		{"activity", NewActivity(store.Activity{ID: 1, EnvironmentID: 2, EnvironmentName: "main", DeliveryID: 3, SHA: "abc"}),
			"completed_at created_at delivery_id description environment environment_id id integration kind result sha started_at state"},
		{"delivery", NewDelivery(store.Delivery{ID: 1, Body: "secret body", DuplicateOf: 2, BodyDroppedAt: now}),
			"body_dropped_at duplicate_of event event_uuid headers id idempotency_key integration processed_at received_at result status webhook_uuid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := keys(t, c.v); got != c.want {
				t.Errorf("keys\n got: %s\nwant: %s", got, c.want)
			}
		})
	}
}
