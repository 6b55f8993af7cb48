package browser

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/internal/cli"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/lambdatest"
	"github.com/keygate/keygate/internal/localstack"
	"github.com/keygate/keygate/internal/logtest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// env is one test's world: the local stack on DynamoDB Local, `keygate
// console` against it (run through the CLI, as a user runs it), and a
// headless Chromium with a fresh profile.
type env struct {
	t        *testing.T
	gateway  string // the local gateway's base URL
	login    string // the console's one-time sign-in link
	base     string // the console's base URL
	logs     *logtest.Buffer
	console  *logtest.Buffer // the console command's stdout and stderr
	browser  context.Context
	shotsDir string
}

var loginLink = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/login\?token=[A-Za-z0-9_-]+`)

func start(t *testing.T, width, height int) *env {
	t.Helper()
	e := &env{t: t, logs: &logtest.Buffer{}, console: &logtest.Buffer{}}
	_, table := dynamotest.Table(t)
	vars := map[string]string{
		"KEYGATE_DYNAMODB_ENDPOINT": dynamotest.Endpoint(t),
		"KEYGATE_TABLE":             table,
		"KEYGATE_PEPPER":            "browser-pepper-0123456789abcdef0123456789abcdef",
		"KEYGATE_SIGNING_DIR":       t.TempDir(),
		// The authorizer's in-process cache would let a call see a key as
		// it was up to 5 s ago; the tests look at what the console changed.
		"KEYGATE_CACHE_TTL": "1ms",
	}
	getenv := func(k string) string { return vars[k] }
	st, err := localstack.Start(context.Background(), localstack.Options{
		Getenv: getenv, Log: slog.New(slog.NewJSONHandler(e.logs, nil)), FunctionLog: e.logs,
	})
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Close(ctx)
	})
	e.gateway = st.URL

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"console", "--api-url", st.URL, "--port", "0", "--no-browser"},
			e.console, e.console, func(string) string { return "" })
	}()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != cli.ExitOK {
			t.Errorf("keygate console exited %d after its context ended:\n%s", code, e.console.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for e.login == "" {
		e.login = loginLink.FindString(e.console.String())
		if time.Now().After(deadline) {
			t.Fatalf("keygate console printed no sign-in link:\n%s", e.console.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.base = e.login[:strings.Index(e.login, "/login")]

	e.browser = newBrowser(t, width, height)
	e.shotsDir = filepath.Join(lambdatest.RepoRoot(t), "build", "console")
	if err := os.MkdirAll(e.shotsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// chromium finds Debian's chromium; a test without it fails and says how to
// install it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the console's browser tests need Debian's chromium, which is not installed: " +
		"run `make deps-browser` (it runs `apt-get install chromium`)")
	return ""
}

// newBrowser starts headless Chromium with a fresh profile. Without the
// background-networking flags Chromium tries to reach Google's services at
// start, which a closed network refuses.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true), // clean screenshots
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step is a browser action that returns nothing.
type step = chromedp.Action[chromedp.Void]

// css selects the first element that matches a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// do runs browser steps, failing the test (saying which) when one fails or
// takes more than a minute (a loaded CI machine is slow, never that slow).
func (e *env) do(what string, steps ...step) {
	e.t.Helper()
	if _, err := run(e, chromedp.Steps(steps...)); err != nil {
		e.fail(what, err)
	}
}

func (e *env) fail(what string, err error) {
	e.t.Helper()
	body, _ := chromedp.Run(e.browser, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	e.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
}

func run[T any](e *env, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(e.browser, time.Minute)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// get runs an action that returns a value.
func get[T any](e *env, what string, a chromedp.Action[T]) T {
	e.t.Helper()
	v, err := run(e, a)
	if err != nil {
		e.fail(what, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page (awaiting a promise).
func eval[T any](e *env, js string) T {
	e.t.Helper()
	return get(e, "evaluate "+js, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// text returns the visible text of the first element matching sel.
func (e *env) text(sel string) string {
	e.t.Helper()
	return strings.TrimSpace(get(e, "read "+sel, chromedp.Text(css(sel), chromedp.NodeVisible)))
}

// screenshot saves the whole page as build/console/<name>.png.
func (e *env) screenshot(name string) {
	e.t.Helper()
	e.save(name, get(e, "screenshot "+name, chromedp.FullScreenshot(100)))
}

// viewShot saves what a window of width × height shows of the page, as
// build/console/<name>.png (docs/console.png is one).
func (e *env) viewShot(name string, width, height int64) {
	e.t.Helper()
	e.do("resize", chromedp.EmulateViewport(width, height))
	e.save(name, get(e, "screenshot "+name, chromedp.CaptureScreenshot()))
}

func (e *env) save(name string, png []byte) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.shotsDir, name+".png"), png, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// call sends a request through the local gateway's protected proxy.
func (e *env) call(path, apiKey string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.gateway+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("x-api-key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// denial returns the code of a gateway denial body.
func denial(body string) string {
	var d struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal([]byte(body), &d)
	return d.Code
}

// unlabelled lists the form controls of the page that have no label: every
// visible input, select and textarea needs a <label> or an aria-label.
const unlabelled = `Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)`

// overflowing reports whether the page is wider than the window (it
// scrolls sideways), and which elements stick out.
const overflowing = `(() => {
  const w = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= w) return [];
  return Array.from(document.querySelectorAll('body *'))
    .filter(el => el.getBoundingClientRect().right > w + 1)
    .slice(0, 5).map(el => el.tagName + '.' + el.className);
})()`

// lowContrast lists the visible text of the page whose colour has a
// contrast below 4.5:1 (WCAG AA) against its background (the first opaque
// background up the tree). The charts' canvas text is not text the page
// holds; their numbers are in the tables under them.
const lowContrast = `(() => {
  const parse = s => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat); return {rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1}; };
  const lum = rgb => { const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = el => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
    if (c && c.a > 0) return c.rgb; } return [255, 255, 255]; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (!el.checkVisibility() || el.closest('.visually-hidden')) continue;
    const fg = parse(getComputedStyle(el).color);
    if (!fg) continue;
    const a = lum(fg.rgb), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName.toLowerCase() + '.' + el.className + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
  }
  return bad;
})()`

// checkPage fails the test for unlabelled controls and low-contrast text on
// the page the browser shows.
func (e *env) checkPage(what string) {
	e.t.Helper()
	if missing := eval[[]string](e, unlabelled); len(missing) > 0 {
		e.t.Errorf("%s: form controls without a label: %v", what, missing)
	}
	if low := eval[[]string](e, lowContrast); len(low) > 0 {
		e.t.Errorf("%s: text with a contrast below 4.5:1: %v", what, low)
	}
}
