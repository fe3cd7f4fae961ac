package feedback

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/store"
)

// Deps are what feedback needs from the server.
type Deps struct {
	Store *store.Store
	// Token opens an integration's GitLab token.
	Token func(store.Integration) (string, error)
	// EnvURL is where people open an environment.
	EnvURL func(store.Environment) string
	// PublicURL is glenv's own URL, without a trailing slash: webhook URLs
	// and, unless LogURL is set, log links derive from it.
	PublicURL string
	// LogURL links to an activity's log; default <PublicURL>/api/v1/activities/<id>/log.
	LogURL func(activityID int64) string
	// DashboardURL is an environment's page on glenv's dashboard (nil:
	// none): the MR note links it beside the app, and statuses of deploys
	// in progress point there, where the log follows live.
	DashboardURL func(store.Environment) string
	// Health receives the hook and token checks (optional); register it
	// with Prometheus.
	Health *Health
	Logger *slog.Logger
	// GitLab tunes the transport. The zero value is feedback's default: a
	// 15s time-out and no retries inside a call, because a job waits out a
	// 429 or an outage by snoozing or retrying instead of holding a worker.
	GitLab gitlab.Options
	Timing Timing
}

// Timing tunes waits and limits; zero values are production's.
type Timing struct {
	// Debounce holds a fresh sync back until the environment has been quiet
	// this long (default 1s), so a deploy that starts at once is shown
	// running without a pending status first.
	Debounce time.Duration
	// MaxDebounce bounds how long debouncing can delay a job (default 10s).
	MaxDebounce time.Duration
	// SyncTimeout bounds one sync (default 2m); the environment's lease
	// lasts a little longer.
	SyncTimeout time.Duration
	// RetryMin and RetryMax bound the backoff after a failed sync (default
	// 2s doubling up to 5m).
	RetryMin, RetryMax time.Duration
	// MaxAge is how far back the sweep looks for environments GitLab does
	// not show yet (default 7 days).
	MaxAge time.Duration
	// Window is how many of an environment's newest deploys a sync looks
	// at (default store.FeedbackWindow, which retention keeps); older ones
	// are finished only if GitLab shows them unfinished.
	Window int
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.Debounce, time.Second)
	def(&t.MaxDebounce, 10*time.Second)
	def(&t.SyncTimeout, 2*time.Minute)
	def(&t.RetryMin, 2*time.Second)
	def(&t.RetryMax, 5*time.Minute)
	def(&t.MaxAge, 7*24*time.Hour)
	if t.Window == 0 {
		t.Window = store.FeedbackWindow
	}
	return t
}

// backoff is the wait before retry attempt n (1-based), with jitter.
func (t Timing) backoff(attempt int) time.Duration {
	d := t.RetryMin
	for i := 1; i < attempt && d < t.RetryMax; i++ {
		d *= 2
	}
	d = min(d, t.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// Register adds feedback's workers (sync, sweep, hook and token health) to
// a queue: pass it in jobs.Deps.Register together with Feedback: true.
func Register(deps Deps) func(*river.Workers) {
	s := NewSyncer(deps)
	return func(w *river.Workers) {
		river.AddWorker(w, &syncWorker{s: s})
		river.AddWorker(w, &sweepWorker{s: s})
		river.AddWorker(w, &healthWorker{s: s})
	}
}

// PeriodicJobs are feedback's periodic jobs: the sweep that catches
// environments a lost notification left behind, and the hook and token
// health check. Both run at start and every interval, on River's leader
// only; the sweep once per interval across replicas (a new leader's run at
// start joins the interval's job if one exists).
func PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	opts := &river.PeriodicJobOpts{RunOnStart: true}
	once := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(interval),
			func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, once }, opts),
		river.NewPeriodicJob(river.PeriodicInterval(interval),
			// The health check's result lives in the memory of the process
			// that ran it (/metrics): a new leader runs it at its start even
			// when the interval already had one, so its metrics are filled.
			func() (river.JobArgs, *river.InsertOpts) { return HealthArgs{}, nil }, opts),
	}
}

// clients keeps one GitLab client per integration, so client-go's rate
// limiter and connections live across jobs; a changed token or base URL
// makes a new one.
type clients struct {
	mu    sync.Mutex
	byKey map[string]clientEntry
	token func(store.Integration) (string, error)
	opts  gitlab.Options
	// blockedUntil is when a 429 for the integration ends; every request of
	// its client waits for it, not only the start of a sync, so syncs already
	// under way stop adding to the storm too.
	blockedUntil func(integration string) time.Time
}

type clientEntry struct {
	key string
	c   *gitlab.Client
}

func (cs *clients) get(in store.Integration) (*gitlab.Client, error) {
	key := strings.Join([]string{in.BaseURL, in.TokenSealed}, "\x00")
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if e, ok := cs.byKey[in.Name]; ok && e.key == key {
		return e.c, nil
	}
	if cs.token == nil {
		return nil, permanent(fmt.Errorf("integration %s: no token opener configured", in.Name))
	}
	tok, err := cs.token(in)
	if err != nil {
		return nil, permanent(fmt.Errorf("open the GitLab token of integration %s: %w", in.Name, err))
	}
	opts := cs.opts
	if cs.blockedUntil != nil {
		name := in.Name
		opts.Gate = func(context.Context) error {
			if until := cs.blockedUntil(name); time.Now().Before(until) {
				return gitlab.NewRateLimitError(until, "GitLab rate-limited integration "+name)
			}
			return nil
		}
	}
	c, err := gitlab.New(in.BaseURL, tok, opts)
	if err != nil {
		return nil, permanent(fmt.Errorf("integration %s: %w", in.Name, err))
	}
	cs.byKey[in.Name] = clientEntry{key: key, c: c}
	return c, nil
}

// permanentError is a failure a retry cannot fix (a token that cannot be
// opened or that GitLab rejects): the job gives up, the sweep tries later.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// waitError asks the job to come back at Until: another sync holds the
// environment, or GitLab rate-limited the integration.
type waitError struct {
	Until  time.Time
	Reason string
	// Busy: another sync holds the environment; it usually ends long
	// before its lease would, so look again soon.
	Busy bool
}

func (e *waitError) Error() string {
	return fmt.Sprintf("%s: waiting until %s", e.Reason, e.Until.Format(time.RFC3339Nano))
}
