package feedback_test

import (
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/glenv/glenv/internal/feedback"
	"github.com/glenv/glenv/internal/store"
	"github.com/glenv/glenv/internal/store/storetest"
)

func TestOneNotePerMergeRequest(t *testing.T) {
	t.Run("a note a person deleted is written again, once", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d1 := w.openMR(7, "feature", sha("a"))
			d1.start().succeed()
			w.sync(env)
			first := w.notes(7)[0]
			w.gl.DeleteNoteAsUser(w.pid, 7, first.ID)
			w.calls()

			w.push(env, sha("b")).start().succeed()
			w.sync(env)
			notes := w.notes(7)
			if len(notes) != 1 || !strings.Contains(notes[0].Body, "`"+sha("b")[:8]+"`") {
				t.Fatalf("want one note showing the new deploy, got %+v", notes)
			}
			w.expectCalls("recreate", "POST statuses/"+sha("b")[:8]+" success", "POST deployments success",
				"PUT notes/"+itoa(first.ID)+" → 404", "GET notes", "POST notes")

			w.push(env, sha("c")).start().succeed()
			w.sync(env)
			if got := w.notes(7); len(got) != 1 || got[0].ID != notes[0].ID {
				t.Fatalf("the recreated note must be edited from then on, got %+v", got)
			}
		})
	})

	t.Run("a crash between creating the note and recording it leaves one note", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d1 := w.openMR(8, "feature-8", sha("a"))
			w.sync(env)
			// kill -9 after POST …/notes answered, before its id was written.
			w.exec(`UPDATE feedback_environments SET note_id = 0, note_hash = 'creating' WHERE environment_id = $1`, env.ID)
			w.calls()
			d1.start().succeed()
			w.sync(env)
			notes := w.notes(8)
			if len(notes) != 1 || !strings.Contains(notes[0].Body, "is live") {
				t.Fatalf("want the one note, found by its marker and edited; got %+v", notes)
			}
			calls := strings.Join(w.calls(), "\n")
			if strings.Contains(calls, "POST notes") || !strings.Contains(calls, "GET notes") {
				t.Errorf("the note must be found by its marker, not created again:\n%s", calls)
			}
		})
	})

	t.Run("concurrent syncs, in one process or two, write one note", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d1 := w.openMR(9, "feature-9", sha("a"))
			d1.start().succeed()
			other := feedback.NewSyncer(w.deps) // a second glenv replica on the same database
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := 0; i < 8; i++ {
				s := w.syncer
				if i%2 == 1 {
					s = other
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- w.syncUntilDone(s, env)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := w.notes(9); len(n) != 1 {
				t.Fatalf("want 1 note, got %d", len(n))
			}
			if got := w.statuses(sha("a")); strings.Join(got, " ") != "success" {
				t.Errorf("statuses %v, want one success", got)
			}
			if deps := w.gl.Deployments(w.pid); len(deps) != 1 {
				t.Errorf("want 1 deployment, got %+v", deps)
			}
		})
	})

	t.Run("a person's comment quoting the marker is left alone", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d1 := w.openMR(10, "feature-10", sha("a"))
			d1.start().succeed()
			w.sync(env)
			ours := w.notes(10)[0]
			w.exec(`UPDATE feedback_environments SET note_id = 0, note_hash = '' WHERE environment_id = $1`, env.ID)
			w.gl.DeleteNoteAsUser(w.pid, 10, ours.ID)
			postNote(t, w, 10, "> "+strings.SplitN(ours.Body, "\n", 2)[0]+"\n\nwhy is this failing?")
			w.push(env, sha("b")).start().succeed()
			w.sync(env)
			notes := w.notes(10)
			if len(notes) != 2 || !strings.HasPrefix(notes[0].Body, "> ") || !strings.Contains(notes[1].Body, "is live") {
				t.Fatalf("want the person's comment untouched and a new glenv note, got %+v", notes)
			}
		})
	})
}

func TestStatusesAndDeploymentsAreNeverRepeated(t *testing.T) {
	t.Run("pending and running are sent once, even when the record of sending them is lost", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d := w.branchEnv("feature", sha("a"))
			w.sync(env)
			w.sync(env)
			w.expectCalls("pending twice", "POST statuses/"+sha("a")[:8]+" pending")
			w.exec(`DELETE FROM feedback_deploys`)
			w.sync(env)
			w.expectCalls("pending after a lost record", "POST statuses/"+sha("a")[:8]+" pending → 400")
			d.start()
			w.sync(env)
			w.exec(`UPDATE feedback_deploys SET status_sent = 'pending', settled = ''`)
			w.sync(env)
			calls := w.calls()
			if calls[len(calls)-1] != "POST statuses/"+sha("a")[:8]+" running → 400" {
				t.Errorf("a repeated running must be refused by GitLab and taken as sent: %q", calls)
			}
			if got := w.statuses(sha("a")); strings.Join(got, " ") != "running" {
				t.Errorf("statuses %v", got)
			}
		})
	})

	t.Run("a final status or deployment whose answer was lost is looked up, not sent again", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d := w.branchEnv("feature", sha("a"))
			d.start().succeed()
			w.sync(env)
			// The success status and the deployment reached GitLab, their answers did not.
			w.exec(`UPDATE feedback_deploys SET status_sent = '', status_trying = 'success', deployment_id = 0,
				deployment_status = '', deployment_trying = TRUE, settled = ''`)
			w.calls()
			w.sync(env)
			w.expectCalls("recovery", "GET repository/commits/"+sha("a")+"/statuses", "GET deployments")
			if got := w.statuses(sha("a")); strings.Join(got, " ") != "success" {
				t.Errorf("statuses %v, want one success", got)
			}
			if deps := w.gl.Deployments(w.pid); len(deps) != 1 {
				t.Errorf("want 1 deployment, got %d", len(deps))
			}
		})
	})

	t.Run("a deployment of a deploy retention forgot is not taken for one whose answer was lost", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d1 := w.branchEnv("feature", sha("a"))
			d1.start().succeed()
			w.sync(env)
			w.push(env, sha("b")).start().succeed()
			w.sync(env)
			d3 := w.push(env, sha("a")) // the first commit again
			// Retention forgets d1 (d2 is the last successful deploy, d3 the newest).
			var forgot int
			if err := st.Tx(w.ctx, func(tx *sql.Tx) (err error) {
				forgot, err = store.ForgetActivities(w.ctx, tx, env.ID, 1, 10)
				return err
			}); err != nil || forgot != 1 {
				t.Fatalf("forgot %d activities, %v; want d1", forgot, err)
			}
			d3.start().succeed()
			// d3's deployment was sent, and neither it nor its answer arrived.
			w.exec(`INSERT INTO feedback_deploys (activity_id, environment_id, deployment_trying) VALUES ($1, $2, TRUE)`, d3.ID, env.ID)
			w.sync(env)
			deps := w.gl.Deployments(w.pid)
			if len(deps) != 3 || deps[2].SHA != sha("a") || deps[2].Status != "success" {
				t.Fatalf("GitLab deployments %+v; want d3's made anew, not d1's taken for it", deps)
			}
		})
	})

	t.Run("turning feedback on reports the newest earlier deploy, not all of history", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d := w.branchEnv("feature", sha("old1"))
			d.start().succeed()
			w.push(env, sha("old2")).start().fail("boom")
			w.push(env, sha("old3")).start().succeed()
			w.exec(`UPDATE activities SET created_at = created_at - 7200000000 WHERE environment_id = $1`, env.ID)
			w.sync(env)
			if got := w.statuses(sha("old3")); strings.Join(got, " ") != "success" {
				t.Errorf("newest earlier deploy: statuses %v, want success", got)
			}
			for _, old := range []string{"old1", "old2"} {
				if got := w.statuses(sha(old)); len(got) != 0 {
					t.Errorf("%s: statuses %v, want none (history)", old, got)
				}
			}
			w.calls()
			d4 := w.push(env, sha("new")).start().succeed()
			w.sync(env)
			if got := w.statuses(d4.SHA); strings.Join(got, " ") != "success" {
				t.Errorf("a deploy after feedback started: statuses %v", got)
			}
		})
	})

	t.Run("a crash after creating the GitLab environment finds it by name", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, st *store.Store) {
			w := newWorld(t, st)
			env, d := w.branchEnv("feature", sha("a"))
			d.start()
			w.sync(env)
			w.exec(`UPDATE feedback_environments SET gitlab_env_id = 0`)
			w.exec(`UPDATE feedback_deploys SET deployment_id = 0, deployment_status = '', deployment_trying = TRUE, settled = ''`)
			d.succeed()
			w.sync(env)
			if envs := w.gl.Environments(w.pid); len(envs) != 1 || envs[0].ExternalURL != w.deps.EnvURL(*env) {
				t.Errorf("want one GitLab environment with the glenv URL, got %+v", envs)
			}
			if deps := w.gl.Deployments(w.pid); len(deps) != 1 || deps[0].Status != "success" {
				t.Errorf("want one successful deployment, got %+v", deps)
			}
		})
	})
}

func TestStatusFieldsAreCutTo255Characters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		long := strings.Repeat("x", 300)
		w := newWorld(t, st, func(d *feedback.Deps) {
			base := d.EnvURL
			d.EnvURL = func(e store.Environment) string { return base(e) + "?" + long }
		})
		branch := "feature/" + strings.Repeat("b", 290)
		env, d := w.branchEnv(branch, sha("a"))
		d.start().fail("build failed: " + strings.Repeat("é", 400))
		w.sync(env)
		got := w.gl.Statuses(w.pid, sha("a"))
		if len(got) != 1 || got[0].Status != "failed" {
			t.Fatalf("want one failed status, got %+v\n%s", got, w.calls())
		}
		s := got[0]
		if n := len([]rune(s.Description)); n != 255 {
			t.Errorf("description has %d characters, want 255", n)
		}
		if n := len([]rune(s.Ref)); n != 255 {
			t.Errorf("ref has %d characters, want 255", n)
		}
		if !strings.HasSuffix(s.TargetURL, "/log") || len(s.TargetURL) > 255 {
			t.Errorf("target_url %q: want the (short) log URL", s.TargetURL)
		}
		// A success status whose environment URL is too long leaves the link out rather than break it.
		d2 := w.push(env, sha("b")).start().succeed()
		w.sync(env)
		if s := w.gl.Statuses(w.pid, d2.SHA); len(s) != 1 || s[0].Status != "success" || s[0].TargetURL != "" {
			t.Errorf("want a success status without a cut link, got %+v", s)
		}
	})
}
