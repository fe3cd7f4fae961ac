package gitlabtest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

func TestFaults(t *testing.T) {
	t.Run("a 429 is answered as Rack::Attack does", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.srv.AddFault(Fault{Status: 429, Times: 1, ResetAfter: 3 * time.Second})
		start := time.Now()
		r := f.do(t, f.devTok, "GET", "projects/1", nil)
		if r.status != 429 || r.body != "Retry later" || r.header.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %d %q %v", r.status, r.body, r.header)
		}
		reset, err := strconv.ParseInt(r.header.Get("RateLimit-Reset"), 10, 64)
		if err != nil || reset < start.Add(3*time.Second).Unix() || reset > start.Add(5*time.Second).Unix() {
			t.Fatalf("RateLimit-Reset = %q", r.header.Get("RateLimit-Reset"))
		}
		if _, err := http.ParseTime(r.header.Get("RateLimit-ResetTime")); err != nil {
			t.Fatalf("RateLimit-ResetTime = %q", r.header.Get("RateLimit-ResetTime"))
		}
		for _, h := range []string{"RateLimit-Limit", "RateLimit-Observed", "RateLimit-Remaining", "Retry-After"} {
			if _, err := strconv.Atoi(r.header.Get(h)); err != nil {
				t.Fatalf("%s = %q", h, r.header.Get(h))
			}
		}
		if r.header.Get("RateLimit-Name") != "throttle_authenticated_api" {
			t.Fatalf("RateLimit-Name = %q", r.header.Get("RateLimit-Name"))
		}
		expect(t, f.do(t, f.devTok, "GET", "projects/1", nil), 200, "") // Times: 1 is used up
	})

	t.Run("client-go with retries waits for RateLimit-Reset, then succeeds", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.srv.AddFault(Fault{Method: "POST", PathPattern: `/statuses/`, Status: 429, Times: 1})
		c, err := gitlab.NewClient(f.devTok, gitlab.WithBaseURL(f.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, _, err := c.Commits.SetCommitStatus("group/app", shaMain, &gitlab.SetCommitStatusOptions{State: gitlab.Pending}); err != nil {
			t.Fatal(err)
		}
		calls := f.srv.Calls()
		if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 201 {
			t.Fatalf("calls = %+v", calls)
		}
		// RateLimit-Reset is in whole seconds, so the wait is 1–2 s.
		if waited := calls[1].At.Sub(calls[0].At); waited < 500*time.Millisecond || time.Since(start) > 4*time.Second {
			t.Fatalf("client waited %v between attempts", waited)
		}
		if n := len(f.srv.Statuses(f.project.ID, shaMain)); n != 1 {
			t.Fatalf("%d statuses", n)
		}
	})

	t.Run("a 5xx fault answers the next calls, then clears", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.srv.AddFault(Fault{Status: 503, Times: 2})
		for range 2 {
			expect(t, f.do(t, f.devTok, "GET", "projects/1", nil), 503, `{"message":"503 Service Unavailable"}`)
		}
		expect(t, f.do(t, f.devTok, "GET", "projects/1", nil), 200, "")
	})

	t.Run("faults match by method and path", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		remove := f.srv.AddFault(Fault{Method: "POST", PathPattern: `/projects/group%2Fapp/hooks$`, Status: 500})
		expect(t, f.do(t, f.maintainerTok, "GET", "projects/group%2Fapp/hooks", nil), 200, "")
		expect(t, f.do(t, f.maintainerTok, "POST", "projects/1/hooks", map[string]any{"url": "https://x.example"}), 201, "")
		for range 2 {
			expect(t, f.do(t, f.maintainerTok, "POST", "projects/group%2Fapp/hooks", map[string]any{"url": "https://x.example"}), 500,
				`{"message":"500 Internal Server Error"}`)
		}
		remove()
		expect(t, f.do(t, f.maintainerTok, "POST", "projects/group%2Fapp/hooks", map[string]any{"url": "https://x.example"}), 201, "")
		f.srv.AddFault(Fault{Status: 502})
		f.srv.ClearFaults()
		expect(t, f.do(t, f.devTok, "GET", "projects/1", nil), 200, "")
	})

	t.Run("a delayed fault makes the client time out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.srv.AddFault(Fault{PathPattern: `/projects/1$`, Delay: 5 * time.Second, Times: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _, err := f.client(t, f.devTok).Projects.GetProject(1, nil, gitlab.WithContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if _, _, err := f.client(t, f.devTok).Projects.GetProject(1, nil); err != nil {
			t.Fatalf("after the delay fault: %v", err)
		}
	})

	t.Run("the rate limit throttles all callers and client-go rides it out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.srv.SetRateLimit(3, time.Second)
		// Ten quick calls span at most two one-second windows, so at most
		// six get through.
		throttled := 0
		for i := range 10 {
			tok := []string{f.devTok, f.adminTok}[i%2]
			if r := f.do(t, tok, "GET", "projects/1", nil); r.status == 429 {
				throttled++
				if r.body != "Retry later" || r.header.Get("RateLimit-Limit") != "180" {
					t.Fatalf("429 = %q %v", r.body, r.header)
				}
			}
		}
		if throttled < 4 {
			t.Fatalf("%d of 10 calls throttled", throttled)
		}
		c, err := gitlab.NewClient(f.devTok, gitlab.WithBaseURL(f.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if _, _, err := c.Projects.GetProject(1, nil); err != nil {
				t.Fatal(err)
			}
		}
		f.srv.SetRateLimit(0, 0)
		for range 5 {
			expect(t, f.do(t, f.adminTok, "GET", "projects/1", nil), 200, "")
		}
	})
}

func TestCallLog(t *testing.T) {
	f := newFixture(t)
	f.srv.ResetCalls()
	f.do(t, f.devTok, "GET", "projects/group%2Fapp/repository/branches?per_page=5&search=main", nil)
	f.do(t, f.devTok, "POST", "projects/group%2Fapp/statuses/"+shaMain, map[string]any{"state": "pending"})
	f.srv.AddFault(Fault{Status: 503, Times: 1})
	f.do(t, f.devTok, "DELETE", "projects/1/hooks/1", nil)
	f.do(t, "", "GET", "nowhere", nil)

	calls := f.srv.Calls()
	want := []Call{
		{Method: "GET", Path: "/api/v4/projects/group%2Fapp/repository/branches", Query: "per_page=5&search=main", Status: 200},
		{Method: "POST", Path: "/api/v4/projects/group%2Fapp/statuses/" + shaMain, Status: 201, Body: []byte(`{"state":"pending"}`)},
		{Method: "DELETE", Path: "/api/v4/projects/1/hooks/1", Status: 503},
		{Method: "GET", Path: "/api/v4/nowhere", Status: 404},
	}
	if len(calls) != len(want) {
		t.Fatalf("calls = %+v", calls)
	}
	for i, w := range want {
		c := calls[i]
		if c.Method != w.Method || c.Path != w.Path || c.Query != w.Query || c.Status != w.Status ||
			string(c.Body) != string(w.Body) || c.At.IsZero() {
			t.Errorf("call %d = %+v\nwant %+v", i, c, w)
		}
	}
	f.srv.ResetCalls()
	if n := len(f.srv.Calls()); n != 0 {
		t.Fatalf("%d calls after reset", n)
	}
}
