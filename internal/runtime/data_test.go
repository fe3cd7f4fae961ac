package runtime_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/glenv/glenv/internal/gitlabtest"
	"github.com/glenv/glenv/internal/runtime"
	"github.com/glenv/glenv/internal/store"
)

func (w *world) do(t *testing.T, method, host, path, body string) string {
	t.Helper()
	req, _ := http.NewRequest(method, w.proxy.URL+path, strings.NewReader(body))
	req.Host = host + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return string(b)
}

func TestAMergeRequestGetsACopyOfItsParentsDataCleanedByTheCloneHook(t *testing.T) {
	t.Parallel()
	pg := servicesPostgres(t)
	w := newWorld(t, runtime.Options{Databases: pg})
	sha := w.gl.Commit(t, w.project.ID, gitlabtest.Commit{Dir: examplesDir(t, "guestbook")})

	var logs strings.Builder
	main := w.env(20, "main", "branch")
	if err := w.rt.Deploy(t.Context(), w.request(main, sha, &logs)); err != nil {
		t.Fatalf("deploy main: %v\n%s", err, logs.String())
	}
	w.do(t, "POST", main.Host, "/sign?name=Ada+Lovelace", "")
	w.do(t, "POST", main.Host, "/upload?name=photo.txt", "a photo")

	mr := w.env(21, "mr-21", "mr")
	req := w.request(mr, sha, &logs)
	req.CloneParentData, req.Parent = true, &store.Environment{ID: main.ID, Name: main.Name}
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), req); err != nil {
		t.Fatalf("deploy mr: %v\n%s", err, logs.String())
	}
	for _, want := range []string{"cloned files uploads from main", "cloned database main from main", "hooks.clone", "sanitized 1 entries"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("deploy log lacks %q:\n%s", want, logs.String())
		}
	}
	page := w.do(t, "GET", mr.Host, "/", "")
	if !strings.Contains(page, "<li class=entry>guest 1</li>") || strings.Contains(page, "Ada") || !strings.Contains(page, "photo.txt") {
		t.Fatalf("the MR's copy: %s", page)
	}
	w.do(t, "POST", mr.Host, "/sign?name=only+in+mr", "")
	if page := w.do(t, "GET", main.Host, "/", ""); strings.Contains(page, "only in mr") || !strings.Contains(page, "Ada Lovelace") {
		t.Fatalf("the parent changed: %s", page)
	}

	// A redeploy keeps the MR's data.
	logs.Reset()
	if err := w.rt.Deploy(t.Context(), req); err != nil {
		t.Fatalf("redeploy mr: %v\n%s", err, logs.String())
	}
	if page := w.do(t, "GET", mr.Host, "/", ""); !strings.Contains(page, "only in mr") {
		t.Fatalf("the redeploy lost the MR's data: %s", page)
	}

	if err := w.rt.Remove(t.Context(), mr, nil); err != nil {
		t.Fatal(err)
	}
	if dbs, err := pg.Databases(t.Context(), "g21_"); err != nil || len(dbs) != 0 {
		t.Fatalf("databases left after Remove: %v %v", dbs, err)
	}
	if dbs, _ := pg.Databases(t.Context(), "g20_"); len(dbs) != 1 {
		t.Fatalf("the parent's database is gone: %v", dbs)
	}
}
