package variable

import (
	"fmt"
	"strings"
)

// MaxValueBytes bounds a value: environment blocks are limited (Linux
// allows 128 KiB per string and 2 MiB in all for a process's arguments
// and environment), and a variable is configuration, not a file.
const MaxValueBytes = 64 << 10

// MaxPerLevel bounds how many variables one level (an integration, or one
// environment) holds, so nothing grows without bound.
const MaxPerLevel = 1000

// ValidValue checks a value can be handed to a process as an environment
// variable.
func ValidValue(value string) error {
	switch {
	case len(value) > MaxValueBytes:
		return fmt.Errorf("value: %d bytes; at most %d (64 KiB): keep files in the repository or a services directory, and their path in a variable", len(value), MaxValueBytes)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("value: contains a NUL byte, which no environment variable can hold; remove it")
	}
	return nil
}

// ValidVisibility refuses a variable no phase would see.
func ValidVisibility(build, run bool) error {
	if !build && !run {
		return fmt.Errorf("visible_build, visible_run: both false would hide the variable from the build and the app; keep at least one true (both default to true)")
	}
	return nil
}

// Deploy is what one deploy gets: the complete variables of its build
// steps and of its app (the repository's .glenv.yml env included, below
// the variables), and the sensitive values to redact from every log.
type Deploy struct {
	Build, Run map[string]string
	// Sensitive are the values to redact from build and app output and
	// from activity logs.
	Sensitive []string
	// BuildDigest names the build-visible values for the build cache key
	// without revealing them (a keyed MAC): a changed value builds again.
	BuildDigest string
	// Withheld counts the variables fork code did not get.
	Withheld int
}
