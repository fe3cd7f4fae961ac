package feedback_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

// TestMergeRequestCallSequences pins the exact GitLab calls of a merge
// request's life, one sync per state change (the worst case: a debounced
// job folds changes that come together).
func TestMergeRequestCallSequences(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		a, b, c, d, e := sha("a1"), sha("b2"), sha("c3"), sha("d4"), sha("e5")

		// MR open: the first deploy is queued, runs, succeeds.
		env, d1 := w.openMR(7, "feature", a)
		w.sync(env)
		w.expectCalls("MR open: deploy queued",
			"POST statuses/"+a[:8]+" pending", "GET notes", "POST notes")
		d1.start()
		w.sync(env)
		w.expectCalls("MR open: deploy running",
			"POST statuses/"+a[:8]+" running", "GET environments", "POST environments", "POST deployments running")
		d1.succeed()
		w.sync(env)
		note := w.notes(7)[0]
		w.expectCalls("MR open: deploy succeeded",
			"POST statuses/"+a[:8]+" success", "PUT deployments/501 success", "PUT notes/"+itoa(note.ID))

		// A new push: the steady state.
		d2 := w.push(env, b)
		w.sync(env)
		w.expectCalls("push: queued", "POST statuses/"+b[:8]+" pending")
		d2.start()
		w.sync(env)
		w.expectCalls("push: running", "POST statuses/"+b[:8]+" running", "POST deployments running")
		d2.succeed()
		w.sync(env)
		w.expectCalls("push: succeeded",
			"POST statuses/"+b[:8]+" success", "PUT deployments/502 success", "PUT notes/"+itoa(note.ID))
		w.sync(env)
		w.expectCalls("push: nothing changed")

		// A failed deploy: the status links the log, the note gives the reason.
		d3 := w.push(env, c).start()
		w.sync(env)
		w.expectCalls("failing push: running", "POST statuses/"+c[:8]+" running", "POST deployments running")
		d3.fail(".glenv.yml: key \"run\" is required: add run: <command that serves on $PORT>")
		w.sync(env)
		w.expectCalls("failing push: failed",
			"POST statuses/"+c[:8]+" failed", "PUT deployments/503 failed", "PUT notes/"+itoa(note.ID))
		failed := w.gl.Statuses(w.pid, c)
		if got := failed[len(failed)-1]; !strings.HasSuffix(got.TargetURL, "/log") || !strings.Contains(got.Description, `key "run" is required`) {
			t.Errorf("failed status: target_url %q description %q; want the log and the reason", got.TargetURL, got.Description)
		}
		if body := w.notes(7)[0].Body; !strings.Contains(body, `key "run" is required`) || !strings.Contains(body, "failed") {
			t.Errorf("note after a failed deploy does not show the reason:\n%s", body)
		}

		// A superseded deploy: d4 is running when e5 is pushed.
		d4 := w.push(env, d).start()
		w.sync(env)
		w.expectCalls("superseded: running", "POST statuses/"+d[:8]+" running", "POST deployments running")
		d5 := w.push(env, e, d4)
		w.sync(env)
		w.expectCalls("superseded: cancelled, newer queued",
			"POST statuses/"+d[:8]+" canceled", "PUT deployments/504 canceled", "POST statuses/"+e[:8]+" pending")
		d5.start().succeed()
		w.sync(env)
		w.expectCalls("superseded: newer succeeded",
			"POST statuses/"+e[:8]+" success", "POST deployments success", "PUT notes/"+itoa(note.ID))

		// Close: the note says so, the GitLab environment is stopped and deleted.
		w.close(env)
		w.sync(env)
		gitlabEnv := "environments/1"
		w.expectCalls("close", "PUT notes/"+itoa(note.ID), "POST "+gitlabEnv+"/stop", "DELETE "+gitlabEnv)
		w.sync(env)
		w.expectCalls("close: nothing left")

		if n := w.notes(7); len(n) != 1 || !strings.Contains(n[0].Body, "deleted") {
			t.Errorf("want one note saying the environment is deleted, got %d: %+v", len(n), n)
		}
		if envs := w.gl.Environments(w.pid); len(envs) != 0 {
			t.Errorf("GitLab environments left after close: %+v", envs)
		}
		for _, c := range []struct {
			sha  string
			want string
		}{{a, "success"}, {b, "success"}, {c, "failed"}, {d, "canceled"}, {e, "success"}} {
			// One status job per SHA, moved on in place: nothing repeated.
			if got := strings.Join(w.statuses(c.sha), " "); got != c.want {
				t.Errorf("statuses of %s: %q, want %q", c.sha[:8], got, c.want)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
