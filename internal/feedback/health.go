package feedback

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/store"
)

// tokenWarning is how long before a token expires glenv starts warning.
const tokenWarning = 30 * 24 * time.Hour

// Health holds the latest hook and token check of every integration and
// exposes them to Prometheus as
// glenv_integration_hook_disabled{integration} (1 = GitLab disabled the
// webhook or it is gone, and glenv could not re-enable it) and
// glenv_integration_token_expiry_days{integration} (absent for a token that
// never expires; 0 for one GitLab rejects).
type Health struct {
	mu     sync.Mutex
	status map[string]IntegrationHealth

	hookDesc, tokenDesc *prometheus.Desc
}

// IntegrationHealth is one integration's last check.
type IntegrationHealth struct {
	CheckedAt    time.Time
	HookDisabled bool
	HookProblem  string // what is wrong with the hook, "" when fine
	// TokenExpiresAt is nil for a token without an expiry date.
	TokenExpiresAt *time.Time
	TokenRejected  bool
	TokenProblem   string
}

// NewHealth returns an empty Health to pass in Deps and register with Prometheus.
func NewHealth() *Health {
	return &Health{
		status: map[string]IntegrationHealth{},
		hookDesc: prometheus.NewDesc("glenv_integration_hook_disabled",
			"1 when GitLab disabled the integration's webhook (or it is missing) and glenv could not re-enable it.",
			[]string{"integration"}, nil),
		tokenDesc: prometheus.NewDesc("glenv_integration_token_expiry_days",
			"Days until the integration's GitLab token expires (0 when GitLab rejects it; absent when it never expires).",
			[]string{"integration"}, nil),
	}
}

// Get returns an integration's last check (for integration:validate).
func (h *Health) Get(integration string) (IntegrationHealth, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.status[integration]
	return st, ok
}

func (h *Health) replace(all map[string]IntegrationHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = all
}

// Describe implements prometheus.Collector.
func (h *Health) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.hookDesc
	ch <- h.tokenDesc
}

// Collect implements prometheus.Collector.
func (h *Health) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, st := range h.status {
		disabled := 0.0
		if st.HookDisabled {
			disabled = 1
		}
		ch <- prometheus.MustNewConstMetric(h.hookDesc, prometheus.GaugeValue, disabled, name)
		switch {
		case st.TokenRejected:
			ch <- prometheus.MustNewConstMetric(h.tokenDesc, prometheus.GaugeValue, 0, name)
		case st.TokenExpiresAt != nil:
			days := math.Max(0, time.Until(*st.TokenExpiresAt).Hours()/24)
			ch <- prometheus.MustNewConstMetric(h.tokenDesc, prometheus.GaugeValue, days, name)
		}
	}
}

type healthWorker struct {
	river.WorkerDefaults[HealthArgs]
	s *Syncer
}

func (w *healthWorker) Timeout(*river.Job[HealthArgs]) time.Duration { return 5 * time.Minute }

// Work checks every integration; one failing check never stops the others.
func (w *healthWorker) Work(ctx context.Context, job *river.Job[HealthArgs]) error {
	_, err := w.s.CheckHealth(ctx)
	return err
}

// CheckHealth checks every integration's webhook and token now: a hook
// GitLab disabled is re-enabled with a test delivery (PROTOCOL.md §1.4),
// and a token that expires within 30 days is warned about.
func (s *Syncer) CheckHealth(ctx context.Context) (map[string]IntegrationHealth, error) {
	ins, err := store.ListIntegrations(ctx, s.deps.Store.Reader())
	if err != nil {
		return nil, err
	}
	all := map[string]IntegrationHealth{}
	for _, in := range ins {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		all[in.Name] = s.checkIntegration(cctx, in)
		cancel()
	}
	if s.deps.Health != nil {
		s.deps.Health.replace(all)
	}
	return all, nil
}

func (s *Syncer) checkIntegration(ctx context.Context, in store.Integration) IntegrationHealth {
	log := s.log.With("integration", in.Name)
	st := IntegrationHealth{CheckedAt: time.Now()}
	c, err := s.clients.get(in)
	if err != nil {
		st.TokenRejected, st.TokenProblem = true, err.Error()
		log.Error("cannot check the integration", "error", err)
		return st
	}
	s.checkHook(ctx, c, in, &st)
	exp, err := c.TokenExpiry(ctx)
	switch {
	case errors.Is(err, gitlab.ErrUnauthorized):
		st.TokenRejected, st.TokenProblem = true, err.Error()
		log.Error("GitLab rejects the integration's token: feedback and reconcile stop until it is replaced", "error", err)
	case err != nil:
		st.TokenProblem = err.Error()
		log.Warn("could not check the integration's token", "error", err)
	case exp != nil:
		st.TokenExpiresAt = exp
		if left := time.Until(*exp); left < tokenWarning && s.warnDue(in.Name) {
			log.Warn("the integration's GitLab token expires soon: create a new token with the api scope and run glenv integration:update "+in.Name+" --token …",
				"expires_at", exp.Format("2006-01-02"), "days_left", int(math.Max(0, left.Hours()/24)))
		}
	}
	return st
}

func (s *Syncer) checkHook(ctx context.Context, c *gitlab.Client, in store.Integration, st *IntegrationHealth) {
	log := s.log.With("integration", in.Name)
	var hook *gitlab.Hook
	var err error
	switch {
	case in.HookID != 0:
		hook, err = c.GetHook(ctx, in.ProjectID, in.HookID)
	case s.deps.PublicURL != "":
		hook, err = c.FindHook(ctx, in.ProjectID, s.deps.PublicURL+"/hooks/gitlab/"+in.Name)
	default:
		return
	}
	if err != nil {
		st.HookProblem = err.Error()
		log.Warn("could not read the integration's webhook", "error", err)
		return
	}
	if hook == nil {
		st.HookDisabled, st.HookProblem = true, "the webhook is missing: run glenv integration:validate "+in.Name+" to install it again"
		log.Warn("the integration's webhook is missing; events are lost until it is installed again (glenv integration:validate " + in.Name + ")")
		return
	}
	if hook.AlertStatus == "" || hook.AlertStatus == "executable" {
		return
	}
	until := ""
	if hook.DisabledUntil != nil {
		until = hook.DisabledUntil.Format(time.RFC3339)
	}
	if err := c.TestHook(ctx, in.ProjectID, hook.ID); err != nil {
		st.HookDisabled, st.HookProblem = true, "GitLab disabled the webhook ("+hook.AlertStatus+") and re-enabling it failed: "+err.Error()
		log.Warn("GitLab disabled the integration's webhook and re-enabling it failed; events are lost meanwhile",
			"alert_status", hook.AlertStatus, "disabled_until", until, "error", err)
		return
	}
	log.Warn("GitLab had disabled the integration's webhook; re-enabled it with a test delivery (reconcile repairs missed events)",
		"alert_status", hook.AlertStatus, "disabled_until", until)
}

// warnDue allows one expiry warning per integration a day.
func (s *Syncer) warnDue(integration string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warned == nil {
		s.warned = map[string]time.Time{}
	}
	if time.Since(s.warned[integration]) < 24*time.Hour {
		return false
	}
	s.warned[integration] = time.Now()
	return true
}
