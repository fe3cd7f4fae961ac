package gitlabapi

// The Environment model's state machine as the stop endpoint drives it
// (app/models/environment.rb, `state_machine :state`; and
// app/services/environments/stop_service.rb, #unsafe_execute!).

// Environment states as the API shows them.
const (
	StateAvailable = "available"
	StateStopping  = "stopping"
	StateStopped   = "stopped"
)

// StopFailed is Environments::StopService's error when the state did not
// change (stop_service.rb: `unless environment.saved_change_to_attribute?(:state)`),
// answered as bad_request!: 400 {"message":"400 Bad request - …"}.
const StopFailed = "Attempted to stop the environment but failed to change the status"

// AutoStopSettings are the values auto_stop_setting takes
// (environment.rb: `enum auto_stop_setting: { always: 0, with_action: 1 }`).
var AutoStopSettings = []string{"always", "with_action"}

// Stop is what POST …/stop does to an environment in state, and whether the
// state changed (ok false is StopFailed):
//   - force runs stop_complete!, which moves available or stopping to
//     stopped (environment.rb `event :stop_complete`);
//   - otherwise stop_with_actions! stops only an available environment,
//     and only when it has stop actions or its auto_stop_setting is
//     "always" (environment.rb #stop_with_actions!); withAction tells
//     whether the environment has a stop action to run. An environment
//     with stop actions waits in stopping for them (`event :stop`, wait_for_stop?).
func Stop(state string, force, autoStopAlways, withAction bool) (next string, ok bool) {
	if force {
		if state == StateAvailable || state == StateStopping {
			return StateStopped, true
		}
		return state, false
	}
	if state != StateAvailable || !(withAction || autoStopAlways) {
		return state, false
	}
	if withAction {
		return StateStopping, true
	}
	return StateStopped, true
}
