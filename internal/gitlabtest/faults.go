package gitlabtest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/glenv/glenv/internal/gitlabapi"
)

// Fault makes matching calls fail. It matches by method ("" = any) and a
// regexp on the escaped path (e.g. `/projects/group%2Fapp/hooks$`), and
// answers Status for the next Times matching calls (0 = until removed),
// after Delay if set. A Status of 0 with a Delay only slows the call down.
// A 429 is answered as Rack::Attack does (PROTOCOL §5), with RateLimit-Reset
// ResetAfter from now (default 1s); other statuses carry GitLab's
// {"message":"<code> <text>"} body.
type Fault struct {
	Method      string
	PathPattern string
	Status      int
	Times       int
	Delay       time.Duration
	ResetAfter  time.Duration
}

type faultState struct {
	Fault
	re        *regexp.Regexp
	remaining int
}

// faultRateLimit is the RateLimit-Limit a faulted 429 announces: GitLab's
// default authenticated API limit, per minute.
const faultRateLimit = 2000

// AddFault installs f and returns a function that removes it. It panics on
// an invalid PathPattern, a mistake in the test itself.
func (s *Server) AddFault(f Fault) (remove func()) {
	st := &faultState{Fault: f, re: regexp.MustCompile(f.PathPattern), remaining: f.Times}
	s.mu.Lock()
	s.faults = append(s.faults, st)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.faults = slices.DeleteFunc(s.faults, func(x *faultState) bool { return x == st })
	}
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the first fault matching the call and uses one of its
// times.
func (s *Server) takeFault(method, path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.faults {
		if (st.Method != "" && st.Method != method) || !st.re.MatchString(path) {
			continue
		}
		if st.Times > 0 {
			st.remaining--
			if st.remaining <= 0 {
				s.faults = slices.DeleteFunc(s.faults, func(x *faultState) bool { return x == st })
			}
		}
		f := st.Fault
		return &f
	}
	return nil
}

// applyFault answers the call if a fault matches; it reports whether it did.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, path string) bool {
	f := s.takeFault(r.Method, path)
	if f == nil {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.done:
			return true
		}
	}
	switch f.Status {
	case 0:
		return false
	case http.StatusTooManyRequests:
		reset := f.ResetAfter
		if reset <= 0 {
			reset = time.Second
		}
		writeThrottled(w, faultRateLimit, faultRateLimit+1, time.Now().Add(reset))
	default:
		gitlabapi.WriteJSON(w, f.Status, map[string]string{"message": strconv.Itoa(f.Status) + " " + http.StatusText(f.Status)})
	}
	return true
}

// rateLimit is a fixed-window counter over all callers, like a Rack::Attack
// throttle.
type rateLimit struct {
	n      int
	window time.Duration
	start  time.Time
	count  int
}

// SetRateLimit allows at most n requests per window for all callers and
// answers the rest with Rack::Attack's 429. n ≤ 0 turns the limit off.
func (s *Server) SetRateLimit(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate = rateLimit{n: n, window: window}
}

// throttle counts the call against the rate limit and answers it with a 429
// when over; it reports whether it did.
func (s *Server) throttle(w http.ResponseWriter) bool {
	s.mu.Lock()
	rl := &s.rate
	if rl.n <= 0 || rl.window <= 0 {
		s.mu.Unlock()
		return false
	}
	now := time.Now()
	if start := now.Truncate(rl.window); !start.Equal(rl.start) {
		rl.start, rl.count = start, 0
	}
	rl.count++
	over, observed, reset := rl.count > rl.n, rl.count, rl.start.Add(rl.window)
	perMinute := int(float64(rl.n) * float64(time.Minute) / float64(rl.window))
	s.mu.Unlock()
	if !over {
		return false
	}
	writeThrottled(w, perMinute, observed, reset)
	return true
}

// writeThrottled answers like Rack::Attack (lib/gitlab/rack_attack.rb):
// text/plain "Retry later\n" with the RateLimit-* headers, RateLimit-Reset
// in Unix seconds (client-go sleeps until it) and Retry-After.
func writeThrottled(w http.ResponseWriter, limit, observed int, reset time.Time) {
	resetUnix := reset.Unix()
	if reset.Nanosecond() > 0 {
		resetUnix++
	}
	retryAfter := max(resetUnix-time.Now().Unix(), 1)
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", strconv.Itoa(limit))
	h.Set("RateLimit-Observed", strconv.Itoa(observed))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(limit-observed, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(resetUnix, 10))
	h.Set("RateLimit-ResetTime", time.Unix(resetUnix, 0).UTC().Format(http.TimeFormat))
	h.Set("Retry-After", strconv.FormatInt(retryAfter, 10))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte("Retry later\n"))
}
