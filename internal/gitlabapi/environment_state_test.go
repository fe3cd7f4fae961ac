package gitlabapi

import "testing"

func TestStopFollowsEnvironmentsStateMachine(t *testing.T) {
	tests := []struct {
		name                      string
		state                     string
		force, always, withAction bool
		want                      string
		ok                        bool
	}{
		{"an available environment stops at once", StateAvailable, false, true, false, StateStopped, true},
		{"one with a stop action waits in stopping", StateAvailable, false, false, true, StateStopping, true},
		{"with_action and no stop action changes nothing", StateAvailable, false, false, false, StateAvailable, false},
		{"stopping is not stopped again without force", StateStopping, false, true, false, StateStopping, false},
		{"a stopped environment cannot be stopped", StateStopped, false, true, false, StateStopped, false},
		{"force moves stopping to stopped", StateStopping, true, true, false, StateStopped, true},
		{"force stops an available one whatever its setting", StateAvailable, true, false, false, StateStopped, true},
		{"force cannot stop a stopped one", StateStopped, true, true, false, StateStopped, false},
	}
	for _, tt := range tests {
		got, ok := Stop(tt.state, tt.force, tt.always, tt.withAction)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: Stop = %s, %v; want %s, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
