package lifecycle

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/transitions.md from Transition")

func subject(state string, mod ...func(*Subject)) Subject {
	s := Subject{Name: "feature", Kind: KindBranch, Ref: "feature", Parent: "main", State: state, HeadSHA: shaB,
		DeployedSHA: shaA, DefaultBranch: "main", Pending: 10}
	if state == "" {
		s.DeployedSHA, s.Pending = "", 0
	}
	for _, m := range mod {
		m(&s)
	}
	return s
}

func defaultBranch(s *Subject) { s.Name, s.Ref, s.Parent = "main", "main", "" }
func noParent(s *Subject)      { s.Parent = "" }
func noRef(s *Subject)         { s.Ref = "" }
func detached(s *Subject)      { s.Detached = true }

func deployEffect(clone, reset bool) []Effect {
	return []Effect{{Kind: EffectDeploy, CloneParentData: clone, ResetData: reset}}
}

func TestTransition(t *testing.T) {
	tests := []struct {
		name    string
		s       Subject
		in      Input
		want    Outcome
		refused string // part of the refusal
	}{
		// Creation.
		{name: "a new environment created inactive runs nothing",
			s: subject(""), in: Input{Trigger: TriggerCreate},
			want: Outcome{State: StateInactive}},
		{name: "a new environment created active is built with its parent's data when asked",
			s: subject(""), in: Input{Trigger: TriggerCreate, Activate: true, CloneParentData: true},
			want: Outcome{State: StateBuilding, Starts: ActivityDeploy, Effects: deployEffect(true, false)}},
		{name: "an environment created through GitLab's API is available at once with nothing to build",
			s: subject("", noRef), in: Input{Trigger: TriggerCreate, Activate: true},
			want: Outcome{State: StateActive}},
		{name: "a tombstone is revived by a create",
			s: subject(StateDeleted, func(s *Subject) { s.DeployedSHA = "" }), in: Input{Trigger: TriggerCreate},
			want: Outcome{State: StateInactive}},
		{name: "creating an environment that exists changes nothing",
			s: subject(StateActive), in: Input{Trigger: TriggerCreate, Activate: true},
			want: Outcome{State: StateActive, Deployed: shaA}},

		// Deploys requested by GitLab and by people.
		{name: "a new head on an active environment is deployed",
			s: subject(StateActive), in: Input{Trigger: TriggerDeployRequested},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "a new head on a building environment supersedes the build",
			s: subject(StateBuilding), in: Input{Trigger: TriggerDeployRequested},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "a new head on a failed environment is deployed",
			s: subject(StateFailed), in: Input{Trigger: TriggerDeployRequested},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "a new head on an inactive environment is only recorded",
			s: subject(StateInactive), in: Input{Trigger: TriggerDeployRequested}, refused: "recorded, not deployed"},
		{name: "a new head on a stopping environment is only recorded",
			s: subject(StateStopping), in: Input{Trigger: TriggerDeployRequested}, refused: "recorded, not deployed"},
		{name: "redeploy rebuilds an active environment",
			s: subject(StateActive), in: Input{Trigger: TriggerRedeploy},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "redeploy of an inactive environment asks to activate it",
			s: subject(StateInactive), in: Input{Trigger: TriggerRedeploy}, refused: "activate it first"},
		{name: "redeploy of an environment that follows nothing is refused",
			s: subject(StateActive, noRef), in: Input{Trigger: TriggerRedeploy}, refused: "nothing to build"},
		{name: "a detached environment refuses requests",
			s: subject(StateActive, detached), in: Input{Trigger: TriggerRedeploy}, refused: "re-add the integration"},
		{name: "activate builds an inactive environment with its parent's data",
			s: subject(StateInactive), in: Input{Trigger: TriggerActivate},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(true, false)}},
		{name: "activate of an environment without parent clones nothing",
			s: subject(StateInactive, noParent), in: Input{Trigger: TriggerActivate},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "activate of an active environment points at redeploy",
			s: subject(StateActive), in: Input{Trigger: TriggerActivate}, refused: "use redeploy"},
		{name: "sync data resets the data in the deploy job, never in the request",
			s: subject(StateActive), in: Input{Trigger: TriggerSyncData},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(true, true)}},
		{name: "sync data during a deploy takes over the deploy",
			s: subject(StateDeploying), in: Input{Trigger: TriggerSyncData},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(true, true)}},
		{name: "sync data without a parent is refused",
			s: subject(StateActive, noParent), in: Input{Trigger: TriggerSyncData}, refused: "no parent"},
		{name: "sync data of an inactive environment asks to activate it",
			s: subject(StateInactive), in: Input{Trigger: TriggerSyncData}, refused: "activate it"},

		// The deploy job.
		{name: "the deploy job starting its own deploy moves building to deploying",
			s: subject(StateBuilding), in: Input{Trigger: TriggerDeployStarted, Activity: 10},
			want: Outcome{State: StateDeploying, Deployed: shaA, Activity: ActivityRunning}},
		{name: "a retried deploy job that finds its own deploy half done redoes it",
			s: subject(StateDeploying), in: Input{Trigger: TriggerDeployStarted, Activity: 10},
			want: Outcome{State: StateDeploying, Deployed: shaA, Activity: ActivityRunning, Result: "started again after an interruption"}},
		{name: "a deploy job whose deploy was replaced is superseded before it starts",
			s: subject(StateBuilding), in: Input{Trigger: TriggerDeployStarted, Activity: 9},
			want: Outcome{State: StateBuilding, Deployed: shaA, Activity: ActivityCancelled, Result: "superseded before it started"}},
		{name: "a deploy that succeeds makes the environment active on its SHA",
			s: subject(StateDeploying), in: Input{Trigger: TriggerDeploySucceeded, Activity: 10, SHA: shaB},
			want: Outcome{State: StateActive, Deployed: shaB, Activity: ActivityComplete, Result: "deployed bbbbbbbb"}},
		{name: "a deploy that fails makes the environment failed with the reason",
			s: subject(StateDeploying), in: Input{Trigger: TriggerDeployFailed, Activity: 10, Reason: "build: exit status 1"},
			want: Outcome{State: StateFailed, Deployed: shaA, Activity: ActivityFailed, Result: "build: exit status 1"}},
		{name: "a deploy that times out fails and says what to do",
			s: subject(StateDeploying), in: Input{Trigger: TriggerDeployTimedOut, Activity: 10, Reason: "ran longer than 6m"},
			want: Outcome{State: StateFailed, Deployed: shaA, Activity: ActivityFailed,
				Result: "timed out: ran longer than 6m; raise --job-rescue-after or make the build faster, then redeploy"}},
		{name: "a deploy that finishes after a newer request changes nothing but its activity",
			s: subject(StateBuilding), in: Input{Trigger: TriggerDeploySucceeded, Activity: 9, SHA: shaA},
			want: Outcome{State: StateBuilding, Deployed: shaA, Activity: ActivityCancelled, Result: "superseded by bbbbbbbb"}},
		{name: "a superseded deploy leaves the environment to the newer one",
			s: subject(StateBuilding), in: Input{Trigger: TriggerDeploySuperseded, Activity: 9},
			want: Outcome{State: StateBuilding, Deployed: shaA, Activity: ActivityCancelled, Result: "superseded by bbbbbbbb"}},
		{name: "a lost deploy is deployed again",
			s: subject(StateDeploying), in: Input{Trigger: TriggerLost},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(true, false)}},
		{name: "a lost deletion is removed again",
			s: subject(StateStopping), in: Input{Trigger: TriggerLost},
			want: Outcome{State: StateStopping, Deployed: shaA, Starts: ActivityDelete, Effects: []Effect{{Kind: EffectRemove}}}},
		{name: "a lost deactivation is removed again and keeps the environment",
			s: subject(StateStopping), in: Input{Trigger: TriggerLost, Keep: true},
			want: Outcome{State: StateStopping, Deployed: shaA, Starts: ActivityStop, Effects: []Effect{{Kind: EffectRemove, Keep: true}}}},
		{name: "nothing is lost on an active environment",
			s: subject(StateActive), in: Input{Trigger: TriggerLost},
			want: Outcome{State: StateActive, Deployed: shaA}},

		// Stopping and deleting.
		{name: "GitLab's stop makes an environment inactive at once and removes its app",
			s: subject(StateActive), in: Input{Trigger: TriggerStop},
			want: Outcome{State: StateInactive, Starts: ActivityStop, Effects: []Effect{{Kind: EffectRemove, Keep: true}}}},
		{name: "GitLab's stop leaves the default branch's environment running",
			s: subject(StateActive, defaultBranch), in: Input{Trigger: TriggerStop},
			want: Outcome{State: StateActive, Deployed: shaA}},
		{name: "GitLab's stop of an inactive environment changes nothing",
			s: subject(StateInactive), in: Input{Trigger: TriggerStop},
			want: Outcome{State: StateInactive, Deployed: shaA}},
		{name: "deactivate stops the app and keeps the environment",
			s: subject(StateActive), in: Input{Trigger: TriggerDeactivate},
			want: Outcome{State: StateStopping, Deployed: shaA, Starts: ActivityStop, Effects: []Effect{{Kind: EffectRemove, Keep: true}}}},
		{name: "the default branch's environment cannot be deactivated",
			s: subject(StateActive, defaultBranch), in: Input{Trigger: TriggerDeactivate}, refused: "cannot be deactivated"},
		{name: "deactivating an inactive environment changes nothing",
			s: subject(StateInactive), in: Input{Trigger: TriggerDeactivate},
			want: Outcome{State: StateInactive, Deployed: shaA}},
		{name: "delete goes through stopping and removes the app",
			s: subject(StateActive), in: Input{Trigger: TriggerDelete},
			want: Outcome{State: StateStopping, Deployed: shaA, Starts: ActivityDelete, Effects: []Effect{{Kind: EffectRemove}}}},
		{name: "delete during a deactivation takes it over",
			s: subject(StateStopping), in: Input{Trigger: TriggerDelete},
			want: Outcome{State: StateStopping, Deployed: shaA, Starts: ActivityDelete, Effects: []Effect{{Kind: EffectRemove}}}},
		{name: "the default branch's environment cannot be deleted",
			s: subject(StateActive, defaultBranch), in: Input{Trigger: TriggerDelete}, refused: "delete the integration instead"},
		{name: "GitLab's delete of a stopped environment leaves a tombstone at once",
			s: subject(StateInactive, func(s *Subject) { s.DeployedSHA = "" }), in: Input{Trigger: TriggerDeleteStopped},
			want: Outcome{State: StateDeleted, Tombstone: true, Starts: ActivityDelete, Effects: []Effect{{Kind: EffectRemove}}}},
		{name: "GitLab's delete of the stopped default branch's environment follows GitLab's policy: stopped is deletable",
			s: subject(StateInactive, defaultBranch, func(s *Subject) { s.DeployedSHA = "" }), in: Input{Trigger: TriggerDeleteStopped},
			want: Outcome{State: StateDeleted, Tombstone: true, Starts: ActivityDelete, Effects: []Effect{{Kind: EffectRemove}}}},
		{name: "GitLab's stop with force stops a stopping environment at once",
			s: subject(StateStopping), in: Input{Trigger: TriggerStop, Force: true},
			want: Outcome{State: StateInactive, Starts: ActivityStop, Effects: []Effect{{Kind: EffectRemove, Keep: true}}}},
		{name: "GitLab's stop without force leaves a stopping environment stopping",
			s: subject(StateStopping), in: Input{Trigger: TriggerStop},
			want: Outcome{State: StateStopping, Deployed: shaA}},
		{name: "GitLab's delete of a running environment is refused",
			s: subject(StateActive), in: Input{Trigger: TriggerDeleteStopped}, refused: "stop it before deleting it"},
		{name: "a finished deletion leaves a tombstone",
			s: subject(StateStopping), in: Input{Trigger: TriggerRemoved, Activity: 10},
			want: Outcome{State: StateDeleted, Tombstone: true, Activity: ActivityComplete, Result: "deleted"}},
		{name: "a finished deactivation leaves the environment inactive with nothing deployed",
			s: subject(StateStopping), in: Input{Trigger: TriggerRemoved, Activity: 10, Keep: true},
			want: Outcome{State: StateInactive, Activity: ActivityComplete, Result: "deactivated"}},
		{name: "a removal after GitLab's stop completes its activity",
			s: subject(StateInactive), in: Input{Trigger: TriggerRemoved, Activity: 10, Keep: true},
			want: Outcome{State: StateInactive, Deployed: shaA, Activity: ActivityComplete, Result: "stopped"}},
		{name: "a removal overtaken by an activation changes nothing",
			s: subject(StateBuilding), in: Input{Trigger: TriggerRemoved, Activity: 9, Keep: true},
			want: Outcome{State: StateBuilding, Deployed: shaA, Activity: ActivityCancelled, Result: "the environment changed during the removal"}},

		// The runtime, glenv itself, and pausing.
		{name: "an app the runtime gave up on fails its environment",
			s: subject(StateActive), in: Input{Trigger: TriggerAppGaveUp},
			want: Outcome{State: StateFailed, Deployed: shaA}},
		{name: "an app giving up on an inactive environment changes nothing",
			s: subject(StateInactive), in: Input{Trigger: TriggerAppGaveUp},
			want: Outcome{State: StateInactive, Deployed: shaA}},
		{name: "a restart starts active environments from their builds",
			s: subject(StateActive), in: Input{Trigger: TriggerRestart},
			want: Outcome{State: StateActive, Deployed: shaA, Effects: []Effect{{Kind: EffectStartApp}}}},
		{name: "a restart deploys again what it caught mid-deploy",
			s: subject(StateDeploying), in: Input{Trigger: TriggerRestart},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(true, false)}},
		{name: "a restart leaves a queued build to its job",
			s: subject(StateBuilding), in: Input{Trigger: TriggerRestart},
			want: Outcome{State: StateBuilding, Deployed: shaA}},
		{name: "pause stops an active environment's app and keeps its build",
			s: subject(StateActive), in: Input{Trigger: TriggerPause},
			want: Outcome{State: StatePaused, Deployed: shaA, Starts: ActivityPause, Effects: []Effect{{Kind: EffectStopApp}}}},
		{name: "only an active environment can be paused",
			s: subject(StateBuilding), in: Input{Trigger: TriggerPause}, refused: "only an active environment"},
		{name: "resume deploys a paused environment",
			s: subject(StatePaused), in: Input{Trigger: TriggerResume},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "resume of an inactive environment points at activate",
			s: subject(StateInactive), in: Input{Trigger: TriggerResume}, refused: "use activate"},
		{name: "a visit wakes a paused environment",
			s: subject(StatePaused), in: Input{Trigger: TriggerWake},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(false, false)}},
		{name: "a visit to an active environment changes nothing",
			s: subject(StateActive), in: Input{Trigger: TriggerWake},
			want: Outcome{State: StateActive, Deployed: shaA}},
		{name: "an active environment whose replica was lost is deployed again at its deployed SHA with its parent's data",
			s: subject(StateActive), in: Input{Trigger: TriggerOwnerLost},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy,
				Effects: []Effect{{Kind: EffectDeploy, CloneParentData: true, Redeployed: true}}}},
		{name: "a deploy caught on a lost replica deploys the head again",
			s: subject(StateDeploying), in: Input{Trigger: TriggerOwnerLost},
			want: Outcome{State: StateBuilding, Deployed: shaA, Starts: ActivityDeploy, Effects: deployEffect(true, false)}},
		{name: "a removal caught on a lost replica is removed again",
			s: subject(StateStopping), in: Input{Trigger: TriggerOwnerLost, Keep: true},
			want: Outcome{State: StateStopping, Deployed: shaA, Starts: ActivityStop, Effects: []Effect{{Kind: EffectRemove, Keep: true}}}},
		{name: "a paused environment whose replica was lost stays paused until visited",
			s: subject(StatePaused), in: Input{Trigger: TriggerOwnerLost},
			want: Outcome{State: StatePaused, Deployed: shaA}},
		{name: "an environment created through GitLab's API runs nothing to take over",
			s: subject(StateActive, noRef), in: Input{Trigger: TriggerOwnerLost},
			want: Outcome{State: StateActive, Deployed: shaA}},
		{name: "a push to a paused environment records the head and leaves it paused until visited",
			s: subject(StatePaused), in: Input{Trigger: TriggerDeployRequested}, refused: "deployed when it is next visited"},

		// Prebuilds (--prebuild-branches): built, never run, state unchanged.
		{name: "a prebuild of an inactive branch environment builds its head and leaves it inactive",
			s: subject(StateInactive, func(s *Subject) { s.DeployedSHA = "" }), in: Input{Trigger: TriggerPrebuild},
			want: Outcome{State: StateInactive, Starts: ActivityPrebuild, Effects: []Effect{{Kind: EffectPrebuild}}}},
		{name: "an active environment is not prebuilt: it deploys its head",
			s: subject(StateActive), in: Input{Trigger: TriggerPrebuild}, refused: "only an inactive environment is prebuilt"},
		{name: "a merge request's environment is not prebuilt",
			s: subject(StateInactive, func(s *Subject) { s.Kind = KindMR }), in: Input{Trigger: TriggerPrebuild}, refused: "only branch environments"},
		{name: "a detached environment is not prebuilt",
			s: subject(StateInactive, detached), in: Input{Trigger: TriggerPrebuild}, refused: "detached"},
		{name: "a prebuild job starts its own prebuild",
			s: subject(StateInactive), in: Input{Trigger: TriggerPrebuildStarted, Activity: 10},
			want: Outcome{State: StateInactive, Deployed: shaA, Activity: ActivityRunning}},
		{name: "a prebuild job superseded by a newer push is cancelled before it starts",
			s: subject(StateInactive), in: Input{Trigger: TriggerPrebuildStarted, Activity: 9},
			want: Outcome{State: StateInactive, Deployed: shaA, Activity: ActivityCancelled, Result: "superseded before it started"}},
		{name: "a prebuild job finds its environment activated meanwhile and is cancelled",
			s: subject(StateBuilding), in: Input{Trigger: TriggerPrebuildStarted, Activity: 10},
			want: Outcome{State: StateBuilding, Deployed: shaA, Activity: ActivityCancelled, Result: "superseded: the environment is building"}},
		{name: "a finished prebuild completes its activity and changes no state",
			s: subject(StateInactive), in: Input{Trigger: TriggerPrebuildSucceeded, Activity: 10, SHA: shaB},
			want: Outcome{State: StateInactive, Deployed: shaA, Activity: ActivityComplete, Result: "prebuilt " + shaB[:8]}},
		{name: "a failed prebuild fails its activity, not the environment",
			s: subject(StateInactive), in: Input{Trigger: TriggerPrebuildFailed, Activity: 10, Reason: "build step 1 failed"},
			want: Outcome{State: StateInactive, Deployed: shaA, Activity: ActivityFailed, Result: "build step 1 failed"}},
		{name: "a lost prebuild of an inactive branch environment is prebuilt again",
			s: subject(StateInactive), in: Input{Trigger: TriggerLost, Prebuild: true},
			want: Outcome{State: StateInactive, Deployed: shaA, Starts: ActivityPrebuild, Effects: []Effect{{Kind: EffectPrebuild}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Transition(tt.s, tt.in)
			if tt.refused != "" {
				if !strings.Contains(got.Refused, tt.refused) {
					t.Fatalf("got %+v, want refused with %q", got, tt.refused)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestEveryStateAndTriggerHasAnAnswer(t *testing.T) {
	known := map[string]bool{}
	for _, s := range States {
		known[s] = true
	}
	for _, state := range States {
		for _, tr := range Triggers {
			got := Transition(subject(state), Input{Trigger: tr, Activity: 10})
			if got.Refused != "" {
				continue
			}
			if !known[got.State] || (state != "" && got.State == "") {
				t.Errorf("%q × %s → unknown state %q", state, tr, got.State)
			}
			if got.Tombstone != (got.State == StateDeleted && state != StateDeleted) && got.Tombstone {
				t.Errorf("%q × %s → tombstone in state %q", state, tr, got.State)
			}
			if len(got.Effects) > 0 && got.Effects[0].Kind != EffectStartApp && got.Starts == "" {
				t.Errorf("%q × %s → effects %v recorded under no activity", state, tr, got.Effects)
			}
		}
	}
}

// The transition table is also a document: testdata/transitions.md is
// generated from Transition (go test -run TransitionTable -update) so the
// written table can never disagree with the code.
func TestTransitionTable(t *testing.T) {
	got := TransitionTable()
	path := filepath.Join("testdata", "transitions.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/lifecycle -run TransitionTable -update)", err)
	}
	if string(want) != got {
		t.Fatalf("%s is out of date: run go test ./internal/lifecycle -run TransitionTable -update", path)
	}
}

func TestTierAndDefaultBranchRules(t *testing.T) {
	for _, tt := range []struct {
		kind       EnvKind
		name, want string
	}{
		{KindBranch, "main", "production"},
		{KindBranch, "feature", "staging"},
		{KindMR, "mr-1", "development"},
		{KindTag, "tag-v1", "staging"},
		{KindMR, "main", "development"}, // only a branch can be the default branch's
	} {
		if got := Tier(tt.kind, tt.name, "main"); got != tt.want {
			t.Errorf("Tier(%s, %s) = %s, want %s", tt.kind, tt.name, got, tt.want)
		}
	}
	if IsDefaultBranch(KindBranch, "", "") {
		t.Error("an unknown default branch matched an unnamed environment")
	}
	_ = fmt.Sprint()
}
