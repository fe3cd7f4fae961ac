package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/glenv/glenv/internal/api"
)

// fakeLog serves /api/v1/activities/7/log like the API: pages of at most
// page bytes from ?offset=, with the next offset and the activity state.
// Each request lets the world move one step (more log, then completion), so
// a follower meets every case without timing.
type fakeLog struct {
	mu      sync.Mutex
	log     string
	state   string
	page    int
	steps   []func(f *fakeLog)
	offsets []int64
}

func (f *fakeLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	f.offsets = append(f.offsets, off)
	state := f.state // read before the log, as the API does
	end := min(int(off)+f.page, len(f.log))
	text := f.log[min(int(off), len(f.log)):end]
	w.Header().Set(api.HeaderNextOffset, strconv.Itoa(int(off)+len(text)))
	w.Header().Set(api.HeaderActivityState, state)
	w.Write([]byte(text))
	if len(f.steps) > 0 {
		f.steps[0](f)
		f.steps = f.steps[1:]
	}
}

func runLog(t *testing.T, f *fakeLog, follow bool) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	followPoll = time.Millisecond
	t.Cleanup(func() { followPoll = 500 * time.Millisecond })
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd.SetContext(ctx)
	c := &client{base: srv.URL, token: "t", http: srv.Client()}
	if err := printActivityLog(cmd, c, "7", follow); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("activity:log did not end")
	}
	return out.String()
}

func TestActivityLogReadsEveryPageFromTheOffsetItWasGiven(t *testing.T) {
	f := &fakeLog{log: strings.Repeat("0123456789", 5) + "end\n", state: "complete", page: 7}
	if got := runLog(t, f, false); got != f.log {
		t.Fatalf("printed %q, want %q", got, f.log)
	}
	for i, off := range f.offsets[1:] {
		if off != int64(7*(i+1)) && off != int64(len(f.log)) {
			t.Fatalf("asked for offsets %v: each must be where the previous page ended", f.offsets)
		}
	}
}

func TestActivityLogFollowPrintsEachByteOnceAndEndsWithTheActivity(t *testing.T) {
	f := &fakeLog{log: "fetch\n", state: "running", page: 4}
	f.steps = []func(*fakeLog){
		func(f *fakeLog) {},
		func(f *fakeLog) {},
		func(f *fakeLog) { f.log += "build step 1\n" },
		func(f *fakeLog) {},
		func(f *fakeLog) {},
		func(f *fakeLog) {},
		func(f *fakeLog) {},
		func(f *fakeLog) { f.log += "serving\n"; f.state = "complete" },
	}
	want := "fetch\nbuild step 1\nserving\n"
	if got := runLog(t, f, true); got != want {
		t.Fatalf("followed %q, want %q", got, want)
	}
}

func TestActivityLogWithoutFollowStopsAtWhatIsWritten(t *testing.T) {
	f := &fakeLog{log: "fetch\n", state: "running", page: 100}
	f.steps = []func(*fakeLog){func(f *fakeLog) {}, func(f *fakeLog) { f.log += "later\n" }}
	if got := runLog(t, f, false); got != "fetch\n" {
		t.Fatalf("printed %q, want what was written when asked", got)
	}
}
