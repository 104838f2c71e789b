package main

// The dashboard in a real headless Chromium, against a real three-node cluster.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// chromiumPath is where Debian's chromium package installs the browser (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// screenshotEnv, when set, names a file the dashboard test writes its screenshot to (to look at
// the page); otherwise the screenshot goes to the test's temporary directory.
const screenshotEnv = "DASHBOARD_SCREENSHOT"

// browser starts a headless Chromium for the test and returns a tab's context. The browser is
// killed when the test ends. Console errors, uncaught exceptions and failed loads (a 404, a
// request the page's Content-Security-Policy refused) are collected in errs.
func browser(t *testing.T) (ctx context.Context, errs func() []string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (Debian: apt-get install chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// Chromium puts its shared memory files (disable-dev-shm-usage) in TMPDIR and does not
		// always remove them.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it
	})
	// Console starts the browser (without a deadline: a deadline on the first call would bound
	// the browser's life) and reports console calls, uncaught exceptions and the browser log.
	messages := chromedp.Console(ctx)
	var mu sync.Mutex
	var collected []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				collected = append(collected, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		<-done
	})
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), collected...)
	}
}

// pageText is the text of the element sel, or "" when there is none.
func pageText(ctx context.Context, sel string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.innerText:""})()`, sel)))
}

// waitText polls, until the deadline, for the text of sel to contain every one of want; the page
// reloads itself (auto-refresh) in between.
func waitText(t *testing.T, ctx context.Context, timeout time.Duration, sel string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var text string
	var err error
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		text, err = pageText(rctx, sel)
		cancel()
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if err == nil && missing == "" {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %s does not show %q (error %v); it shows:\n%s", timeout, sel, missing, err, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestDashboardInChromium(t *testing.T) {
	ctx, consoleErrors := browser(t)
	nodes := startCluster(t, 3, "")
	for _, n := range nodes {
		n.WaitReady(60 * time.Second)
	}
	name := func(n *e2e.Node) string { return fmt.Sprintf("node-%d", n.Port) }
	first := nodes[0]

	// Auto-refresh every 5 s (the shortest it allows): the page is not reloaded by the test.
	run := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(rctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	// Auto-refresh off while the page is inspected, so that no reload comes in between.
	run(chromedp.Navigate(first.Root()+"/?refresh=0"), chromedp.WaitVisible(chromedp.CSS("#nodes")))
	text := func(sel string) string {
		t.Helper()
		s, err := pageText(ctx, sel)
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	if got := text("#node-name"); got != name(first) {
		t.Errorf("header names the node %q, want %q", got, name(first))
	}
	if text("#version") == "" {
		t.Errorf("the page shows no version")
	}
	// A fresh node learns its renewal threshold: no emergency banner.
	if b := text("#banner"); b != "" {
		t.Errorf("a fresh node shows the banner %q", b)
	}
	if sp := text("#self-preservation"); sp != "learning" {
		t.Errorf("self-preservation shows %q, want learning", sp)
	}
	if got := text("#instance-count"); got != "0" {
		t.Errorf("instance count shows %q, want 0", got)
	}

	// From here the page reloads itself every 5 s (the shortest period it allows); the test
	// only reads it.
	run(chromedp.Navigate(first.Root() + "/?refresh=5"))
	// Itself and its two peers, by name (the peers tell theirs), all ready.
	cluster := waitText(t, ctx, 30*time.Second, "#nodes", name(first)+" (this node)", name(nodes[1]), name(nodes[2]))
	if got := strings.Count(cluster, "\tready\t"); got != 3 {
		t.Errorf("cluster table does not show three ready nodes:\n%s", cluster)
	}

	// Registered at the third node, the instance reaches the first by replication, and the
	// first's page shows it at its next refresh.
	register(t, nodes[2], "DASHDEMO", "dash-1", time.Now().UnixMilli(), nil)
	waitText(t, ctx, 60*time.Second, "#apps", "DASHDEMO", "UP 1")
	waitText(t, ctx, 30*time.Second, "#instance-count", "1")

	// The application's own view lists the instance.
	run(chromedp.Navigate(first.Root()+"/?refresh=0"),
		chromedp.Click(chromedp.CSS(`a[href="/?app=DASHDEMO&refresh=0"]`)),
		chromedp.WaitVisible(chromedp.CSS("#instances")))
	waitText(t, ctx, 10*time.Second, "#instances", "dash-1", "host-dash-1", "10.0.0.1", "UP")

	// Search, through the form: it keeps auto-refresh off.
	run(chromedp.Navigate(first.Root()+"/?refresh=0"),
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "dashd"),
		chromedp.Submit(chromedp.CSS(`input[name=q]`)))
	deadline := time.Now().Add(30 * time.Second)
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, "q=dashd") {
			if !strings.Contains(loc, "refresh=0") {
				t.Errorf("search lost the refresh setting: %s", loc)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the search form did not submit: at %s (%v)", loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitText(t, ctx, 10*time.Second, "#applications", "DASHDEMO", "1–1 of 1 matching")

	// What this node sends to its peers shows as their send latency.
	register(t, first, "DASHDEMO", "dash-2", time.Now().UnixMilli(), nil)
	run(chromedp.Navigate(first.Root() + "/?refresh=5"))
	waitText(t, ctx, 60*time.Second, "#nodes", " ms\t")

	// A peer that stops shows as unreachable, with the error.
	nodes[2].Kill()
	run(chromedp.Navigate(first.Root() + "/?refresh=5"))
	waitText(t, ctx, 60*time.Second, "#nodes", "unreachable", "connection refused")

	run(chromedp.Navigate(first.Root()+"/?refresh=0"), chromedp.WaitVisible(chromedp.CSS("#nodes")))
	// Quality 100 makes a PNG.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := os.Getenv(screenshotEnv)
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("the browser reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
