package feedback

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/glenv/glenv/internal/gitlab"
	"github.com/glenv/glenv/internal/store"
)

// gitLab is what a sync needs from GitLab.
type gitLab interface {
	SetCommitStatus(ctx context.Context, projectID int64, st gitlab.CommitStatus) error
	LatestCommitStatus(ctx context.Context, projectID int64, sha, name string) (string, error)
	FindMergeRequestNote(ctx context.Context, projectID, mrIID int64, marker string) (int64, string, error)
	CreateMergeRequestNote(ctx context.Context, projectID, mrIID int64, body string) (int64, error)
	UpdateMergeRequestNote(ctx context.Context, projectID, mrIID, noteID int64, body string) error
	FindEnvironment(ctx context.Context, projectID int64, name string) (*gitlab.Environment, error)
	CreateEnvironment(ctx context.Context, projectID int64, name, externalURL, tier string) (gitlab.Environment, error)
	SetEnvironmentURL(ctx context.Context, projectID, envID int64, externalURL string) error
	StopEnvironment(ctx context.Context, projectID, envID int64) error
	DeleteEnvironment(ctx context.Context, projectID, envID int64) error
	CreateDeployment(ctx context.Context, projectID int64, d gitlab.Deployment) (int64, error)
	SetDeploymentStatus(ctx context.Context, projectID, deploymentID int64, status string) error
	FindDeployment(ctx context.Context, projectID int64, environment, sha string, skip func(int64) bool) (*gitlab.Deployment, error)
}

// Syncer brings GitLab in line with glenv's environments. Each sync reads
// the environment's current state and what GitLab was already told, sends
// only the difference and records each answer as it comes, so a sync that
// is repeated or interrupted at any point sends nothing twice.
type Syncer struct {
	deps    Deps
	t       Timing
	log     *slog.Logger
	clients *clients

	mu      sync.Mutex
	blocked map[string]time.Time // integration → end of its 429
	warned  map[string]time.Time // integration → last token expiry warning
}

// NewSyncer builds a Syncer; Register does it for the queue.
func NewSyncer(deps Deps) *Syncer {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.GitLab.Timeout == 0 && deps.GitLab.DialTimeout == 0 && deps.GitLab.RetryMax == 0 && deps.GitLab.Gate == nil {
		deps.GitLab = gitlab.Options{Timeout: 15 * time.Second, RetryMax: -1}
	}
	if deps.LogURL == nil {
		base := deps.PublicURL
		deps.LogURL = func(id int64) string { return fmt.Sprintf("%s/api/v1/activities/%d/log", base, id) }
	}
	if deps.EnvURL == nil {
		deps.EnvURL = func(store.Environment) string { return "" }
	}
	s := &Syncer{deps: deps, t: deps.Timing.withDefaults(), log: deps.Logger,
		clients: &clients{byKey: map[string]clientEntry{}, token: deps.Token, opts: deps.GitLab},
		blocked: map[string]time.Time{}}
	s.clients.blockedUntil = s.blockedUntil
	return s
}

// Sync makes GitLab show environment envID as it is now. When another sync
// holds the environment or GitLab rate-limited its integration it returns
// an error and sends nothing; call it again later.
func (s *Syncer) Sync(ctx context.Context, envID int64) error {
	_, err := s.sync(ctx, envID, newOwner(), nil)
	return err
}

func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sync is Sync under the lease of owner. It ends with a transaction that
// checks whether the environment moved on or was notified about while it
// ran: then changed is true (sync again); otherwise complete, if set, runs
// in that transaction (the job completes atomically with the check, so a
// notification skipped as a duplicate of this job cannot be lost).
func (s *Syncer) sync(ctx context.Context, envID int64, owner string, complete func(context.Context, *sql.Tx) error) (changed bool, err error) {
	st := s.deps.Store
	ok, until, err := store.AcquireFeedbackLease(ctx, st.DB, envID, owner, time.Now().Add(s.t.SyncTimeout+30*time.Second))
	if err != nil {
		return false, fmt.Errorf("take the feedback lease of environment %d: %w", envID, err)
	}
	if !ok {
		return false, &waitError{Until: until, Reason: fmt.Sprintf("another sync holds environment %d", envID), Busy: true}
	}
	defer func() {
		if rerr := store.ReleaseFeedbackLease(context.WithoutCancel(ctx), st.DB, envID, owner); rerr != nil && err == nil {
			err = rerr
		}
	}()
	requested, err := store.FeedbackRequested(ctx, st.Reader(), envID, st.Dialect)
	if err != nil {
		return false, err
	}
	version, err := store.FeedbackVersion(ctx, st.Reader(), envID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	env, err := store.FeedbackEnvironment(ctx, st.Reader(), envID)
	if err != nil {
		return false, err
	}
	fe, err := store.GetFeedbackEnv(ctx, st.Reader(), envID)
	if err != nil {
		return false, err
	}
	if err := s.apply(ctx, env, &fe); err != nil {
		return false, err
	}
	fe.SyncedVersion = version
	if err := store.SaveFeedbackEnv(ctx, st.DB, &fe); err != nil {
		return false, err
	}
	err = st.Tx(ctx, func(tx *sql.Tx) error {
		req, err := store.FeedbackRequested(ctx, tx, envID, st.Dialect)
		if err != nil {
			return err
		}
		ver, err := store.FeedbackVersion(ctx, tx, envID)
		if err != nil {
			return err
		}
		if changed = req != requested || ver > version; changed || complete == nil {
			return nil
		}
		return complete(ctx, tx)
	})
	return changed, err
}

// pass is one sync of one environment.
type pass struct {
	*Syncer
	ctx    context.Context
	env    store.Environment
	in     store.Integration
	gl     gitLab
	fe     *store.FeedbackEnv
	envURL string
	// extURL is envURL as the GitLab environment's external_url: empty when
	// longer than GitLab's 255 characters (a cut URL would lead elsewhere).
	extURL string
	log    *slog.Logger
}

func (s *Syncer) apply(ctx context.Context, env store.Environment, fe *store.FeedbackEnv) error {
	if env.Detached || env.IntegrationName == "" {
		return nil // no GitLab to report to
	}
	in, err := store.GetIntegration(ctx, s.deps.Store.Reader(), env.IntegrationName)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if until := s.blockedUntil(in.Name); time.Now().Before(until) {
		return &waitError{Until: until, Reason: "GitLab rate-limited integration " + in.Name}
	}
	c, err := s.clients.get(in)
	if err != nil {
		return err
	}
	p := &pass{Syncer: s, ctx: ctx, env: env, in: in, gl: c, fe: fe, envURL: s.deps.EnvURL(env),
		log: s.log.With("integration", in.Name, "environment", env.Name)}
	if utf8.RuneCountInString(p.envURL) <= gitlab.StatusField {
		p.extURL = p.envURL
	}
	return s.noteLimit(in.Name, p.run())
}

// noteLimit remembers a 429 for the whole integration, so other syncs wait
// for GitLab's reset instead of adding to the storm.
func (s *Syncer) noteLimit(integration string, err error) error {
	var rl *gitlab.RateLimitError
	if !errors.As(err, &rl) {
		return err
	}
	s.mu.Lock()
	if rl.Reset.After(s.blocked[integration]) {
		s.blocked[integration] = rl.Reset
	}
	s.mu.Unlock()
	return &waitError{Until: rl.Reset, Reason: rl.Error()}
}

func (s *Syncer) blockedUntil(integration string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[integration]
}

func (p *pass) run() error {
	deleted := p.env.State == store.StateDeleted || !p.env.DeletedAt.IsZero()
	deploys, err := store.FeedbackDeploys(p.ctx, p.deps.Store.Reader(), p.env.ID, p.t.Window)
	if err != nil {
		return err
	}
	for i := range deploys {
		d := &deploys[i]
		if p.history(*d, i == len(deploys)-1) {
			// Finished before glenv reported to GitLab (feedback just turned
			// on): only the newest deploy is worth showing.
			d.Settled = d.State
			if err := store.SaveFeedbackDeploy(p.ctx, p.deps.Store.DB, d); err != nil {
				return err
			}
			continue
		}
		if d.Settled != d.State {
			if err := p.deploy(d, deleted); err != nil {
				return err
			}
		}
	}
	if p.env.Kind == "mr" && p.env.MRIID > 0 {
		err := p.note(deploys)
		if errors.Is(err, gitlab.ErrNotFound) || errors.Is(err, gitlab.ErrForbidden) {
			// The merge request is gone or hidden from the token: nothing a
			// retry fixes, and the GitLab environment must still follow.
			p.log.Warn("cannot comment on the merge request; skipping the note", "mr_iid", p.env.MRIID, "error", err)
			err = nil
		}
		if err != nil {
			return err
		}
	}
	switch {
	case deleted:
		return p.removeEnvironment()
	case p.env.State == store.StateInactive && p.fe.GitLabEnvState == "available":
		if err := p.gl.StopEnvironment(p.ctx, p.in.ProjectID, p.fe.GitLabEnvID); err != nil && !errors.Is(err, gitlab.ErrNotFound) {
			return err
		}
		p.fe.GitLabEnvState = "stopped"
		return p.saveEnv()
	}
	return nil
}

// history reports a finished deploy GitLab was never told about that
// predates feedback for its environment by more than a minute.
func (p *pass) history(d store.FeedbackDeploy, newest bool) bool {
	untouched := d.Settled == "" && d.StatusSent == "" && d.StatusTrying == "" && d.DeploymentID == 0 && !d.DeploymentTrying
	finished := d.State != store.ActivityPending && d.State != store.ActivityRunning
	return untouched && finished && !newest && d.CreatedAt.Before(p.fe.CreatedAt.Add(-time.Minute))
}

func (p *pass) saveEnv() error { return store.SaveFeedbackEnv(p.ctx, p.deps.Store.DB, p.fe) }

func (p *pass) saveDeploy(d *store.FeedbackDeploy) error {
	if settled(*d) {
		d.Settled = d.State
	}
	return store.SaveFeedbackDeploy(p.ctx, p.deps.Store.DB, d)
}

// deploy brings one deploy's commit status and deployment up to date.
func (p *pass) deploy(d *store.FeedbackDeploy, deleted bool) error {
	if err := p.commitStatus(d); err != nil {
		return err
	}
	if err := p.deployment(d, deleted); err != nil {
		return err
	}
	return p.saveDeploy(d)
}

func (p *pass) commitStatus(d *store.FeedbackDeploy) error {
	want := commitState(d.State)
	if d.StatusSent == want || final(d.StatusSent) {
		return nil
	}
	name := statusName(p.env)
	if final(want) && d.StatusTrying == want {
		// The last send's answer was lost: GitLab may have it, and
		// repeating a final status would add a second one.
		got, err := p.gl.LatestCommitStatus(p.ctx, p.in.ProjectID, d.SHA, name)
		if err != nil {
			return err
		}
		if got == want {
			d.StatusSent = want
			return p.saveDeploy(d)
		}
	}
	if final(want) && d.StatusTrying != want {
		d.StatusTrying = want
		if err := p.saveDeploy(d); err != nil {
			return err
		}
	}
	err := p.gl.SetCommitStatus(p.ctx, p.in.ProjectID, statusFor(p.env, *d, p.statusURL(*d), p.deps.LogURL(d.ActivityID)))
	if err != nil && !errors.Is(err, gitlab.ErrAlreadyInState) {
		return err
	}
	d.StatusSent = want
	return p.saveDeploy(d)
}

func (p *pass) deployment(d *store.FeedbackDeploy, deleted bool) error {
	want := deploymentState(d.State)
	if want == "" || d.DeploymentStatus == want || final(d.DeploymentStatus) {
		return nil
	}
	if d.DeploymentID == 0 {
		if (d.State == store.ActivityCancelled && !d.DeploymentTrying) || deleted {
			// It never ran (or its environment is gone): nothing to record.
			d.DeploymentStatus = skipped
			return p.saveDeploy(d)
		}
		if err := p.createDeployment(d, want); err != nil || d.DeploymentID == 0 || d.DeploymentStatus == want {
			return err
		}
	}
	err := p.gl.SetDeploymentStatus(p.ctx, p.in.ProjectID, d.DeploymentID, want)
	switch {
	case errors.Is(err, gitlab.ErrNotFound), errors.Is(err, gitlab.ErrForbidden):
		p.log.Warn("GitLab deployment cannot be updated; leaving it", "deployment", d.DeploymentID, "error", err)
		want = skipped
	case err != nil && !errors.Is(err, gitlab.ErrAlreadyInState):
		return err
	}
	d.DeploymentStatus = want
	if want == "success" {
		p.fe.GitLabEnvState = "available" // a successful deployment restarts a stopped environment
		if err := p.saveEnv(); err != nil {
			return err
		}
	}
	return p.saveDeploy(d)
}

// createDeployment creates d's GitLab deployment with status want, first
// looking for one whose creation was sent before but not recorded.
func (p *pass) createDeployment(d *store.FeedbackDeploy, want string) error {
	if err := p.ensureEnvironment(); err != nil {
		return err
	}
	if d.DeploymentTrying {
		claimed, err := store.FeedbackDeploymentClaims(p.ctx, p.deps.Store.Reader(), p.env.ID)
		if err != nil {
			return err
		}
		found, err := p.gl.FindDeployment(p.ctx, p.in.ProjectID, p.fe.GitLabEnvName, d.SHA, claimed.Has)
		if err != nil {
			return err
		}
		if found != nil {
			d.DeploymentID, d.DeploymentStatus, d.DeploymentTrying = found.ID, found.Status, false
			return p.saveDeploy(d)
		}
	}
	d.DeploymentTrying = true
	if err := p.saveDeploy(d); err != nil {
		return err
	}
	id, err := p.gl.CreateDeployment(p.ctx, p.in.ProjectID, gitlab.Deployment{Environment: p.fe.GitLabEnvName,
		SHA: d.SHA, Ref: p.env.Ref, Tag: p.env.Kind == "tag", Status: want})
	switch {
	case errors.Is(err, gitlab.ErrRefMissing), errors.Is(err, gitlab.ErrForbidden):
		p.log.Warn("GitLab refused the deployment; the commit status still shows the deploy", "sha", d.SHA, "error", err)
		d.DeploymentStatus, d.DeploymentTrying = skipped, false
		return p.saveDeploy(d)
	case err != nil:
		return err
	}
	d.DeploymentID, d.DeploymentStatus, d.DeploymentTrying = id, want, false
	if want == "success" {
		p.fe.GitLabEnvState = "available"
		if err := p.saveEnv(); err != nil {
			return err
		}
	}
	return p.saveDeploy(d)
}

// ensureEnvironment makes sure the GitLab environment exists with the
// environment's URL: found by name before it is created, so a creation
// whose answer was lost is not repeated.
func (p *pass) ensureEnvironment() error {
	fe := p.fe
	if fe.GitLabEnvID != 0 && fe.GitLabEnvState != "deleted" {
		if fe.GitLabEnvURL == p.extURL {
			return nil
		}
		err := p.gl.SetEnvironmentURL(p.ctx, p.in.ProjectID, fe.GitLabEnvID, p.extURL)
		if err == nil {
			fe.GitLabEnvURL = p.extURL
			return p.saveEnv()
		}
		if !errors.Is(err, gitlab.ErrNotFound) {
			return err
		}
		fe.GitLabEnvID = 0 // someone deleted it: find or create it again
	}
	if fe.GitLabEnvName == "" || fe.GitLabEnvState == "deleted" {
		fe.GitLabEnvName, fe.GitLabEnvState = gitlabEnvName(p.env), ""
		if err := p.saveEnv(); err != nil {
			return err
		}
	}
	found, err := p.gl.FindEnvironment(p.ctx, p.in.ProjectID, fe.GitLabEnvName)
	if err != nil {
		return err
	}
	if found == nil {
		created, err := p.gl.CreateEnvironment(p.ctx, p.in.ProjectID, fe.GitLabEnvName, p.extURL, p.env.Tier)
		if errors.Is(err, gitlab.ErrAlreadyInState) {
			found, err = p.gl.FindEnvironment(p.ctx, p.in.ProjectID, fe.GitLabEnvName)
		} else if err == nil {
			found = &created
		}
		if err != nil {
			return err
		}
		if found == nil {
			return fmt.Errorf("GitLab environment %s: GitLab says the name is taken but does not list it", fe.GitLabEnvName)
		}
	}
	fe.GitLabEnvID, fe.GitLabEnvURL, fe.GitLabEnvState = found.ID, found.ExternalURL, found.State
	if err := p.saveEnv(); err != nil {
		return err
	}
	if found.ExternalURL != p.extURL {
		if err := p.gl.SetEnvironmentURL(p.ctx, p.in.ProjectID, found.ID, p.extURL); err != nil {
			return err
		}
		fe.GitLabEnvURL = p.extURL
		return p.saveEnv()
	}
	return nil
}

// removeEnvironment stops and deletes the GitLab environment of a deleted
// glenv environment (GitLab deletes only stopped ones).
func (p *pass) removeEnvironment() error {
	fe := p.fe
	if fe.GitLabEnvName == "" || fe.GitLabEnvState == "deleted" {
		return nil
	}
	if fe.GitLabEnvID == 0 {
		found, err := p.gl.FindEnvironment(p.ctx, p.in.ProjectID, fe.GitLabEnvName)
		if err != nil {
			return err
		}
		if found == nil {
			fe.GitLabEnvState = "deleted"
			return p.saveEnv()
		}
		fe.GitLabEnvID, fe.GitLabEnvState = found.ID, found.State
	}
	if fe.GitLabEnvState != "stopped" {
		err := p.gl.StopEnvironment(p.ctx, p.in.ProjectID, fe.GitLabEnvID)
		if err != nil && !errors.Is(err, gitlab.ErrNotFound) {
			return err
		}
		fe.GitLabEnvState = "stopped"
		if err := p.saveEnv(); err != nil {
			return err
		}
	}
	if err := p.gl.DeleteEnvironment(p.ctx, p.in.ProjectID, fe.GitLabEnvID); err != nil {
		return err
	}
	fe.GitLabEnvID, fe.GitLabEnvState = 0, "deleted"
	return p.saveEnv()
}

// noteCreating is the note hash recorded just before a note is created: the
// creation may have reached GitLab even if its answer did not.
const noteCreating = "creating"

// note keeps the merge request's one glenv note current: found by its
// marker before one is created, edited in place, recreated once if a person
// deleted it.
func (p *pass) note(deploys []store.FeedbackDeploy) error {
	fe := p.fe
	v := newNoteView(p.env, deploys)
	v.EnvURL = p.envURL
	if p.deps.DashboardURL != nil {
		v.DashboardURL = p.deps.DashboardURL(p.env)
	}
	v.ProjectURL = projectURL(p.in)
	if v.Newest != nil {
		v.LogURL = p.deps.LogURL(v.Newest.ActivityID)
	}
	body := v.body()
	hash := hashBody(body)
	switch {
	case fe.NoteHash == hash:
		return nil
	case fe.NoteID == 0 && fe.NoteHash == "" && (v.Newest == nil || p.env.State == store.StateDeleted):
		return nil // nothing to say yet, or too late to start saying it
	case fe.NoteID != 0 && !v.settled():
		return nil // the outcome will be shown in one edit
	}
	for attempt := 0; attempt < 2; attempt++ {
		if fe.NoteID == 0 {
			id, old, err := p.gl.FindMergeRequestNote(p.ctx, p.in.ProjectID, p.env.MRIID, marker(p.env))
			if err != nil {
				return err
			}
			if id == 0 {
				fe.NoteHash = noteCreating
				if err := p.saveEnv(); err != nil {
					return err
				}
				if fe.NoteID, err = p.gl.CreateMergeRequestNote(p.ctx, p.in.ProjectID, p.env.MRIID, body); err != nil {
					return err
				}
				fe.NoteHash = hash
				return p.saveEnv()
			}
			fe.NoteID, fe.NoteHash = id, hashBody(old)
			if err := p.saveEnv(); err != nil {
				return err
			}
			if fe.NoteHash == hash {
				return nil
			}
		}
		err := p.gl.UpdateMergeRequestNote(p.ctx, p.in.ProjectID, p.env.MRIID, fe.NoteID, body)
		if errors.Is(err, gitlab.ErrNotFound) {
			p.log.Info("the merge request note was deleted; writing it again", "note", fe.NoteID)
			fe.NoteID = 0
			continue
		}
		if err != nil {
			return err
		}
		fe.NoteHash = hash
		return p.saveEnv()
	}
	return nil
}

// projectURL is the project's web address people can open.
func projectURL(in store.Integration) string {
	base := in.UserFacingURL
	if base == "" {
		base = in.BaseURL
	}
	if in.ProjectPath == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/" + in.ProjectPath
}

// statusURL is a status's target_url while the deploy is not failed: the
// dashboard's page while it is queued or running (its log follows live
// there; the app is not up yet), the app once it is.
func (p *pass) statusURL(d store.FeedbackDeploy) string {
	if p.deps.DashboardURL == nil || (d.State != store.ActivityPending && d.State != store.ActivityRunning) {
		return p.envURL
	}
	if u := p.deps.DashboardURL(p.env); utf8.RuneCountInString(u) <= gitlab.StatusField {
		return u
	}
	return p.envURL
}
