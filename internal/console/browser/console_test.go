package browser

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keygate/keygate/internal/apikey"
)

var wholeKey = regexp.MustCompile(`^(?:` + apikey.Pattern + `)$`)

// createKey fills in the new-key form and returns the key shown once.
func (e *env) createKey(owner, name string, fields map[string]string) string {
	e.t.Helper()
	actions := []step{
		chromedp.Navigate(e.base + "/keys/new?owner=" + owner),
		chromedp.WaitVisible(css(`#f-name`)),
		chromedp.SendKeys(css(`#f-name`), name),
	}
	for sel, v := range fields {
		actions = append(actions, chromedp.SetValue(css(sel), v))
	}
	actions = append(actions, chromedp.Click(css(`#keyform button[type=submit]`)),
		chromedp.WaitVisible(css(`#secret`)))
	e.do("create key "+name, actions...)
	secret := e.text(`#secret`)
	if !wholeKey.MatchString(secret) {
		e.t.Fatalf("the page shows %q where the new key should be", secret)
	}
	return secret
}

// TestAdminManagesKeysInTheBrowser walks through what an admin does: issue
// keys (each shown once), find them under their owner, watch their usage
// after calls through the gateway, disable, enable, rotate and revoke, and
// read an owner's usage and its CSV.
func TestAdminManagesKeysInTheBrowser(t *testing.T) {
	e := start(t, 1280, 900)

	// The printed link signs the browser in and lands on the owners page.
	e.do("sign in", chromedp.Navigate(e.login), chromedp.WaitVisible(css(`#owner`)))
	location := get(e, "location", chromedp.Location())
	if location != e.base+"/owners" {
		t.Errorf("after the sign-in link the browser is at %s, want %s/owners (the token dropped from the address)", location, e.base)
	}
	cookieJS := eval[string](e, `document.cookie`)
	if cookieJS != "" {
		t.Errorf("page scripts can read cookies %q: the session cookie must be HttpOnly", cookieJS)
	}

	// A refused form: the API's problem is shown next to the field it names,
	// and nothing is issued.
	e.do("submit a bad rate limit",
		chromedp.Navigate(e.base+"/keys/new?owner=acme"),
		chromedp.WaitVisible(css(`#f-name`)),
		chromedp.SendKeys(css(`#f-name`), "broken"),
		chromedp.SetValue(css(`input[name=limitName0]`), "minute"),
		chromedp.SetValue(css(`input[name=limitLimit0]`), "0"),
		chromedp.SetValue(css(`input[name=limitWindow0]`), "60"),
		chromedp.Click(css(`#keyform button[type=submit]`)),
		chromedp.WaitVisible(css(`#f-rateLimits-error`)))
	if msg := e.text(`#f-rateLimits-error`); !strings.Contains(msg, "limit must be from 1") {
		t.Errorf("the rate limit's message is %q, want the API's rule for limit", msg)
	}
	describedBy := eval[string](e, `document.querySelector('#keyform fieldset[aria-describedby*="f-rateLimits-error"]') ? 'yes' : 'no'`)
	if describedBy != "yes" {
		t.Errorf("the rate limits fieldset does not point at its message with aria-describedby")
	}
	name := eval[string](e, `document.querySelector('#f-name').value`)
	if name != "broken" {
		t.Errorf("the refused form lost what was typed: name %q", name)
	}
	e.checkPage("the refused new-key form")
	// The contrast check finds faint text (so that its silence means something).
	eval[bool](e, `(() => { const p = document.createElement('p'); p.id = 'faint'; p.textContent = 'faint text';
	  p.style.color = '#aaaaaa'; document.querySelector('main').append(p); return true; })()`)
	if low := eval[[]string](e, lowContrast); len(low) != 1 || !strings.Contains(low[0], "faint text") {
		t.Errorf("the contrast check missed grey on white: %v", low)
	}
	eval[bool](e, `(document.getElementById('faint').remove(), true)`)
	e.screenshot("form-error")

	// Create a key: the secret is shown once, with a copy button and the warning.
	secret := e.createKey("acme", "billing-prod", map[string]string{
		`#f-scopes`: "read", `input[name=limitName0]`: "minute", `input[name=limitLimit0]`: "100",
		`input[name=limitWindow0]`: "60", `#f-quotaLimit`: "50", `#f-quotaPeriod`: "day",
		`#f-metadata`: `{"plan": "pro"}`,
	})
	if w := e.text(`.issued .warning`); !strings.Contains(w, "only time this key is shown") {
		t.Errorf("the warning says %q", w)
	}
	e.do("copy", chromedp.WaitVisible(css(`button[data-copy=secret]`)))
	focused := eval[string](e, `document.activeElement.getAttribute('data-copy') || document.activeElement.tagName`)
	if focused != "secret" {
		t.Errorf("after creating, the focus is on %q, want the copy button", focused)
	}
	e.checkPage("the new key")
	e.screenshot("created")
	stored := eval[string](e, `JSON.stringify(Object.assign({}, localStorage)) + JSON.stringify(Object.assign({}, sessionStorage)) + document.cookie`)
	if strings.Contains(stored, secret) {
		t.Error("the new key is in the browser's storage")
	}
	keyID := eval[string](e, `document.querySelector('.issued a[href^="/keys/"]').getAttribute('href').slice(6)`)

	// Shown once: neither the key's own page nor going back to the page
	// that showed it shows it again. A browser may keep a page it leaves in
	// memory and restore it as it was (headless Chromium does not, for these
	// no-store pages), so the page drops the key when it is left: pagehide.
	eval[bool](e, `window.dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true}))`)
	if got := e.text(`#secret`); strings.Contains(got, secret) {
		t.Errorf("after pagehide the page still holds the new key")
	}
	e.do("open the key", chromedp.Click(css(`.issued a[href^="/keys/"]`)), chromedp.WaitVisible(css(`#h-settings`)))
	if body := eval[string](e, `document.documentElement.outerHTML`); strings.Contains(body, secret) {
		t.Error("the key's page shows the plaintext key")
	}
	eval[bool](e, `(history.back(), true)`)
	e.do("go back", waitJS(`location.pathname === '/keys/new' && document.readyState === 'complete'`))
	if body := eval[string](e, `document.documentElement.outerHTML`); strings.Contains(body, secret) {
		t.Error("going back to the new-key page shows the new key again")
	}

	other := e.createKey("acme", "reporting", map[string]string{`#f-scopes`: "read"})

	// Find it under its owner, typed with the keyboard.
	e.do("look up acme",
		chromedp.Navigate(e.base+"/owners"),
		chromedp.WaitVisible(css(`#owner`)),
		chromedp.SendKeys(css(`#owner`), "acme"+kb.Enter),
		chromedp.WaitVisible(css(`table.keys`)))
	rows := eval[[]string](e, `Array.from(document.querySelectorAll('table.keys tbody tr')).map(tr => tr.innerText.replace(/\s+/g, ' '))`)
	if len(rows) != 2 {
		t.Fatalf("acme's keys: %q, want billing-prod and reporting", rows)
	}
	row := strings.Join(rows, "\n")
	for _, want := range []string{"billing-prod", keyID, "active", "secret", "test", "read", secret[:15]} {
		if !strings.Contains(row, want) {
			t.Errorf("acme's keys do not show %q:\n%s", want, row)
		}
	}
	if strings.Contains(row, secret) {
		t.Error("the owner's key list shows a plaintext key")
	}
	e.checkPage("the owners page")

	// Calls through the gateway show in the usage chart, under the quota line.
	for range 7 {
		if status, b := e.call("/api/hello", secret); status != http.StatusOK {
			t.Fatalf("a call through the gateway with billing-prod: %d %s", status, b)
		}
	}
	for range 3 {
		if status, b := e.call("/api/hello", other); status != http.StatusOK {
			t.Fatalf("a call through the gateway with reporting: %d %s", status, b)
		}
	}
	e.do("key page", chromedp.Navigate(e.base+"/keys/"+keyID), chromedp.WaitVisible(css(`#key-chart`)))
	const chartJS = `(() => { const c = Chart.getChart(document.getElementById('key-chart'));
	  if (!c) return {drawn: false};
	  const q = c.data.datasets.find(d => d.type === 'line');
	  return {drawn: c.canvas.width > 0, days: c.data.labels.length,
	    total: c.data.datasets[0].data.reduce((a, b) => a + b, 0), quota: q ? q.data[0] : 0}; })()`
	chart := eval[keyChart](e, chartJS)
	if !chart.Drawn || chart.Days != 30 || chart.Total != 7 || chart.Quota != 50 {
		t.Errorf("the usage chart: %+v, want drawn, 30 days, 7 requests, a quota line at 50", chart)
	}
	if got := e.text(`#usage .total strong`); got != "7" {
		t.Errorf("the usage total reads %q, want 7", got)
	}
	if got := e.text(`label[for=quota-meter]`); !strings.Contains(got, "7 of 50") {
		t.Errorf("the quota reads %q, want 7 of 50 used today", got)
	}
	// The open minute window, as the admin API reports it (a hot key's
	// reservations may count more than the 7 calls, so no exact number).
	for _, want := range []string{"minute", "100 per minute", " of 100 left, resets ", `"plan": "pro"`, "key.create"} {
		if !strings.Contains(e.text(`#key`), want) {
			t.Errorf("the key page does not show %q", want)
		}
	}
	e.checkPage("the key page")
	e.screenshot("key")
	e.viewShot("console", 1280, 1210) // docs/console.png
	e.do("laptop", chromedp.EmulateViewport(1280, 900))
	e.do("90 days", chromedp.Click(css(`#usage .ranges a[href*="days=90"]`)),
		chromedp.WaitVisible(css(`#usage .ranges a[aria-current="true"][href*="days=90"]`)),
		chromedp.WaitVisible(css(`#key-chart`)))
	chart = eval[keyChart](e, chartJS)
	if !chart.Drawn || chart.Days != 90 || chart.Total != 7 {
		t.Errorf("the 90-day chart: %+v", chart)
	}

	// Disable: the badge changes, on the key and under its owner, and the
	// gateway refuses the key.
	e.do("disable", chromedp.Click(css(`form[action$="/enabled"] button`)),
		chromedp.WaitVisible(css(`.key-title .badge-disabled`)))
	if got := e.text(`.key-title .badge`); got != "disabled" {
		t.Errorf("after disabling, the badge reads %q", got)
	}
	if status, b := e.call("/api/hello", secret); status != http.StatusForbidden || denial(b) != "disabled" {
		t.Errorf("a disabled key through the gateway: %d %s", status, b)
	}
	e.do("owners after disabling", chromedp.Navigate(e.base+"/owners?owner=acme"), chromedp.WaitVisible(css(`table.keys`)))
	badges := eval[[]string](e, `Array.from(document.querySelectorAll('table.keys tbody tr')).map(tr => tr.querySelector('a').innerText + '=' + tr.querySelector('.badge').innerText)`)
	if !containsAll(badges, "billing-prod=disabled", "reporting=active") {
		t.Errorf("badges under acme: %v", badges)
	}
	lastUsed := eval[[]string](e, `Array.from(document.querySelectorAll('table.keys td[data-label="Last used"]')).map(td => td.innerText)`)
	if len(lastUsed) != 2 || !strings.HasSuffix(lastUsed[0], " UTC") || !strings.HasSuffix(lastUsed[1], " UTC") {
		t.Errorf("last used under acme: %q, want the time of each key's last call", lastUsed)
	}
	e.screenshot("owners")

	// Enable again; the audit trail records both changes, who and when.
	e.do("enable", chromedp.Navigate(e.base+"/keys/"+keyID), chromedp.WaitVisible(css(`form[action$="/enabled"] button`)),
		chromedp.Click(css(`form[action$="/enabled"] button`)),
		chromedp.WaitVisible(css(`.key-title .badge-active`)))
	audit := eval[[]string](e, `Array.from(document.querySelectorAll('table.audit tbody tr')).map(tr => tr.innerText.replace(/\s+/g, ' '))`)
	if len(audit) != 3 || !strings.Contains(audit[0], "enabled: false → true") || !strings.Contains(audit[1], "enabled: true → false") || !strings.Contains(audit[2], "key.create") {
		t.Errorf("the audit trail, newest first: %q", audit)
	}

	// Without scripts: a form the browser posts itself (the click came
	// before htmx took over, or scripts are off) is a console page's too.
	e.do("disable without htmx", waitJS(`document.readyState === 'complete'`),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(HTMLFormElement.prototype.submit.call(document.querySelector('form[action$="/enabled"]')), true)`)(ctx, t)
			return err
		}),
		chromedp.WaitVisible(css(`.key-title .badge-disabled`)))
	e.do("enable again", chromedp.Click(css(`form[action$="/enabled"] button`)),
		chromedp.WaitVisible(css(`.key-title .badge-active`)))

	// Settings: a change is saved and shows; a stale form is refused.
	e.do("edit settings", chromedp.Click(css(`details.edit summary`)),
		chromedp.WaitVisible(css(`#f-scopes`)),
		chromedp.SetValue(css(`#f-scopes`), "read write"),
		chromedp.Click(css(`#keyform button[type=submit]`)),
		waitText(`.flash`, "Settings saved."))
	if got := e.text(`dl.settings`); !strings.Contains(got, "read, write") {
		t.Errorf("after saving scopes the settings read:\n%s", got)
	}

	// Rotate the other key with no grace: its successor is shown once, and
	// the old key is expired at once.
	e.do("reporting's page", chromedp.Navigate(e.base+"/owners?owner=acme"), chromedp.WaitVisible(css(`table.keys`)))
	otherID := eval[string](e, `Array.from(document.querySelectorAll('table.keys tbody tr a')).find(a => a.innerText === 'reporting').getAttribute('href').slice(6)`)
	e.do("rotate", chromedp.Navigate(e.base+"/keys/"+otherID), chromedp.WaitVisible(css(`#grace`)),
		chromedp.SetValue(css(`#grace`), "0"),
		chromedp.Click(css(`form[action$="/rotate"] button`)),
		chromedp.WaitVisible(css(`#secret`)))
	successor := e.text(`#secret`)
	if !wholeKey.MatchString(successor) || successor == other {
		t.Errorf("after rotating, the page shows %q as the new key", successor)
	}
	if got := e.text(`.key-title .badge`); got != "expired" {
		t.Errorf("a key rotated with no grace reads %q, want expired", got)
	}
	if status, _ := e.call("/api/hello", successor); status != http.StatusOK {
		t.Errorf("the successor through the gateway: %d", status)
	}

	// Revoke billing-prod: the first click only asks, naming the key; Cancel
	// keeps it; the confirmation revokes it.
	e.do("revoke, then cancel", chromedp.Navigate(e.base+"/keys/"+keyID),
		chromedp.WaitVisible(css(`#revoke-area a`)),
		chromedp.Click(css(`#revoke-area a`)),
		chromedp.WaitVisible(css(`.confirm`)))
	confirm := e.text(`.confirm`)
	if !strings.Contains(confirm, "Revoke “billing-prod”?") || !strings.Contains(confirm, keyID) {
		t.Errorf("the confirmation does not name the key:\n%s", confirm)
	}
	e.checkPage("the revocation's confirmation")
	e.screenshot("revoke-confirm")
	if status, _ := e.call("/api/hello", secret); status != http.StatusOK { // the 8th request of billing-prod
		t.Errorf("asking for the confirmation revoked the key already: %d", status)
	}
	e.do("cancel", chromedp.Click(css(`.confirm a`)),
		chromedp.WaitNotPresent(css(`.confirm`)))
	e.do("revoke with the keyboard", chromedp.Focus(css(`#revoke-area a`)),
		chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(css(`.confirm button.danger`)),
		chromedp.Click(css(`.confirm button.danger`)),
		chromedp.WaitVisible(css(`.key-title .badge-revoked`)))
	if status, b := e.call("/api/hello", secret); status != http.StatusForbidden || denial(b) != "revoked" {
		t.Errorf("a revoked key through the gateway: %d %s", status, b)
	}
	actions := eval[int](e, `document.querySelectorAll('form[action$="/enabled"], form[action$="/rotate"]').length`)
	if actions != 0 {
		t.Errorf("a revoked key still offers %d actions", actions)
	}

	// The owner's usage: stacked by key, totals, and the CSV.
	e.do("owner usage", chromedp.Navigate(e.base+"/usage?owner=acme"), chromedp.WaitVisible(css(`#owner-chart`)))
	stack := eval[ownerChart](e, `(() => { const c = Chart.getChart(document.getElementById('owner-chart'));
	  return {series: c.data.datasets.map(d => d.label), totals: c.data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))}; })()`)
	if len(stack.Series) != 3 || !strings.HasPrefix(stack.Series[0], "billing-prod") || stack.Totals[0] != 8 ||
		!strings.HasPrefix(stack.Series[1], "reporting") || stack.Totals[1] != 3 ||
		!strings.HasPrefix(stack.Series[2], "reporting") || stack.Totals[2] != 1 {
		t.Errorf("the owner's stacked chart: %+v, want billing-prod 8, reporting 3 and its successor 1", stack)
	}
	if got := e.text(`.total strong`); got != "12" {
		t.Errorf("the owner's total reads %q, want 12 (8 + 3 + the successor's 1)", got)
	}
	e.checkPage("the owner usage page")
	e.screenshot("usage")
	csv := eval[string](e, `fetch(document.querySelector('a[href^="/usage.csv"]').getAttribute('href')).then(r => r.text())`)
	lines := strings.Split(strings.TrimSpace(csv), "\r\n")
	if lines[0] != "date,ownerId,keyId,keyName,requests" || len(lines) != 1+30*3 {
		t.Errorf("the CSV has %d lines, header %q; want a header and 30 days × 3 keys", len(lines), lines[0])
	}
	var sum int
	for _, l := range lines[1:] {
		var n int
		f := strings.Split(l, ",")
		fmt.Sscan(f[len(f)-1], &n)
		sum += n
	}
	if sum != 12 {
		t.Errorf("the CSV's requests add up to %d, want 12", sum)
	}

	// The plaintext keys reached no log: not the console's, not the stack's.
	for _, k := range []string{secret, other, successor} {
		if strings.Contains(e.console.String(), k) || strings.Contains(e.logs.String(), k) {
			t.Errorf("a plaintext key is in a log")
		}
	}
}

// keyChart is what the key page's chart draws.
type keyChart struct {
	Drawn bool `json:"drawn"`
	Days  int  `json:"days"`
	Total int  `json:"total"`
	Quota int  `json:"quota"`
}

// ownerChart is what the owner usage chart draws: one series per key.
type ownerChart struct {
	Series []string `json:"series"`
	Totals []int    `json:"totals"`
}

// waitText waits until the first element matching sel holds text.
func waitText(sel, text string) step {
	return waitJS(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText === %q`, sel, text))
}

// waitJS waits until a JavaScript expression is true in the page. It
// evaluates again and again, from Go, so that a navigation in between (which
// destroys the page's JavaScript context) is waited out.
func waitJS(js string) step {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			ok, err := chromedp.Evaluate[bool](js)(ctx, t)
			if err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w (last error: %v)", js, ctx.Err(), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}
