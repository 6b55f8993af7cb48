package browser

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestEveryPageFitsAPhone opens every page at a phone's width (390 CSS
// pixels, as an iPhone 14): nothing may stick out sideways, and the tables
// of keys become one card per key.
func TestEveryPageFitsAPhone(t *testing.T) {
	e := start(t, 390, 844)
	e.do("sign in", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(e.login), chromedp.WaitVisible(css(`#owner`)))
	secret := e.createKey("acme-with-a-rather-long-owner-id", "a key with a long name for a small screen", map[string]string{
		`#f-scopes`: "read write:orders admin:billing", `input[name=limitName0]`: "minute",
		`input[name=limitLimit0]`: "100", `input[name=limitWindow0]`: "60", `#f-quotaLimit`: "100000", `#f-quotaPeriod`: "month",
	})
	keyID := eval[string](e, `document.querySelector('.issued a[href^="/keys/"]').getAttribute('href').slice(6)`)
	e.screenshot("phone-created")
	for range 4 {
		if status, _ := e.call("/api/hello", secret); status != http.StatusOK {
			t.Fatalf("a call through the gateway: %d", status)
		}
	}
	for _, p := range []struct{ name, path, ready string }{
		{"phone-owners", "/owners?owner=acme-with-a-rather-long-owner-id", `table.keys`},
		{"phone-key", "/keys/" + keyID, `#key-chart`},
		{"phone-new", "/keys/new?owner=acme", `#keyform`},
		{"phone-usage", "/usage?owner=acme-with-a-rather-long-owner-id", `#owner-chart`},
	} {
		e.do(p.name, chromedp.Navigate(e.base+p.path), chromedp.WaitVisible(css(p.ready)))
		if out := eval[[]string](e, overflowing); len(out) > 0 {
			t.Errorf("%s is wider than a phone: %v stick out", p.path, out)
		}
		e.checkPage(p.path)
		e.screenshot(p.name)
	}
	for path, table := range map[string]string{
		"/owners?owner=acme-with-a-rather-long-owner-id": "table.keys",
		"/usage?owner=acme-with-a-rather-long-owner-id":  "table.totals",
	} {
		e.do(path, chromedp.Navigate(e.base+path), chromedp.WaitVisible(css(table)))
		if display := eval[string](e, `getComputedStyle(document.querySelector('`+table+` td')).display`); display == "table-cell" {
			t.Errorf("at phone width %s on %s is still a table (td display %s), not cards", table, path, display)
		}
	}
}
