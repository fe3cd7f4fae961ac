// Package view holds the shapes /api/v1 answers with: environments,
// activities and deliveries as the native API and the CLI see them. They
// are the API's contract, kept apart from the store's rows so that a new
// column, an internal field or a renamed Go field never changes what clients
// read. The JSON names are the ones /api/v1 has always used.
package view

import (
	"time"

	"github.com/glenv/glenv/internal/store"
)

// Environment is an environment as /api/v1 shows it.
type Environment struct {
	ID          int64     `json:"id"`
	Integration string    `json:"integration"`
	Detached    bool      `json:"detached"`
	ProjectID   int64     `json:"project_id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	Host        string    `json:"host"`
	Kind        string    `json:"kind"`
	Ref         string    `json:"ref"`
	Parent      string    `json:"parent"`
	HeadSHA     string    `json:"head_sha"`
	DeployedSHA string    `json:"deployed_sha"`
	State       string    `json:"state"`
	Tier        string    `json:"tier"`
	ExternalURL string    `json:"external_url"`
	Description string    `json:"description"`
	MRIID       int64     `json:"mr_iid,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// PendingActivityID is the activity whose job the environment waits for.
	PendingActivityID int64 `json:"pending_activity_id,omitempty"`
	// URL is where the environment is served; GitLabState is its state in
	// GitLab's words (available, stopping, stopped).
	URL         string `json:"url"`
	GitLabState string `json:"gitlab_state"`
	// Prebuild is the environment's latest prebuild (--prebuild-branches),
	// shown for one environment; absent when it has none.
	Prebuild *Prebuild `json:"prebuild,omitempty"`
}

// Prebuild says whether an inactive environment's head is built already,
// so activating it starts in the time of a redeploy.
type Prebuild struct {
	ActivityID int64  `json:"activity_id"`
	SHA        string `json:"sha"`
	// Status is building, ready, failed or cancelled.
	Status string `json:"status"`
	// Ready is true when a prebuild of the environment's current head is ready.
	Ready      bool      `json:"ready"`
	Result     string    `json:"result,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// NewPrebuild shows a, the latest prebuild of an environment whose head is head.
func NewPrebuild(a store.Activity, head string) *Prebuild {
	p := &Prebuild{ActivityID: a.ID, SHA: a.SHA, Result: a.Result, FinishedAt: a.CompletedAt}
	switch a.State {
	case store.ActivityPending, store.ActivityRunning:
		p.Status = "building"
	case store.ActivityComplete:
		p.Status = "ready"
	default:
		p.Status = a.State
	}
	p.Ready = p.Status == "ready" && a.SHA != "" && a.SHA == head
	return p
}

// NewEnvironment shows e, served at url.
func NewEnvironment(e store.Environment, url string) Environment {
	return Environment{ID: e.ID, Integration: e.IntegrationName, Detached: e.Detached, ProjectID: e.ProjectID,
		Name: e.Name, Slug: e.Slug, Host: e.Host, Kind: e.Kind, Ref: e.Ref, Parent: e.Parent, HeadSHA: e.HeadSHA,
		DeployedSHA: e.DeployedSHA, State: e.State, Tier: e.Tier, ExternalURL: e.ExternalURL, Description: e.Description,
		MRIID: e.MRIID, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, PendingActivityID: e.PendingActivityID,
		URL: url, GitLabState: store.GitLabState(e.State)}
}

// Activity is a unit of work (deploy, stop, delete, sync, pause) as /api/v1
// shows it; its log is read apart, from an offset.
type Activity struct {
	ID            int64     `json:"id"`
	Integration   string    `json:"integration"`
	EnvironmentID int64     `json:"environment_id,omitempty"`
	Environment   string    `json:"environment,omitempty"`
	DeliveryID    int64     `json:"delivery_id,omitempty"`
	Kind          string    `json:"kind"`
	State         string    `json:"state"`
	Result        string    `json:"result"`
	SHA           string    `json:"sha,omitempty"`
	Description   string    `json:"description"`
	CreatedAt     time.Time `json:"created_at"`
	StartedAt     time.Time `json:"started_at"`
	CompletedAt   time.Time `json:"completed_at"`
}

// NewActivity shows a.
func NewActivity(a store.Activity) Activity {
	return Activity{ID: a.ID, Integration: a.IntegrationName, EnvironmentID: a.EnvironmentID, Environment: a.EnvironmentName,
		DeliveryID: a.DeliveryID, Kind: a.Kind, State: a.State, Result: a.Result, SHA: a.SHA, Description: a.Description,
		CreatedAt: a.CreatedAt, StartedAt: a.StartedAt, CompletedAt: a.CompletedAt}
}

// Activities shows a list of activities.
func Activities(as []store.Activity) []Activity {
	out := make([]Activity, 0, len(as))
	for _, a := range as {
		out = append(out, NewActivity(a))
	}
	return out
}

// Delivery is a webhook request as /api/v1 shows it: headers and result,
// never the body (up to 25 MB, and dropped by retention).
type Delivery struct {
	ID             int64     `json:"id"`
	Integration    string    `json:"integration"`
	Event          string    `json:"event"`
	IdempotencyKey string    `json:"idempotency_key"`
	EventUUID      string    `json:"event_uuid"`
	WebhookUUID    string    `json:"webhook_uuid"`
	Headers        string    `json:"headers"`
	Status         string    `json:"status"`
	Result         string    `json:"result"`
	DuplicateOf    int64     `json:"duplicate_of,omitempty"`
	ReceivedAt     time.Time `json:"received_at"`
	ProcessedAt    time.Time `json:"processed_at"`
	// BodyDroppedAt is when retention dropped the body (zero: kept).
	BodyDroppedAt time.Time `json:"body_dropped_at,omitzero"`
}

// NewDelivery shows d.
func NewDelivery(d store.Delivery) Delivery {
	return Delivery{ID: d.ID, Integration: d.IntegrationName, Event: d.Event, IdempotencyKey: d.IdempotencyKey,
		EventUUID: d.EventUUID, WebhookUUID: d.WebhookUUID, Headers: d.Headers, Status: d.Status, Result: d.Result,
		DuplicateOf: d.DuplicateOf, ReceivedAt: d.ReceivedAt, ProcessedAt: d.ProcessedAt, BodyDroppedAt: d.BodyDroppedAt}
}

// Deliveries shows a list of deliveries.
func Deliveries(ds []store.Delivery) []Delivery {
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, NewDelivery(d))
	}
	return out
}
