package store

import (
	"fmt"
	"math"
	"strconv"

	"github.com/glenv/glenv/internal/limits"
)

// Ceilings are an integration's own caps on what its environments'
// .glenv.yml may ask for; a zero field is the server's ceiling. In JSON the
// field names are the serve flags' (environment_max_memory is
// --environment-max-memory).
type Ceilings struct {
	MaxMemory    Size    `json:"environment_max_memory"`
	MaxProcesses int     `json:"environment_max_processes"`
	MaxCPU       float64 `json:"environment_max_cpu"`
	MaxDisk      Size    `json:"environment_max_disk"`
	// DatabaseConnectionLimit caps services.postgresql connection_limit
	// and is its default (--services-database-connection-limit).
	DatabaseConnectionLimit int `json:"services_database_connection_limit"`
}

// Limits are the memory, process, CPU and disk ceilings as internal/limits
// takes them.
func (c Ceilings) Limits() limits.Limits {
	return limits.Limits{Memory: int64(c.MaxMemory), Processes: c.MaxProcesses, CPU: c.MaxCPU, Disk: int64(c.MaxDisk)}
}

// millicpu is how the CPU ceiling is stored: an integer in both dialects.
func (c Ceilings) millicpu() int64 { return int64(math.Round(c.MaxCPU * 1000)) }

// Size is a number of bytes written in JSON as .glenv.yml writes sizes
// ("512M", "2G"; "0" for none), read from such a string or a number.
type Size int64

func (s Size) MarshalJSON() ([]byte, error) {
	if s == 0 {
		return []byte(`"0"`), nil
	}
	return []byte(strconv.Quote(limits.FormatSize(int64(s)))), nil
}

func (s *Size) UnmarshalJSON(b []byte) error {
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*s = Size(n)
		return nil
	}
	str, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("a size such as \"2G\", got %s", b)
	}
	n, err := limits.ParseSize(str)
	*s = Size(n)
	return err
}
