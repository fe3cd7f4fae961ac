package integration

import (
	"strings"

	"github.com/glenv/glenv/internal/limits"
	"github.com/glenv/glenv/internal/store"
)

// parseSizeField reads a size ceiling ("2G"; "0" for the server's).
func parseSizeField(field string, v *string) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if strings.TrimSpace(*v) == "0" {
		return 0, nil
	}
	n, err := limits.ParseSize(*v)
	if err != nil {
		return 0, fieldErr(field, "%s, or 0 for the server's ceiling", err.Error())
	}
	return n, nil
}

// ceilings is cur with the ceilings x gives (validated by checkCeilings).
func (x Input) ceilings(cur store.Ceilings) store.Ceilings {
	if x.EnvironmentMaxMemory != nil {
		n, _ := parseSizeField("environment_max_memory", x.EnvironmentMaxMemory)
		cur.MaxMemory = store.Size(n)
	}
	if x.EnvironmentMaxProcesses != nil {
		cur.MaxProcesses = *x.EnvironmentMaxProcesses
	}
	if x.EnvironmentMaxCPU != nil {
		cur.MaxCPU = *x.EnvironmentMaxCPU
	}
	if x.EnvironmentMaxDisk != nil {
		n, _ := parseSizeField("environment_max_disk", x.EnvironmentMaxDisk)
		cur.MaxDisk = store.Size(n)
	}
	if x.ServicesDatabaseConnectionLimit != nil {
		cur.DatabaseConnectionLimit = *x.ServicesDatabaseConnectionLimit
	}
	return cur
}

// checkCeilings refuses ceilings that are no sizes or numbers, under what
// an app needs, or above the server's own: an integration narrows what the
// server allows, never widens it.
func (s *Service) checkCeilings(x Input) error {
	for _, f := range []struct {
		name string
		v    *string
	}{{"environment_max_memory", x.EnvironmentMaxMemory}, {"environment_max_disk", x.EnvironmentMaxDisk}} {
		if _, err := parseSizeField(f.name, f.v); err != nil {
			return err
		}
	}
	c := x.ceilings(store.Ceilings{})
	if p := s.Limits.CheckCeilings(c.Limits()); len(p) > 0 {
		return fieldErr(p[0].Field, "%s", p[0].Rule)
	}
	switch n := c.DatabaseConnectionLimit; {
	case n < 0:
		return fieldErr("services_database_connection_limit", "%d must not be negative; 0 uses the server's ceiling", n)
	case s.ConnectionLimit > 0 && n > s.ConnectionLimit:
		return fieldErr("services_database_connection_limit", "%d is above this server's ceiling %d (serve --services-database-connection-limit); set at most %d, or raise the server's", n, s.ConnectionLimit, s.ConnectionLimit)
	}
	return nil
}
