package config

import (
	"fmt"
	"net"
	"time"
)

// validateReplicas fills and checks the replica settings (issue 16).
func (c *Config) validateReplicas() error {
	if c.ReplicaAddress == "" {
		c.ReplicaAddress = c.Listen
	}
	if _, port, err := net.SplitHostPort(c.ReplicaAddress); err != nil || port == "" {
		return fmt.Errorf("--replica-address %q: must be host:port where the other replicas reach this one, e.g. 10.0.0.5:8080", c.ReplicaAddress)
	}
	if c.bound == nil {
		// Built in code (tests, benchmarks) without Bind: the defaults.
		if c.ReplicaHeartbeat == 0 {
			c.ReplicaHeartbeat = 2 * time.Second
		}
		if c.ReplicaDeadAfter == 0 {
			c.ReplicaDeadAfter = 10 * time.Second
		}
	}
	if c.ReplicaHeartbeat < 100*time.Millisecond {
		return fmt.Errorf("--replica-heartbeat: must be a duration of at least 100ms, e.g. 2s")
	}
	if c.ReplicaDeadAfter < 3*c.ReplicaHeartbeat {
		return fmt.Errorf("--replica-dead-after: must be at least three heartbeats (--replica-heartbeat %s), so one slow beat does not declare a live replica dead; e.g. 10s", c.ReplicaHeartbeat)
	}
	return nil
}
