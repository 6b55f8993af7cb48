package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// A key as the admin API returns it, for the fake.
func wireKey(over map[string]any) map[string]any {
	k := map[string]any{
		"id": "key_0123456789abcdefghjkmnpqrs", "name": "billing", "ownerId": "acme", "type": "secret",
		"environment": "live", "status": "active", "hint": "kg_sk_live_AbCd", "scopes": []string{"read"},
		"createdAt": "2026-11-01T00:00:00Z", "updatedAt": "2026-11-01T00:00:00Z", "notBefore": nil,
		"expiresAt": "2026-11-15T00:00:00Z", "rateLimits": []map[string]any{{"name": "minute", "limit": 100, "windowSeconds": 60}},
		"quota": map[string]any{"limit": 1000, "period": "month"}, "metadata": map[string]any{"plan": "pro"},
		"allowedOrigins": []string{}, "allowedCidrs": []string{}, "stages": []string{}, "version": 3,
	}
	for f, v := range over {
		k[f] = v
	}
	return k
}

// keyAPI answers GET and PATCH of one key and its usage and audit trail;
// patch decides the PATCH's answer.
func keyAPI(k map[string]any, patch func(r Request) (int, any)) *fakeAPI {
	return &fakeAPI{answer: func(r Request) (int, any) {
		switch {
		case r.Method == http.MethodPatch:
			return patch(r)
		case strings.HasSuffix(r.Path, "/usage"):
			return 200, map[string]any{"keyId": k["id"], "from": r.Query.Get("from"), "to": r.Query.Get("to"), "total": 0, "days": []any{}}
		case strings.HasSuffix(r.Path, "/audit"):
			return 200, map[string]any{"records": []any{}}
		}
		return 200, k
	}}
}

// postSettings posts the key page's settings form as a browser would: the
// values it was rendered with, changed by set.
func postSettings(t *testing.T, s *served, csrf string, set map[string]string) (*http.Response, string) {
	t.Helper()
	_, page := s.get(t, "/keys/key_0123456789abcdefghjkmnpqrs")
	form := url.Values{"csrf": {csrf}}
	// The settings form only (the page has the other actions' forms too).
	page = page[strings.Index(page, `id="keyform"`):]
	page = page[:strings.Index(page, "</form>")]
	nameRe, valueRe := regexp.MustCompile(` name="([^"]+)"`), regexp.MustCompile(` value="([^"]*)"`)
	for _, tag := range regexp.MustCompile(`<input [^>]*>`).FindAllString(page, -1) {
		n, v := nameRe.FindStringSubmatch(tag), valueRe.FindStringSubmatch(tag)
		if n != nil && v != nil && n[1] != "csrf" {
			form.Set(n[1], htmlUnescape(v[1]))
		}
	}
	for _, m := range regexp.MustCompile(`(?s)<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	for _, m := range regexp.MustCompile(`(?s)<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>`).FindAllStringSubmatch(page, -1) {
		if sel := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindStringSubmatch(m[2]); sel != nil {
			form.Set(m[1], sel[1])
		}
	}
	for k, v := range set {
		form.Set(k, v)
	}
	return s.send(t, http.MethodPost, "/keys/key_0123456789abcdefghjkmnpqrs/settings", form, "HX-Request", "true")
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

func TestSavingSettingsSendsOnlyWhatChangedWithTheVersionRead(t *testing.T) {
	var patches []map[string]any
	var ifMatch []string
	api := keyAPI(wireKey(nil), func(r Request) (int, any) {
		var b map[string]any
		_ = json.Unmarshal(r.Body, &b)
		patches, ifMatch = append(patches, b), append(ifMatch, r.Header.Get("If-Match"))
		return 200, wireKey(b)
	})
	s := serve(t, api)
	csrf := s.signIn(t)

	// The key expired on 2026-11-15: a rename must not send (and so
	// re-check) the past expiry.
	resp, body := postSettings(t, s, csrf, map[string]string{"name": "billing v2"})
	if resp.StatusCode != http.StatusOK || len(patches) != 1 {
		t.Fatalf("rename: %d, %d PATCHes\n%s", resp.StatusCode, len(patches), body)
	}
	if b, _ := json.Marshal(patches[0]); string(b) != `{"name":"billing v2"}` || ifMatch[0] != `"3"` {
		t.Errorf("rename sent %s with If-Match %s, want only the name, If-Match \"3\"", b, ifMatch[0])
	}
	if resp.Header.Get("HX-Retarget") != "#key" || !strings.Contains(body, "Settings saved.") {
		t.Errorf("after saving, the key page is not shown with the news (retarget %q)", resp.Header.Get("HX-Retarget"))
	}

	// Clearing the quota and the expiry sends null; new limits replace the old.
	postSettings(t, s, csrf, map[string]string{"quotaPeriod": "", "quotaLimit": "", "expiresAt": "",
		"limitName0": "second", "limitLimit0": "5", "limitWindow0": "1", "scopes": "read, write"})
	b, _ := json.Marshal(patches[1])
	if string(b) != `{"expiresAt":null,"quota":null,"rateLimits":[{"limit":5,"name":"second","windowSeconds":1}],"scopes":["read","write"]}` {
		t.Errorf("the second save sent %s", b)
	}

	// Nothing changed: nothing is sent, and the form says so.
	resp, body = postSettings(t, s, csrf, nil)
	if len(patches) != 2 || resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "no setting was changed") {
		t.Errorf("an unchanged form: %d, %d PATCHes\n%s", resp.StatusCode, len(patches), body)
	}
}

func TestAPIProblemsAreShownNextToTheFieldTheyName(t *testing.T) {
	var answer func(Request) (int, any)
	s := serve(t, keyAPI(wireKey(nil), func(r Request) (int, any) { return answer(r) }))
	csrf := s.signIn(t)
	for _, c := range []struct {
		problem  map[string]any
		id, want string
	}{
		{map[string]any{"status": 400, "code": "invalid_request", "field": "quota.limit", "detail": "must be from 1 to 1000000000000"},
			"f-quota-error", "limit must be from 1 to 1000000000000"},
		{map[string]any{"status": 400, "code": "invalid_request", "field": "name", "detail": "must be valid UTF-8 of at most 128 characters"},
			"f-name-error", "must be valid UTF-8 of at most 128 characters"},
		{map[string]any{"status": 400, "code": "invalid_request", "field": "rateLimits.windowSeconds", "detail": "must be from 1 to 2678400"},
			"f-rateLimits-error", "window must be from 1 to 2678400"},
	} {
		answer = func(Request) (int, any) { return 400, c.problem }
		resp, body := postSettings(t, s, csrf, map[string]string{"name": "renamed"})
		m := regexp.MustCompile(`id="` + c.id + `">([^<]*)<`).FindStringSubmatch(body)
		if resp.StatusCode != http.StatusUnprocessableEntity || m == nil || m[1] != c.want {
			t.Errorf("problem %v: %d, message %v, want %q next to its field\n%s", c.problem, resp.StatusCode, m, c.want, body)
		}
		field := strings.TrimSuffix(strings.TrimPrefix(c.id, "f-"), "-error")
		if !regexp.MustCompile(`aria-describedby="f-` + field + `-hint f-` + field + `-error"`).MatchString(body) {
			t.Errorf("the %s field does not point at its message with aria-describedby", field)
		}
		if !strings.Contains(body, `value="renamed"`) {
			t.Errorf("the refused form lost what was typed")
		}
	}
	// A stale form (412, field If-Match, which no input has) is said at the top.
	answer = func(Request) (int, any) {
		return 412, map[string]any{"status": 412, "code": "precondition_failed", "field": "If-Match", "detail": "the key's version is 4, not 3"}
	}
	_, body := postSettings(t, s, csrf, map[string]string{"name": "renamed"})
	if !strings.Contains(body, `<p class="error" role="alert">the key changed since this page was loaded`) {
		t.Errorf("a stale form:\n%s", body)
	}
	// Syntax the console checks itself never reaches the API.
	answer = func(Request) (int, any) { t.Error("a form with bad syntax reached the API"); return 500, nil }
	_, body = postSettings(t, s, csrf, map[string]string{"limitLimit0": "many", "metadata": "{not json", "expiresAt": "soon"})
	for _, want := range []string{`id="f-rateLimits-error">limit of &#34;minute&#34; must be a whole number<`,
		`id="f-metadata-error">must be a JSON object`, `id="f-expiresAt-error">must be a date and time in UTC`} {
		if !strings.Contains(body, want) {
			t.Errorf("bad syntax: no %s in\n%s", want, body)
		}
	}
}

func TestBadgesNameEveryState(t *testing.T) {
	for _, c := range []struct {
		over map[string]any
		want string
	}{
		{map[string]any{"status": "active", "expiresAt": nil}, "active"},
		{map[string]any{"status": "active", "notBefore": "2026-12-24T00:00:00Z"}, "not yet valid"},
		{map[string]any{"status": "disabled"}, "disabled"},
		{map[string]any{"status": "expired"}, "expired"},
		{map[string]any{"status": "revoked", "revokedAt": "2026-11-20T00:00:00Z"}, "revoked"},
	} {
		k := wireKey(c.over)
		s := serve(t, &fakeAPI{answer: func(r Request) (int, any) {
			if r.Path == "/v1/keys" {
				return 200, map[string]any{"keys": []any{k}}
			}
			return 200, k
		}})
		s.signIn(t)
		_, body := s.get(t, "/owners?owner=acme")
		want := `<span class="badge badge-` + strings.ReplaceAll(c.want, " ", "-") + `">` + c.want + `</span>`
		if !strings.Contains(body, want) {
			t.Errorf("%v: no %s on the owners page", c.over, want)
		}
	}
}

func TestTheKeyPageShowsWhatEachOpenWindowHasLeft(t *testing.T) {
	k := wireKey(map[string]any{"current": map[string]any{"at": "2026-11-30T12:00:30Z",
		"rateLimits": []any{map[string]any{"name": "minute", "limit": 100, "used": 58, "remaining": 42, "resetAt": "2026-11-30T12:01:00Z"}},
		"quota":      nil}})
	s := serve(t, keyAPI(k, nil))
	s.signIn(t)
	_, page := s.get(t, "/keys/key_0123456789abcdefghjkmnpqrs")
	if !strings.Contains(page, "<td>42 of 100 left, resets 2026-11-30 12:01 UTC</td>") {
		t.Errorf("the limits table does not show the open window:\n%s", page[strings.Index(page, `id="h-limits"`):][:600])
	}
	// Without current (an older admin API), the page says so.
	delete(k, "current")
	_, page = s.get(t, "/keys/key_0123456789abcdefghjkmnpqrs")
	if !strings.Contains(page, "<td>not reported</td>") {
		t.Error("a key without current does not say its window is not reported")
	}
}
