package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PauseAfter is an integration's --pause-after: how long an active
// environment may serve no request before it is paused; 0 is off. In JSON
// it is a duration string ("4h0m0s") or "off".
type PauseAfter time.Duration

// MaxPauseAfter bounds --pause-after (a year): longer is a typo.
const MaxPauseAfter = PauseAfter(365 * 24 * time.Hour)

func (p PauseAfter) seconds() int64 { return int64(time.Duration(p) / time.Second) }

func (p PauseAfter) String() string {
	if p <= 0 {
		return "off"
	}
	return time.Duration(p).String()
}

// MarshalJSON writes "off" or a Go duration.
func (p PauseAfter) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(p.String())), nil }

// UnmarshalJSON reads what ParsePauseAfter reads.
func (p *PauseAfter) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("pause_after: a string such as \"4h\" or \"off\", got %s", b)
	}
	v, err := ParsePauseAfter(s)
	*p = v
	return err
}

// ParsePauseAfter reads --pause-after: "off", "0", a Go duration ("4h",
// "90m") or whole days ("2d"), at least a minute (the proxy records visits
// once a minute) and at most a year.
func ParsePauseAfter(s string) (PauseAfter, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("pause_after %q: use a duration such as 4h, 90m or 2d, or off", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("pause_after %q: use a duration such as 4h, 90m or 2d, or off", s)
		}
	}
	switch {
	case d < time.Minute:
		return 0, fmt.Errorf("pause_after %q: must be at least 1m (or off)", s)
	case PauseAfter(d) > MaxPauseAfter:
		return 0, fmt.Errorf("pause_after %q: must be at most 365d (or off)", s)
	}
	return PauseAfter(d.Truncate(time.Second)), nil
}

// IdleCandidate is an active environment of an integration with
// --pause-after, with what the idle decision needs.
type IdleCandidate struct {
	EnvironmentID int64
	Host          string
	PauseAfter    time.Duration
	// LastRequest is the last counted request persisted (zero: none yet).
	LastRequest time.Time
	// ActiveSince is when its last deploy completed (its creation when
	// none is recorded): idleness counts from it when nobody came since.
	ActiveSince time.Time
}

// IdleCandidates lists active, attached environments whose integration
// pauses idle ones.
func IdleCandidates(ctx context.Context, q Querier) ([]IdleCandidate, error) {
	// The last completed deploy, not updated_at: other writes (parents,
	// tiers) touch updated_at and must not keep an environment awake.
	rows, err := q.QueryContext(ctx, `SELECT e.id, e.host, i.pause_after_seconds, e.last_request_at,
		COALESCE((SELECT MAX(a.completed_at) FROM activities a WHERE a.environment_id = e.id AND a.kind = $2 AND a.state = $3), 0),
		e.created_at
		FROM environments e JOIN integrations i ON i.id = e.integration_id
		WHERE e.state = $1 AND e.deleted_at = 0 AND i.pause_after_seconds > 0 ORDER BY e.id`, StateActive, ActivityDeploy, ActivityComplete)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IdleCandidate
	for rows.Next() {
		var c IdleCandidate
		var secs, last, deployed, created int64
		if err := rows.Scan(&c.EnvironmentID, &c.Host, &secs, &last, &deployed, &created); err != nil {
			return nil, err
		}
		c.PauseAfter = time.Duration(secs) * time.Second
		if last > 0 {
			c.LastRequest = fromMicros(last)
		}
		c.ActiveSince = fromMicros(max(deployed, created))
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecordRequests persists the last counted request per host; a time older
// than the one stored is ignored (another replica saw a newer one).
func RecordRequests(ctx context.Context, q Querier, last map[string]time.Time) error {
	for host, at := range last {
		if _, err := q.ExecContext(ctx, `UPDATE environments SET last_request_at = $1 WHERE host = $2 AND last_request_at < $1`,
			micros(at), host); err != nil {
			return fmt.Errorf("record last request of %s: %w", host, err)
		}
	}
	return nil
}
