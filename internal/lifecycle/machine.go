package lifecycle

import "fmt"

// The environment state machine, written down once. Every state change in
// glenv (webhooks, reconcile, requests through /api/v1 and /api/v4, the deploy
// and remove jobs, the runtime giving up on an app, a restart of glenv, the
// repair sweep, pausing) is a Trigger applied to a Subject by Transition; the
// environments service (internal/jobs) stores the Outcome in one short
// transaction and enqueues its Effects as jobs. Nothing here touches a
// database, a runtime or GitLab.

// Trigger is something that happens to one environment.
type Trigger string

const (
	// TriggerCreate creates the environment (or revives its tombstone),
	// active when Input.Activate, else inactive.
	TriggerCreate Trigger = "create"
	// TriggerDeployRequested is a new head to deploy (push, merge request
	// update, reconcile) on an environment that runs code.
	TriggerDeployRequested Trigger = "deploy requested"
	// TriggerRedeploy is a person asking to build and deploy the head again.
	TriggerRedeploy Trigger = "redeploy"
	// TriggerDeployStarted: the deploy job picked up its deploy.
	TriggerDeployStarted Trigger = "deploy started"
	// TriggerDeploySucceeded: the runtime serves Input.SHA.
	TriggerDeploySucceeded Trigger = "deploy succeeded"
	// TriggerDeployFailed: the runtime could not deploy (Input.Reason).
	TriggerDeployFailed Trigger = "deploy failed"
	// TriggerDeploySuperseded: the deploy job stopped because a newer head,
	// a stop or a delete took over the environment.
	TriggerDeploySuperseded Trigger = "deploy superseded"
	// TriggerDeployTimedOut: the deploy ran longer than its job may run.
	TriggerDeployTimedOut Trigger = "deploy timed out"
	// TriggerLost: the repair sweep found no job for a deploy, stop or
	// delete the environment waits for (its job or process is gone).
	TriggerLost Trigger = "lost"
	// TriggerStop is GitLab's stop (/api/v4): the environment is stopped at
	// once, as GitLab does without on_stop jobs, and its app removed after.
	TriggerStop Trigger = "stop"
	// TriggerDeactivate is Platform.sh's deactivate: stopping, then inactive.
	TriggerDeactivate Trigger = "deactivate"
	// TriggerActivate builds and deploys an inactive or paused environment.
	TriggerActivate Trigger = "activate"
	// TriggerDelete deletes the environment: stopping, then a tombstone.
	TriggerDelete Trigger = "delete"
	// TriggerDeleteStopped is GitLab's delete (/api/v4) of a stopped
	// environment: a tombstone at once, the runtime removed after.
	TriggerDeleteStopped Trigger = "delete stopped"
	// TriggerRemoved: the remove job freed what the environment held.
	TriggerRemoved Trigger = "removed"
	// TriggerSyncData clones the parent's data again and redeploys.
	TriggerSyncData Trigger = "sync data"
	// TriggerAppGaveUp: the runtime stopped restarting an app that kept exiting.
	TriggerAppGaveUp Trigger = "app gave up"
	// TriggerRestart: glenv started again; what was running must run again.
	TriggerRestart Trigger = "restart"
	// TriggerPause stops an idle environment's app, keeping its build and data.
	TriggerPause Trigger = "pause"
	// TriggerResume starts a paused environment again on request.
	TriggerResume Trigger = "resume"
	// TriggerWake starts a paused environment again because someone visited it.
	TriggerWake Trigger = "wake"
	// TriggerPrebuild builds the head of an inactive branch environment
	// without running it (--prebuild-branches, issue 17); it stays inactive.
	TriggerPrebuild Trigger = "prebuild"
	// TriggerPrebuildStarted: the prebuild job picked up its prebuild.
	TriggerPrebuildStarted Trigger = "prebuild started"
	// TriggerPrebuildSucceeded / TriggerPrebuildFailed: the prebuild job's
	// build is ready, or could not be made (Input.Reason). Neither changes
	// the environment's state: a failed prebuild is the next activation's
	// build failing early, not a failed environment.
	TriggerPrebuildSucceeded Trigger = "prebuild succeeded"
	TriggerPrebuildFailed    Trigger = "prebuild failed"
	// TriggerOwnerLost: the glenv replica that ran the environment (process
	// runtime) stopped heartbeating, and another replica takes it over. Its
	// build, app and files were on the lost replica, so what ran there is
	// built and deployed again on the new one.
	TriggerOwnerLost Trigger = "owner lost"
)

// Triggers lists every trigger, in the order the transition table shows them.
var Triggers = []Trigger{TriggerCreate, TriggerDeployRequested, TriggerRedeploy, TriggerDeployStarted,
	TriggerDeploySucceeded, TriggerDeployFailed, TriggerDeploySuperseded, TriggerDeployTimedOut, TriggerLost,
	TriggerStop, TriggerDeactivate, TriggerActivate, TriggerDelete, TriggerDeleteStopped, TriggerRemoved,
	TriggerSyncData, TriggerAppGaveUp, TriggerRestart, TriggerPause, TriggerResume, TriggerWake,
	TriggerPrebuild, TriggerPrebuildStarted, TriggerPrebuildSucceeded, TriggerPrebuildFailed, TriggerOwnerLost}

// States lists every state; "" is an environment that does not exist.
var States = []string{"", StateInactive, StateBuilding, StateDeploying, StateActive, StateFailed, StatePaused,
	StateStopping, StateDeleted}

// Activity kinds and outcomes (DESIGN.md "Model": every unit of work is one).
const (
	// ActivityDeploy builds (or reuses a build), clones data when asked and deploys.
	ActivityDeploy = "deploy"
	// ActivityStop removes an environment's app and keeps the environment.
	ActivityStop = "stop"
	// ActivityDelete removes an environment's app and leaves a tombstone.
	ActivityDelete = "delete"
	// ActivitySync records a change that needs no job (a head recorded, an edit).
	ActivitySync = "sync"
	// ActivityPause stops an idle environment's app.
	ActivityPause = "pause"
	// ActivityPrebuild fetches and builds an inactive environment's head
	// without running it.
	ActivityPrebuild = "prebuild"

	ActivityPending   = "pending"
	ActivityRunning   = "running"
	ActivityComplete  = "complete"
	ActivityFailed    = "failed"
	ActivityCancelled = "cancelled"
)

// Subject is what a transition needs to know of one environment.
type Subject struct {
	Name   string
	Kind   EnvKind
	Ref    string // "" for an environment created through the GitLab API
	Parent string
	// State is "" when the environment does not exist.
	State         string
	Detached      bool
	HeadSHA       string
	DeployedSHA   string
	DefaultBranch string // the integration's
	// Pending is the activity of the deploy, stop or delete whose job the
	// environment waits for (0: none). A job whose activity is not Pending
	// was superseded.
	Pending int64
}

// IsDefault reports whether s is the default branch's environment.
func (s Subject) IsDefault() bool { return IsDefaultBranch(s.Kind, s.Name, s.DefaultBranch) }

// IsDefaultBranch reports whether an environment is the default branch's:
// it is never deactivated, stopped or deleted on request (only deleting the
// integration removes it), and it is the production tier.
func IsDefaultBranch(kind EnvKind, name, defaultBranch string) bool {
	return kind == KindBranch && name != "" && name == defaultBranch
}

// Tier is the GitLab tier of an environment: the default branch's is
// production, merge requests' development (review apps), the rest staging.
func Tier(kind EnvKind, name, defaultBranch string) string {
	switch {
	case IsDefaultBranch(kind, name, defaultBranch):
		return "production"
	case kind == KindMR:
		return "development"
	default:
		return "staging"
	}
}

// Input is a trigger with what it carries.
type Input struct {
	Trigger Trigger
	// Activate creates the environment active (create).
	Activate bool
	// CloneParentData clones the parent's data into a new environment (create, deploy requested).
	CloneParentData bool
	// Activity is the job's own activity (deploy and remove triggers).
	Activity int64
	// SHA is the commit the deploy job deployed (deploy triggers).
	SHA string
	// Keep says a lost removal was a deactivation, not a delete (lost).
	Keep bool
	// Force is GitLab's stop with force=true: a stopping environment is
	// stopped at once (Environment#stop_with_actions! in GitLab's
	// app/models/environment.rb skips the stop actions when forced).
	Force bool
	// Reason says why, for failures and give-ups.
	Reason string
	// Prebuild says the job a lost trigger reports gone was a prebuild (lost).
	Prebuild bool
}

// EffectKind is work an outcome asks for, carried out by a job after the
// transaction that decided it commits.
type EffectKind string

const (
	// EffectDeploy fetches, builds and deploys the head (a deploy job).
	EffectDeploy EffectKind = "deploy"
	// EffectRemove stops the app and frees its port, directory and
	// databases (a remove job).
	EffectRemove EffectKind = "remove"
	// EffectStartApp starts the deployed build again, without building.
	EffectStartApp EffectKind = "start app"
	// EffectStopApp stops the app and keeps its build and data.
	EffectStopApp EffectKind = "stop app"
	// EffectPrebuild fetches and builds the head without running it (a prebuild job).
	EffectPrebuild EffectKind = "prebuild"
)

// Effect is one piece of work an outcome asks for.
type Effect struct {
	Kind EffectKind
	// CloneParentData copies the parent's data when the environment has none yet.
	CloneParentData bool
	// ResetData drops the environment's data first, so the clone is fresh
	// (environment:sync --data). The deploy job does it, never a transaction.
	ResetData bool
	// Keep removes the app but keeps the environment (deactivate, stop).
	Keep bool
	// Redeployed deploys the environment's deployed SHA rather than its
	// head: what ran on a lost replica runs again as it was (owner lost).
	Redeployed bool
}

// Outcome is what a trigger does to an environment.
type Outcome struct {
	// Refused says why the trigger is not allowed and what to do instead;
	// nothing else is set then.
	Refused string
	State   string
	// Deployed is the environment's deployed SHA afterwards.
	Deployed string
	// Tombstone marks the environment deleted (its name can be used again).
	Tombstone bool
	Effects   []Effect
	// Starts is the kind of the activity the effects are recorded under
	// (and the environment then waits for); "" when none starts.
	Starts string
	// Activity moves the job's own activity (deploy and remove triggers)
	// to this state with Result; "" leaves it as it is.
	Activity, Result string
}

// Changed reports whether the outcome changes anything.
func (o Outcome) Changed(s Subject) bool {
	return o.Refused == "" && (o.State != s.State || o.Deployed != s.DeployedSHA || o.Tombstone || len(o.Effects) > 0)
}

// live states run or may run code; they are "available" in GitLab's terms.
func live(state string) bool {
	switch state {
	case StateBuilding, StateDeploying, StateActive, StateFailed, StatePaused:
		return true
	}
	return false
}

// Transition decides what trigger in does to environment s.
func Transition(s Subject, in Input) Outcome {
	keep := Outcome{State: s.State, Deployed: s.DeployedSHA}
	refuse := func(format string, args ...any) Outcome { return Outcome{Refused: fmt.Sprintf(format, args...)} }
	deploy := func(clone, reset bool) Outcome {
		return Outcome{State: StateBuilding, Deployed: s.DeployedSHA, Starts: ActivityDeploy,
			Effects: []Effect{{Kind: EffectDeploy, CloneParentData: clone, ResetData: reset}}}
	}
	remove := func(state string, keepEnv bool) Outcome {
		o := Outcome{State: state, Deployed: s.DeployedSHA, Effects: []Effect{{Kind: EffectRemove, Keep: keepEnv}}, Starts: ActivityDelete}
		if keepEnv {
			o.Starts = ActivityStop
		}
		if state == StateInactive || state == StateDeleted {
			o.Deployed, o.Tombstone = "", state == StateDeleted
		}
		return o
	}
	prebuild := func() Outcome {
		return Outcome{State: s.State, Deployed: s.DeployedSHA, Starts: ActivityPrebuild, Effects: []Effect{{Kind: EffectPrebuild}}}
	}
	own := in.Activity != 0 && in.Activity == s.Pending
	superseded := func(why string) Outcome {
		o := keep
		o.Activity, o.Result = ActivityCancelled, why
		return o
	}

	// Requests people make are refused on environments glenv no longer manages.
	switch in.Trigger {
	case TriggerRedeploy, TriggerActivate, TriggerDeactivate, TriggerDelete, TriggerSyncData, TriggerPause, TriggerResume:
		if s.State == "" || s.State == StateDeleted {
			return refuse("environment %s does not exist", s.Name)
		}
		if s.Detached {
			return refuse("environment %s is detached from its deleted integration; re-add the integration to manage it", s.Name)
		}
	}
	switch in.Trigger {
	case TriggerRedeploy, TriggerActivate, TriggerSyncData, TriggerResume:
		if s.Ref == "" {
			return refuse("environment %s was created through the GitLab API and follows no branch, merge request or tag; there is nothing to build", s.Name)
		}
	}

	switch in.Trigger {
	case TriggerCreate:
		if s.State != "" && s.State != StateDeleted {
			return keep
		}
		if in.Activate && s.Ref == "" {
			// Created through GitLab's API: it follows nothing, so there is
			// nothing to build; it is available at once, as in GitLab.
			return Outcome{State: StateActive}
		}
		if in.Activate {
			o := deploy(in.CloneParentData, false)
			o.Deployed = ""
			return o
		}
		return Outcome{State: StateInactive}

	case TriggerDeployRequested:
		if !live(s.State) {
			return refuse("environment %s is %s: a new head is recorded, not deployed", s.Name, stateWords(s.State))
		}
		if s.State == StatePaused {
			// Issue 17: a push leaves a paused environment paused; the next
			// visit (wake) deploys the head recorded now.
			return refuse("environment %s is paused: the new head is recorded and deployed when it is next visited", s.Name)
		}
		return deploy(in.CloneParentData, false)

	case TriggerRedeploy:
		if !live(s.State) {
			return refuse("environment %s is %s; activate it first", s.Name, stateWords(s.State))
		}
		return deploy(false, false)

	case TriggerActivate:
		if s.State != StateInactive && s.State != StatePaused {
			return refuse("environment %s is %s, not inactive; use redeploy to rebuild it", s.Name, s.State)
		}
		return deploy(s.Parent != "", false)

	case TriggerSyncData:
		switch {
		case s.Parent == "":
			return refuse("environment %s has no parent to sync data from", s.Name)
		case !live(s.State):
			return refuse("environment %s is %s; activate it, which clones its parent's data", s.Name, stateWords(s.State))
		}
		return deploy(true, true)

	case TriggerDeployStarted:
		switch {
		case !own:
			return superseded("superseded before it started")
		case s.State == StateBuilding:
			return Outcome{State: StateDeploying, Deployed: s.DeployedSHA, Activity: ActivityRunning}
		case s.State == StateDeploying:
			// A retried job (rescued after its process died, or after an
			// error) finds its own deploy half done: it does it again.
			return Outcome{State: StateDeploying, Deployed: s.DeployedSHA, Activity: ActivityRunning, Result: "started again after an interruption"}
		}
		return superseded(fmt.Sprintf("superseded: the environment is %s", s.State))

	case TriggerDeploySucceeded, TriggerDeployFailed, TriggerDeployTimedOut:
		if !own || s.State != StateDeploying {
			return superseded("superseded by " + shortOr(s.HeadSHA, "a newer request"))
		}
		switch in.Trigger {
		case TriggerDeploySucceeded:
			return Outcome{State: StateActive, Deployed: in.SHA, Activity: ActivityComplete, Result: "deployed " + shortOr(in.SHA, "")}
		case TriggerDeployTimedOut:
			return Outcome{State: StateFailed, Deployed: s.DeployedSHA, Activity: ActivityFailed,
				Result: "timed out: " + in.Reason + "; raise --job-rescue-after or make the build faster, then redeploy"}
		}
		return Outcome{State: StateFailed, Deployed: s.DeployedSHA, Activity: ActivityFailed, Result: in.Reason}

	case TriggerDeploySuperseded:
		return superseded("superseded by " + shortOr(s.HeadSHA, "a newer request"))

	case TriggerLost:
		if in.Prebuild {
			// A prebuild whose job is gone: the head is still wanted built.
			if s.State == StateInactive && s.Kind == KindBranch && s.Ref != "" && !s.Detached {
				return prebuild()
			}
			return superseded("the prebuild's job was gone and the environment is " + stateWords(s.State))
		}
		switch s.State {
		case StateBuilding, StateDeploying:
			return deploy(s.Parent != "", false)
		case StateStopping:
			return remove(StateStopping, in.Keep)
		}
		return keep

	case TriggerStop:
		if s.IsDefault() || !live(s.State) && !(in.Force && s.State == StateStopping) {
			// GitLab answers a stop it does not do with the environment unchanged.
			return keep
		}
		return remove(StateInactive, true)

	case TriggerDeactivate:
		switch {
		case s.IsDefault():
			return refuse("%s is the default branch's environment; it cannot be deactivated", s.Name)
		case s.State == StateInactive:
			return keep
		case s.State == StateStopping:
			return refuse("environment %s is already being stopped or deleted", s.Name)
		}
		return remove(StateStopping, true)

	case TriggerDelete:
		switch {
		case s.IsDefault():
			return refuse("%s is the default branch's environment; it cannot be deleted (delete the integration instead)", s.Name)
		case s.State == "" || s.State == StateDeleted:
			return keep
		}
		return remove(StateStopping, false)

	case TriggerDeleteStopped:
		// GitLab's policy is stopped ⇒ deletable (app/policies/
		// environment_policy.rb, :destroy_environment needs a stopped
		// environment), the default branch's included: glenv never stops it,
		// so it is stopped here only if someone stopped it by other means.
		switch {
		case s.State != StateInactive:
			return refuse("environment %s is %s; stop it before deleting it", s.Name, s.State)
		}
		return remove(StateDeleted, false)

	case TriggerRemoved:
		switch {
		case !own:
			if s.State == StateInactive || s.State == StateDeleted || s.State == "" {
				// Stopped or deleted at once (GitLab's API): nothing left to change.
				return Outcome{State: s.State, Deployed: s.DeployedSHA, Activity: ActivityComplete, Result: doneWords(s.State)}
			}
			return superseded("the environment changed during the removal")
		case s.State != StateStopping:
			return Outcome{State: s.State, Deployed: s.DeployedSHA, Activity: ActivityComplete, Result: doneWords(s.State)}
		case in.Keep:
			return Outcome{State: StateInactive, Activity: ActivityComplete, Result: "deactivated"}
		}
		return Outcome{State: StateDeleted, Tombstone: true, Activity: ActivityComplete, Result: "deleted"}

	case TriggerAppGaveUp:
		if s.State != StateActive {
			return keep
		}
		return Outcome{State: StateFailed, Deployed: s.DeployedSHA}

	case TriggerRestart:
		switch {
		case s.State == StateActive && s.DeployedSHA != "":
			o := keep
			o.Effects = []Effect{{Kind: EffectStartApp}}
			return o
		case s.State == StateDeploying:
			// Caught mid-deploy: the old version is down and the job's process
			// is gone; deploy the head again rather than wait for a rescue.
			return deploy(s.Parent != "", false)
		}
		return keep

	case TriggerPause:
		switch s.State {
		case StatePaused:
			return keep
		case StateActive:
			return Outcome{State: StatePaused, Deployed: s.DeployedSHA, Effects: []Effect{{Kind: EffectStopApp}}, Starts: ActivityPause}
		}
		return refuse("environment %s is %s; only an active environment can be paused", s.Name, s.State)

	case TriggerResume:
		switch s.State {
		case StatePaused:
			return deploy(false, false)
		case StateActive, StateBuilding, StateDeploying:
			return keep
		}
		return refuse("environment %s is %s, not paused; use activate or redeploy", s.Name, stateWords(s.State))

	case TriggerWake:
		if s.State != StatePaused || s.Ref == "" {
			return keep
		}
		return deploy(false, false)

	case TriggerPrebuild:
		switch {
		case s.State != StateInactive:
			// An active environment builds its head by deploying it.
			return refuse("environment %s is %s: only an inactive environment is prebuilt", s.Name, stateWords(s.State))
		case s.Kind != KindBranch || s.Ref == "":
			return refuse("environment %s is not a branch's: only branch environments are prebuilt (--prebuild-branches)", s.Name)
		case s.Detached:
			return refuse("environment %s is detached from its deleted integration", s.Name)
		}
		return prebuild()

	case TriggerPrebuildStarted:
		switch {
		case !own:
			return superseded("superseded before it started")
		case s.State != StateInactive:
			return superseded(fmt.Sprintf("superseded: the environment is %s", stateWords(s.State)))
		}
		return Outcome{State: s.State, Deployed: s.DeployedSHA, Activity: ActivityRunning}

	case TriggerPrebuildSucceeded, TriggerPrebuildFailed:
		if !own || s.State != StateInactive {
			return superseded("superseded by " + shortOr(s.HeadSHA, "a newer request"))
		}
		if in.Trigger == TriggerPrebuildFailed {
			return Outcome{State: s.State, Deployed: s.DeployedSHA, Activity: ActivityFailed, Result: in.Reason}
		}
		return Outcome{State: s.State, Deployed: s.DeployedSHA, Activity: ActivityComplete, Result: "prebuilt " + shortOr(in.SHA, "")}

	case TriggerOwnerLost:
		// Issue 16: "when an owner's heartbeat stops, its environments are
		// deployed again on the others from their last deployed SHA". The
		// files it held were on the lost replica too: cloned again from the
		// parent, as for a new environment. A paused, inactive or failed
		// environment runs nothing and only changes owner.
		switch s.State {
		case StateActive:
			if s.DeployedSHA == "" || s.Ref == "" {
				return keep
			}
			o := deploy(s.Parent != "", false)
			o.Effects[0].Redeployed = true
			return o
		case StateBuilding, StateDeploying:
			return deploy(s.Parent != "", false)
		case StateStopping:
			return remove(StateStopping, in.Keep)
		}
		return keep
	}
	return refuse("unknown trigger %q", in.Trigger)
}

func stateWords(state string) string {
	if state == "" {
		return "missing"
	}
	return state
}

func doneWords(state string) string {
	if state == StateDeleted || state == "" {
		return "deleted"
	}
	return "stopped"
}

func shortOr(sha, otherwise string) string {
	if sha == "" {
		return otherwise
	}
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
