package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// durationValue is a pflag.Value for durations that also accepts whole days
// ("30d"), the unit retention settings are naturally given in; Go's own
// syntax ("90m", "168h") works as well.
type durationValue time.Duration

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a whole number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) Type() string { return "duration" }

func (d *durationValue) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

// sizeValue is a pflag.Value for byte sizes: a number of bytes, or one with
// KiB, MiB or GiB (K, M, G mean the same).
type sizeValue int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}

func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 8MiB, 512KiB or 1048576", s)
	}
	return n * mult, nil
}

func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}

func (v *sizeValue) Type() string { return "size" }

func (v *sizeValue) String() string {
	n := int64(*v)
	for _, u := range []int{2, 1, 0} { // GiB, MiB, KiB: the largest that divides
		if m := sizeUnits[u].mult; n >= m && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + sizeUnits[u].suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
