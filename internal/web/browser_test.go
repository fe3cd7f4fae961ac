package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/glenv/glenv/internal/gitlabtest"
)

// chromium finds Debian's chromium; without it the browser tests fail in
// CI (CI=true) and skip with a message elsewhere.
func chromium(t testing.TB) string {
	for _, p := range []string{os.Getenv("GLENV_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium not installed (apt-get install chromium); the browser tests need it")
	return ""
}

// browser is one person's headless Chromium (its own profile and cookies)
// that records every JavaScript error the pages log.
type browser struct {
	t    testing.TB
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.WindowSize(1280, 860),
		chromedp.Flag("headless", true), chromedp.DisableGPU, chromedp.WSURLReadTimeout(90*time.Second))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if e.Type == cdpruntime.APITypeError || e.Type == cdpruntime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.record("console." + string(e.Type) + ": " + strings.Join(parts, " "))
			}
		case *cdpruntime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			b.record("exception: " + msg)
		case *log.EventEntryAdded:
			// Resource answers (a 403 page the test asked for) are not
			// JavaScript errors; everything else at error level is.
			if e.Entry.Level == log.LevelError && e.Entry.Source != log.SourceNetwork {
				b.record("log: " + e.Entry.Text)
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), cdpruntime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) record(s string) {
	b.mu.Lock()
	b.errs = append(b.errs, s)
	b.mu.Unlock()
}

// noJSErrors fails the test when a page logged a JavaScript error.
func (b *browser) noJSErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		b.t.Errorf("JavaScript errors in the browser console:\n%s", strings.Join(b.errs, "\n"))
	}
}

// run runs actions with a deadline.
func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var loc string
		_ = chromedp.Run(b.ctx, chromedp.Location(&loc))
		b.t.Fatalf("%s: %v (page %s)", what, err, loc)
	}
}

// waitJS waits until a JavaScript expression is true in the page. It asks
// again every 20 ms, through navigations (a form's answer, a redirect),
// where an evaluation fails until the new page is there.
func waitJS(expr string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var last error
		for {
			var ok bool
			err := chromedp.Evaluate(`document.readyState !== 'loading' && !!(`+expr+`)`, &ok).Do(ctx)
			if err == nil && ok {
				return nil
			}
			if err != nil {
				last = err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("never true: %s (last error %v): %w", expr, last, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// screenshot saves what the page shows now.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var png []byte
	b.run("screenshot", chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(shotName(b.t, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// signIn signs u in through GitLab's (the double's) OAuth sign-in, starting
// from glenv's sign-in page, and ends on the environments page.
func (b *browser) signIn(w *world, u gitlabtest.User) {
	b.t.Helper()
	c := w.gl.BrowserCookie(u.ID)
	b.run("sign in as "+u.Username,
		chromedp.ActionFunc(func(ctx context.Context) error {
			return network.SetCookie(c.Name, c.Value).WithURL(w.gl.URL).Do(ctx)
		}),
		chromedp.Navigate(w.URL+"/"),
		chromedp.WaitVisible(`a.signin`, chromedp.ByQuery),
		chromedp.Click(`a.signin button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#environments`, chromedp.ByQuery),
	)
}

// markPage marks the loaded page: the mark survives until a reload.
func markPage() chromedp.Action {
	var v int
	return chromedp.Evaluate(`window.__glenvMark = 42`, &v)
}

func pageNotReloaded() chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var v int
		if err := chromedp.Evaluate(`window.__glenvMark || 0`, &v).Do(ctx); err != nil {
			return err
		}
		if v != 42 {
			return fmt.Errorf("the page was reloaded: live updates should arrive without one")
		}
		return nil
	})
}

// arrivedAt waits until a form's navigation reached a URL containing part
// (evaluating during the navigation fails until the new page is there).
func arrivedAt(part string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var href string
			if err := chromedp.Evaluate(`document.readyState === 'complete' ? location.href : ''`, &href).Do(ctx); err == nil && strings.Contains(href, part) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("never reached a page with %q: %w", part, ctx.Err())
			case <-time.After(20 * time.Millisecond): // the browser's navigation has no event we can wait on here
			}
		}
	})
}

func textOf(sel string, s *string) chromedp.Action { return chromedp.Text(sel, s, chromedp.ByQuery) }

// The dashboard in a real browser, against a real glenv (process runtime,
// sandboxed apps) and the GitLab double's OAuth: what the browser
// tests ask for, one screenshot per step under test-output/screenshots.
func TestDashboardInABrowser(t *testing.T) {
	chromium(t)
	w := newWorld(t, worldOptions{})
	main := w.waitEnv("main", func(e envJSON) bool { return e.State == "active" && e.DeployedSHA != "" })

	dev := newBrowser(t)
	t.Run("sign in and see the environments of your roles", func(t *testing.T) {
		dev.t = t
		dev.signIn(w, w.dev)
		var rows string
		dev.run("read the list", waitJS(`document.querySelector('tr[data-env="app/main"]') !== null`), textOf("#environments tbody", &rows))
		for _, want := range []string{"main", "feature/login", "active", "inactive"} {
			if !strings.Contains(rows, want) {
				t.Errorf("the list lacks %q:\n%s", want, rows)
			}
		}
		dev.screenshot("environments")

		// Someone without a role on the project sees none of its environments.
		out := newBrowser(t)
		out.signIn(w, w.outsider)
		var text string
		out.run("read the outsider's list", textOf("#environments tbody", &text))
		if strings.Contains(text, "feature/login") || !strings.Contains(text, "No environment matches") {
			t.Errorf("an outsider sees environments:\n%s", text)
		}
		out.noJSErrors()
		dev.noJSErrors()
	})

	t.Run("open an environment and watch its log grow while a deploy runs", func(t *testing.T) {
		dev.t = t
		// A push GitLab's webhook did not deliver: reconcile finds the new
		// head and deploys it, a fresh build that logs a line at a time.
		sha := w.gl.Commit(t, w.pid, gitlabtest.Commit{Branch: "main", Files: map[string]string{"index.html": "<p>version 2</p>\n"}})
		w.api("POST", "/api/v1/integrations/app/reconcile", nil, nil)
		w.waitEnv("main", func(e envJSON) bool { return e.HeadSHA == sha && e.State != "active" })
		dev.run("open main", chromedp.Navigate(w.URL+"/environments/app/main"), chromedp.WaitVisible("#log", chromedp.ByQuery), markPage())
		// The log has its first lines but not its last, then grows on the
		// open page until the build is done.
		dev.run("first lines", waitJS(`document.querySelector('#log').textContent.includes('build step 2 of 12')`))
		var early string
		dev.run("read", textOf("#log", &early))
		dev.run("last line", waitJS(`document.querySelector('#log').textContent.includes('build step 12 of 12')`), pageNotReloaded())
		if strings.Contains(early, "build step 12 of 12") {
			t.Errorf("the log was complete when first read; it did not grow on the page:\n%s", early)
		}
		dev.run("state arrives", waitJS(`document.querySelector('#state [data-state]').dataset.state === 'active'`), pageNotReloaded())
		dev.screenshot("environment-live-log")
		dev.noJSErrors()
		main = w.waitEnv("main", func(e envJSON) bool { return e.State == "active" && e.DeployedSHA == sha })
	})

	t.Run("press Redeploy and see the state change arrive without a reload", func(t *testing.T) {
		dev.t = t
		dev.run("redeploy", chromedp.Navigate(w.URL+"/environments/app/main"), chromedp.WaitVisible(`button[data-op="redeploy"]`, chromedp.ByQuery),
			chromedp.Click(`button[data-op="redeploy"]`, chromedp.ByQuery), arrivedAt("done=redeploy"),
			chromedp.WaitVisible("#state", chromedp.ByQuery), markPage())
		// The redeploy runs (deploying, or building) and ends active: the
		// change is swapped into the open page by the event stream.
		dev.run("state changes live", waitJS(`(window.__glenvSeen = (window.__glenvSeen||[]).concat(document.querySelector('#state [data-state]').dataset.state)), document.querySelector('#state [data-state]').dataset.state === 'active' && window.__glenvSeen.some(s => s !== 'active')`),
			pageNotReloaded())
		dev.screenshot("environment-redeployed")
		dev.noJSErrors()
	})

	t.Run("a reader sees no action and is refused one anyway", func(t *testing.T) {
		rd := newBrowser(t)
		rd.signIn(w, w.reader)
		var csrf string
		rd.run("read the reader's CSRF token", chromedp.Navigate(w.URL+"/tokens"),
			chromedp.Value(`input[name="csrf_token"]`, &csrf, chromedp.ByQuery))
		var buttons int
		rd.run("open main as a reader", chromedp.Navigate(w.URL+"/environments/app/main"), chromedp.WaitVisible("#state", chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll('#actions form').length`, &buttons))
		if buttons != 0 {
			t.Errorf("a reader is shown %d action buttons", buttons)
		}
		// The form the page does not show, posted with the reader's own
		// valid CSRF token: the server refuses it.
		var msg string
		rd.run("post a redeploy", chromedp.Evaluate(fmt.Sprintf(`(() => { const f = document.createElement('form'); f.method = 'post';
			f.action = '/environments/%d/actions/redeploy'; const i = document.createElement('input'); i.name = 'csrf_token'; i.value = %q;
			f.appendChild(i); document.body.appendChild(f); f.submit(); return 1 })()`, main.ID, csrf), nil),
			chromedp.WaitVisible("#error", chromedp.ByQuery), textOf("#error", &msg))
		if !strings.Contains(msg, "needs the write role") {
			t.Errorf("the refusal says %q; want the role it needs", msg)
		}
		rd.screenshot("reader-refused")
		if e, _ := w.env("main"); e.State != "active" {
			t.Errorf("a refused redeploy changed the environment: %s", e.State)
		}
		rd.noJSErrors()
	})

	t.Run("open a merge request by its GitLab URL prefix", func(t *testing.T) {
		dev.t = t
		sha := w.gl.Commit(t, w.pid, gitlabtest.Commit{Branch: "feature-x", Files: map[string]string{"index.html": "<p>mr</p>\n"}})
		w.gl.SetMergeRequest(w.pid, gitlabtest.MergeRequest{IID: 7, Title: "MR 7", SourceBranch: "feature-x", TargetBranch: "main", SHA: sha})
		w.api("POST", "/api/v1/integrations/app/reconcile", nil, nil)
		w.waitEnv("mr-7", func(e envJSON) bool { return true })
		var h1 string
		dev.run("open by prefix", chromedp.Navigate(w.URL+"/#"+w.gl.URL+"/group/app/-/merge_requests/7"), arrivedAt("/environments/app/mr-7"),
			waitJS(`location.pathname === '/environments/app/mr-7'`), textOf("h1", &h1))
		if !strings.HasPrefix(h1, "mr-7") {
			t.Errorf("opened %q, want mr-7's page", h1)
		}
		dev.screenshot("open-merge-request")
		dev.noJSErrors()
	})

	t.Run("a maintainer connects a project by its URL after #prebuild/ and its default branch builds", func(t *testing.T) {
		other := w.gl.AddProject(gitlabtest.Project{PathWithNamespace: "group/other", DefaultBranch: "main", Members: map[int64]int{w.maint.ID: 40, w.dev.ID: 30}})
		app, _ := filepath.Abs("testdata/app")
		w.gl.Commit(t, other.ID, gitlabtest.Commit{Branch: "main", Dir: app})
		mt := newBrowser(t)
		mt.signIn(w, w.maint)
		var selected string
		mt.run("open the prebuild link", chromedp.Navigate(w.URL+"/#prebuild/"+w.gl.URL+"/group/other"), arrivedAt("/integrations/new"),
			waitJS(`location.pathname === '/integrations/new' && document.querySelector('select[name="project"]') !== null`),
			chromedp.Evaluate(`document.querySelector('select[name="project"]').selectedOptions[0].textContent`, &selected))
		if !strings.HasSuffix(selected, "/group/other") {
			t.Fatalf("the form has %q selected, want group/other", selected)
		}
		mt.run("connect it", chromedp.SendKeys(`input[name="token"]`, w.glToken, chromedp.ByQuery),
			chromedp.Click(`form[action="/integrations/new"] button`, chromedp.ByQuery), arrivedAt("/integrations/new"),
			waitJS(`document.body.textContent.includes('Connected group/other')`))
		mt.screenshot("prebuild-connected")
		w.waitEnvOf("other", "main", func(e envJSON) bool { return e.State != "inactive" })
		mt.run("see its integration", chromedp.Navigate(w.URL+"/integrations"), waitJS(`document.body.textContent.includes('group/other')`))
		mt.screenshot("integrations")
		mt.noJSErrors()
	})
}
