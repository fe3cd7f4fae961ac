package lifecycle

import (
	"fmt"
	"strings"
)

// TransitionTable renders Transition as a markdown table (state × trigger →
// new state and effects) for a branch environment with a parent, and for
// job triggers the job whose deploy or removal the environment waits for.
// The default branch's environment differs only where a cell says so.
func TransitionTable() string {
	var b strings.Builder
	b.WriteString("| trigger |")
	for _, s := range States {
		b.WriteString(" " + stateWords(s) + " |")
	}
	b.WriteString("\n|---|")
	for range States {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, tr := range Triggers {
		fmt.Fprintf(&b, "| %s |", tr)
		for _, state := range States {
			s := Subject{Name: "feature", Kind: KindBranch, Ref: "feature", Parent: "main", State: state,
				HeadSHA: "b", DeployedSHA: "a", DefaultBranch: "main", Pending: 1}
			cell := tableCell(s, Transition(s, Input{Trigger: tr, Activity: 1, SHA: "b"}))
			d := s
			// Same parent, so that only the default branch's own rules show.
			d.Name, d.Ref = "main", "main"
			if def := tableCell(d, Transition(d, Input{Trigger: tr, Activity: 1, SHA: "b"})); def != cell && tr != TriggerCreate {
				cell += "; default branch: " + def
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n`·` no change; `removed` of a deactivation (stop) ends `inactive`, undeployed; `refused` the request is answered with why (nothing changes); " +
		"`[activity]` the activity the effects run under; job triggers finish the job's own activity " +
		"and are `cancelled` when another request took the environment over.\n")
	return b.String()
}

func tableCell(s Subject, o Outcome) string {
	if o.Refused != "" {
		return "refused"
	}
	var parts []string
	if o.State != s.State {
		parts = append(parts, "→ "+stateWords(o.State))
	}
	for _, e := range o.Effects {
		w := string(e.Kind)
		var mods []string
		if e.ResetData {
			mods = append(mods, "reset data")
		}
		if e.CloneParentData {
			mods = append(mods, "clone parent data")
		}
		if e.Keep {
			mods = append(mods, "keep env")
		}
		if e.Redeployed {
			mods = append(mods, "deployed SHA")
		}
		if len(mods) > 0 {
			w += " (" + strings.Join(mods, ", ") + ")"
		}
		parts = append(parts, w)
	}
	if o.Starts != "" {
		parts = append(parts, "["+o.Starts+"]")
	}
	if o.Deployed != s.DeployedSHA && o.State != StateDeleted {
		if o.Deployed == "" {
			parts = append(parts, "undeployed")
		} else {
			parts = append(parts, "deployed = job's SHA")
		}
	}
	if o.Activity == ActivityCancelled {
		parts = append(parts, "job cancelled")
	}
	if len(parts) == 0 {
		return "·"
	}
	return strings.Join(parts, ", ")
}
