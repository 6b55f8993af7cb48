package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCreateSendsTheContractAndPrintsTheKeyOnce(t *testing.T) {
	for _, output := range []string{"json", "table"} {
		t.Run(output, func(t *testing.T) {
			plaintext := newPlaintext(t)
			api := newLocalAPI(t, func(int, seen) reply {
				return reply{status: http.StatusCreated, body: keyBody(t, testID, plaintext, nil),
					header: map[string]string{"ETag": `"1"`, "Location": "/v1/keys/" + testID}}
			})
			res := runCLI(t, local(api), "keys", "create", "--output", output,
				"--name", "billing worker", "--owner", "acme", "--type", "secret", "--environment", "live",
				"--scope", "read,write", "--ttl", "30d",
				"--rate-limit", "second=10/1s", "--rate-limit", "day=10000/1d",
				"--quota", "100000/month", "--metadata", "team=billing",
				"--allowed-cidr", "203.0.113.0/24", "--allowed-origin", "https://app.example.com",
				"--stage", "prod", "--not-before", "2026-12-01T01:00:00+01:00")
			if res.code != ExitOK {
				t.Fatalf("want exit 0, got %v", res)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("want 1 request, got %d", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != "/v1/keys" {
				t.Errorf("want POST /v1/keys, got %s %s", r.Method, r.Path)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if ik := r.Header.Get("Idempotency-Key"); !uuidRe.MatchString(ik) {
				t.Errorf("want a generated UUID Idempotency-Key, got %q", ik)
			}
			if a := r.Header.Get("Authorization"); a != "" {
				t.Errorf("loopback requests must not be signed, got Authorization %q", a)
			}
			jsonEqual(t, decodeBody(t, r), `{"name":"billing worker","ownerId":"acme","type":"secret","environment":"live",
				"scopes":["read","write"],"ttlSeconds":2592000,
				"rateLimits":[{"name":"second","limit":10,"windowSeconds":1},{"name":"day","limit":10000,"windowSeconds":86400}],
				"quota":{"limit":100000,"period":"month"},"metadata":{"team":"billing"},
				"allowedCidrs":["203.0.113.0/24"],"allowedOrigins":["https://app.example.com"],
				"stages":["prod"],"notBefore":"2026-12-01T00:00:00Z"}`)

			if n := strings.Count(res.stdout, plaintext); n != 1 {
				t.Errorf("the plaintext appears %d times in stdout, want exactly once:\n%s", n, res.stdout)
			}
			if strings.Contains(res.stderr, plaintext) {
				t.Errorf("the plaintext reached stderr:\n%s", res.stderr)
			}
			if strings.TrimSpace(res.stderr) != plaintextWarning {
				t.Errorf("stderr should hold only the warning, got:\n%s", res.stderr)
			}
			if output == "json" {
				var got map[string]any
				if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
					t.Fatalf("json output does not parse: %v\n%s", err, res.stdout)
				}
				if got["key"] != plaintext || got["id"] != testID {
					t.Errorf("json output lacks id or key: %v", got)
				}
			} else {
				mustContain(t, "table", res.stdout, "id ", testID, "owner ", "acme", "rate limits ", "second=10/1s",
					"quota ", "100000/month", `{"team":"billing"}`, "key ")
				if json.Valid([]byte(res.stdout)) {
					t.Error("table output should not be JSON")
				}
			}
		})
	}
}

func TestOutputDefaultsToTableOnATerminalAndJSONOtherwise(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
	o := local(api)
	piped := runCLI(t, o, "keys", "get", testID)
	if piped.code != 0 || !json.Valid([]byte(piped.stdout)) {
		t.Errorf("piped output should be JSON: %v", piped)
	}
	o.terminal = true
	tty := runCLI(t, o, "keys", "get", testID)
	if tty.code != 0 || json.Valid([]byte(tty.stdout)) || !strings.Contains(tty.stdout, "billing worker") {
		t.Errorf("terminal output should be a table: %v", tty)
	}
	if strings.Contains(tty.stderr+piped.stderr, "warning") {
		t.Error("a get must not warn about a plaintext it does not show")
	}
}

func TestCreateTakesTheGivenIdempotencyKeyAndRetriesWithIt(t *testing.T) {
	plaintext := newPlaintext(t)
	api := newLocalAPI(t, func(n int, _ seen) reply {
		if n == 0 {
			return problemReply(http.StatusServiceUnavailable, "unavailable", "", "the key store is unavailable; retry shortly")
		}
		return reply{status: http.StatusCreated, body: keyBody(t, testID, plaintext, nil)}
	})
	res := runCLI(t, local(api), "keys", "create", "--name", "n", "--owner", "acme", "--idempotency-key", "order-42")
	if res.code != 0 {
		t.Fatalf("a 503 then a 201 should succeed: %v", res)
	}
	reqs := api.requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 attempts, got %d", len(reqs))
	}
	for _, r := range reqs {
		if ik := r.Header.Get("Idempotency-Key"); ik != "order-42" {
			t.Errorf("attempt sent Idempotency-Key %q, want order-42", ik)
		}
	}
	if string(reqs[0].Body) != string(reqs[1].Body) {
		t.Error("a retry must send the same body")
	}
	if len(res.sleeps) != 1 {
		t.Errorf("want one wait before the retry, got %v", res.sleeps)
	}
	if strings.Count(res.stdout, plaintext) != 1 {
		t.Errorf("plaintext should appear once: %v", res)
	}
}

func TestCreateGivesUpAfterThreeAttemptsAndSaysHowToRetrySafely(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply {
		return problemReply(http.StatusServiceUnavailable, "unavailable", "", "the key store is unavailable; retry shortly")
	})
	res := runCLI(t, local(api), "keys", "create", "--name", "n", "--owner", "acme")
	if res.code != ExitUnavailable {
		t.Fatalf("want exit 3, got %v", res)
	}
	reqs := api.requests()
	if len(reqs) != 3 {
		t.Fatalf("want 3 attempts, got %d", len(reqs))
	}
	ik := reqs[0].Header.Get("Idempotency-Key")
	mustContain(t, "stderr", res.stderr, "503 unavailable", "--idempotency-key "+ik)
}

func TestNonIdempotentRequestsAreNotRetried(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply {
		if r.Method == http.MethodGet {
			return reply{status: 200, body: keyBody(t, testID, "", nil), header: map[string]string{"ETag": `"4"`}}
		}
		return problemReply(http.StatusServiceUnavailable, "unavailable", "", "down")
	})
	res := runCLI(t, local(api), "keys", "update", testID, "--name", "renamed")
	if res.code != ExitUnavailable {
		t.Fatalf("want exit 3, got %v", res)
	}
	var patches int
	for _, r := range api.requests() {
		if r.Method == http.MethodPatch {
			patches++
		}
	}
	if patches != 1 {
		t.Errorf("a PATCH must not be resent, got %d", patches)
	}
}

func TestUpdateSendsOnlyThePatchAndNoIfMatch(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply {
		return reply{status: 200, body: keyBody(t, testID, "", map[string]any{"version": 7}), header: map[string]string{"ETag": `"7"`}}
	})
	res := runCLI(t, local(api), "keys", "update", testID, "--name", "renamed", "--disable", "--no-quota",
		"--rate-limit", "minute=600/1m", "--expires-at", "2027-01-31T01:00:00+01:00")
	if res.code != 0 {
		t.Fatalf("update failed: %v", res)
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPatch {
		t.Fatalf("want one PATCH, got %+v", reqs)
	}
	p := reqs[0]
	if p.Path != "/v1/keys/"+testID {
		t.Errorf("PATCH path %s", p.Path)
	}
	// The admin API applies a PATCH without If-Match to the key as it is.
	if im := p.Header.Get("If-Match"); im != "" {
		t.Errorf(`If-Match %q sent without --if-match`, im)
	}
	jsonEqual(t, decodeBody(t, p), `{"name":"renamed","enabled":false,"quota":null,
		"rateLimits":[{"name":"minute","limit":600,"windowSeconds":60}],"expiresAt":"2027-01-31T00:00:00Z"}`)
}

// Every setting a key has can be changed from the command line, and
// removed with its --no-... flag.
func TestUpdateSetsAndClearsEverySetting(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
	res := runCLI(t, local(api), "keys", "update", testID, "--allowed-origin", "https://app.example.com",
		"--allowed-cidr", "203.0.113.0/24,2001:db8::/32", "--stage", "prod", "--not-before", "2027-01-01T00:00:00Z")
	if res.code != 0 {
		t.Fatalf("update failed: %v", res)
	}
	jsonEqual(t, decodeBody(t, api.requests()[0]), `{"allowedOrigins":["https://app.example.com"],
		"allowedCidrs":["203.0.113.0/24","2001:db8::/32"],"stages":["prod"],"notBefore":"2027-01-01T00:00:00Z"}`)
	res = runCLI(t, local(api), "keys", "update", testID, "--no-allowed-origins", "--no-allowed-cidrs", "--no-stages", "--no-not-before")
	if res.code != 0 {
		t.Fatalf("update failed: %v", res)
	}
	jsonEqual(t, decodeBody(t, api.requests()[1]), `{"allowedOrigins":[],"allowedCidrs":[],"stages":[],"notBefore":null}`)
	for _, bad := range [][]string{
		{"--allowed-cidr", "203.0.113.0/33"}, {"--allowed-origin", "app.example.com"}, {"--stage", "no spaces"},
		{"--not-before", "tomorrow"}, {"--stage", "prod", "--no-stages"},
	} {
		if res := runCLI(t, local(api), append([]string{"keys", "update", testID}, bad...)...); res.code != ExitUsage {
			t.Errorf("%v: want exit 2, got %v", bad, res)
		}
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("a refused command line sent a request (%d in all)", n)
	}
}

func TestUpdateWithIfMatchSendsIt(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
	res := runCLI(t, local(api), "keys", "update", "--if-match", "3", testID, "--enable", "--no-scopes")
	if res.code != 0 {
		t.Fatalf("update failed: %v", res)
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPatch {
		t.Fatalf("want only a PATCH, got %d requests", len(reqs))
	}
	if im := reqs[0].Header.Get("If-Match"); im != `"3"` {
		t.Errorf(`If-Match %q, want "3"`, im)
	}
	jsonEqual(t, decodeBody(t, reqs[0]), `{"enabled":true,"scopes":[]}`)
}

func TestStaleVersionIsAnAPIErrorThatSaysWhatToDo(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply {
		return problemReply(http.StatusPreconditionFailed, "precondition_failed", "If-Match", "the key has changed since version 3")
	})
	res := runCLI(t, local(api), "keys", "update", testID, "--if-match", `"3"`, "--name", "x")
	if res.code != ExitAPI {
		t.Fatalf("want exit 1, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "412 precondition_failed", "keygate keys get ID")
}

func TestListSendsFiltersAndFollowsCursors(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply {
		id := []string{"key_aaaaaaaaaaaaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbbbbbbbbbbbb"}[min(n, 1)]
		page := map[string]any{"keys": []json.RawMessage{json.RawMessage(keyBody(t, id, "", nil))}}
		if n == 0 {
			page["nextCursor"] = "c1"
		}
		b, _ := json.Marshal(page)
		return reply{status: 200, body: string(b)}
	})
	res := runCLI(t, local(api), "keys", "list", "--owner", "acme", "--status", "active", "--environment", "live", "--limit", "1", "--all")
	if res.code != 0 {
		t.Fatalf("list failed: %v", res)
	}
	reqs := api.requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 pages, got %d", len(reqs))
	}
	q0, _ := url.ParseQuery(reqs[0].RawQuery)
	q1, _ := url.ParseQuery(reqs[1].RawQuery)
	if reqs[0].Path != "/v1/keys" || q0.Get("ownerId") != "acme" || q0.Get("status") != "active" ||
		q0.Get("environment") != "live" || q0.Get("limit") != "1" || q0.Has("cursor") {
		t.Errorf("first page query %q", reqs[0].RawQuery)
	}
	if q1.Get("cursor") != "c1" || q1.Get("ownerId") != "acme" {
		t.Errorf("second page query %q", reqs[1].RawQuery)
	}
	var out struct {
		Keys []struct{ ID string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out.Keys) != 2 {
		t.Fatalf("want both pages' keys as JSON, got %v (%v)", res.stdout, err)
	}
}

func TestListOnePageTellsHowToGetTheNext(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply {
		return reply{status: 200, body: `{"keys":[` + keyBody(t, testID, "", nil) + `],"nextCursor":"abc"}`}
	})
	res := runCLI(t, local(api), "keys", "list", "--owner", "acme", "--output", "table")
	if res.code != 0 {
		t.Fatalf("list failed: %v", res)
	}
	mustContain(t, "table", res.stdout, "ID", "STATUS", testID, "billing worker", "active")
	mustContain(t, "stderr", res.stderr, "--cursor abc")
}

func TestRotateSendsGracePeriodAndPrintsTheNewKeyOnce(t *testing.T) {
	plaintext := newPlaintext(t)
	newID := "key_zzzzzzzzzzzzzzzzzzzzzzzzzz"
	api := newLocalAPI(t, func(int, seen) reply {
		return reply{status: http.StatusCreated, body: keyBody(t, newID, plaintext, map[string]any{"previousKeyId": testID})}
	})
	res := runCLI(t, local(api), "keys", "rotate", testID, "--grace-period", "24h", "--output", "table")
	if res.code != 0 {
		t.Fatalf("rotate failed: %v", res)
	}
	r := api.requests()[0]
	if r.Method != http.MethodPost || r.Path != "/v1/keys/"+testID+"/rotate" {
		t.Errorf("want POST /v1/keys/ID/rotate, got %s %s", r.Method, r.Path)
	}
	if !uuidRe.MatchString(r.Header.Get("Idempotency-Key")) {
		t.Errorf("rotate needs a generated Idempotency-Key, got %q", r.Header.Get("Idempotency-Key"))
	}
	jsonEqual(t, decodeBody(t, r), `{"gracePeriodSeconds":86400}`)
	if strings.Count(res.stdout, plaintext) != 1 || strings.Contains(res.stderr, plaintext) {
		t.Errorf("the new key must be in stdout once and never in stderr: %v", res)
	}
	mustContain(t, "stdout", res.stdout, "previous key", testID, newID)
	mustContain(t, "stderr", res.stderr, "only time")
}

func TestGetRevokeAndUsageUseTheirRoutes(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply {
		if strings.HasSuffix(r.Path, "/usage") {
			return reply{status: 200, body: `{"keyId":"` + testID + `","from":"2026-11-01","to":"2026-11-02","total":7,
				"days":[{"date":"2026-11-01","count":3},{"date":"2026-11-02","count":4}]}`}
		}
		return reply{status: 200, body: keyBody(t, testID, "", map[string]any{"status": "revoked"})}
	})
	o := local(api)
	for _, args := range [][]string{{"keys", "get", testID}, {"keys", "revoke", testID},
		{"keys", "usage", testID, "--from", "2026-11-01", "--to", "2026-11-02T23:00:00Z", "--output", "table"}} {
		if res := runCLI(t, o, args...); res.code != 0 {
			t.Fatalf("%v: %v", args, res)
		} else if args[1] == "usage" {
			mustContain(t, "usage table", res.stdout, "DATE", "2026-11-01", "3", "2026-11-02", "4", "total", "7")
		}
	}
	reqs := api.requests()
	want := []string{"GET /v1/keys/" + testID + "?", "DELETE /v1/keys/" + testID + "?",
		"GET /v1/keys/" + testID + "/usage?from=2026-11-01&to=2026-11-02"}
	for i, r := range reqs {
		if got := r.Method + " " + r.Path + "?" + r.RawQuery; got != want[i] {
			t.Errorf("request %d: got %s, want %s", i, got, want[i])
		}
		if len(r.Body) != 0 {
			t.Errorf("%s must send no body", r.Method)
		}
	}
}

func TestAPIErrorsExitOneAndNameTheFlag(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply {
		return problemReply(http.StatusBadRequest, "invalid_request", "rateLimits.windowSeconds", "must be from 1 to 2678400")
	})
	res := runCLI(t, local(api), "keys", "create", "--name", "n", "--owner", "acme")
	if res.code != ExitAPI {
		t.Fatalf("want exit 1, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "400 invalid_request", "rateLimits.windowSeconds", "must be from 1", "fix --rate-limit")
	if len(api.requests()) != 1 {
		t.Error("a 400 must not be retried")
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name   string
		reply  reply
		code   int
		stderr string
	}{
		{"not found", problemReply(404, "not_found", "", "no such key"), ExitAPI, "check the key id"},
		{"conflict", problemReply(409, "conflict", "", "changed"), ExitAPI, "keygate keys get"},
		{"server error", problemReply(500, "internal", "", "internal error"), ExitUnavailable, "logs"},
		{"throttled", reply{status: 429, body: `{"message":"Too Many Requests"}`}, ExitUnavailable, "throttled"},
		{"forbidden", reply{status: 403, body: `{"message":"Forbidden"}`}, ExitUnavailable, "local gateway refused"},
		{"not json", reply{status: 200, body: `<html>hello</html>`}, ExitUnavailable, "not the expected JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := newLocalAPI(t, func(int, seen) reply { return c.reply })
			res := runCLI(t, local(api), "keys", "get", testID)
			if res.code != c.code {
				t.Fatalf("want exit %d, got %v", c.code, res)
			}
			mustContain(t, "stderr", res.stderr, c.stderr)
		})
	}
}

func TestNothingListeningOnLoopbackSaysRunMakeDev(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply { return reply{status: 200} })
	u := api.srv.URL
	api.srv.Close() // the port is now closed: connection refused
	res := runCLI(t, runOpts{env: map[string]string{"KEYGATE_API_URL": u}}, "keys", "get", testID)
	if res.code != ExitUnavailable {
		t.Fatalf("want exit 3, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "nothing is listening at "+u, "make dev")
	if len(res.sleeps) != 0 {
		t.Errorf("a refused connection is not worth retrying, slept %v", res.sleeps)
	}
}

func TestDefaultURLIsTheLocalStack(t *testing.T) {
	a := &app{env: func(string) string { return "" }, opts: options{}}
	if src, u := a.urlSource(); u != DefaultAPIURL || src != "default" {
		t.Errorf("got %s from %s", u, src)
	}
	a.env = func(k string) string { return map[string]string{"KEYGATE_API_URL": "http://localhost:4000"}[k] }
	if _, u := a.urlSource(); u != "http://localhost:4000" {
		t.Errorf("KEYGATE_API_URL ignored: %s", u)
	}
	a.opts.apiURL = "http://127.0.0.1:5000"
	if src, u := a.urlSource(); u != "http://127.0.0.1:5000" || src != "--api-url" {
		t.Errorf("--api-url should win over the environment: %s from %s", u, src)
	}
}

func TestErrorsNeverCarryAKey(t *testing.T) {
	leaked := newPlaintext(t)
	api := newLocalAPI(t, func(int, seen) reply {
		return problemReply(400, "invalid_request", "name", "name "+leaked+" is not allowed")
	})
	res := runCLI(t, local(api), "keys", "create", "--name", "n", "--owner", "acme")
	if res.code != ExitAPI {
		t.Fatalf("want exit 1, got %v", res)
	}
	if strings.Contains(res.stderr, leaked) || strings.Contains(res.stdout, leaked) {
		t.Errorf("a key echoed by the server reached the output:\n%v", res)
	}
	mustContain(t, "stderr", res.stderr, "[redacted key]")
}

func TestTableOutputNeutralisesControlCharacters(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply {
		return reply{status: 200, body: keyBody(t, testID, "", map[string]any{"name": "evil\x1b[2J\rname",
			"metadata": map[string]any{"x": "\x1b]0;title\x07"}})}
	})
	o := local(api)
	o.terminal = true
	res := runCLI(t, o, "keys", "get", testID)
	if res.code != 0 {
		t.Fatalf("get failed: %v", res)
	}
	if strings.ContainsAny(res.stdout, "\x1b\r\x07") {
		t.Errorf("control characters reached the terminal: %q", res.stdout)
	}
	mustContain(t, "table", res.stdout, "evil?[2J?name")
}

func TestTokensCreateSendsTheKeyInXAPIKeyUnsigned(t *testing.T) {
	plaintext := newPlaintext(t)
	api, tr := newDeployedAPI(t, func(int, seen) reply {
		return reply{status: 201, body: `{"token":"eyJhbGciOiJFZERTQSJ9.e30.c2ln","expiresAt":"2026-11-26T12:15:00Z"}`}
	})
	res := runCLI(t, runOpts{transport: tr, env: map[string]string{
		"KEYGATE_API_URL": deployedURL, "KEYGATE_API_KEY": plaintext}},
		"tokens", "create", "--ttl", "15m", "--scope", "read", "--output", "table")
	if res.code != 0 {
		t.Fatalf("tokens create failed: %v", res)
	}
	r := api.requests()[0]
	if r.Method != http.MethodPost || r.Path != "/prod/v1/tokens" {
		t.Errorf("want POST /prod/v1/tokens, got %s %s", r.Method, r.Path)
	}
	if r.Header.Get("X-Api-Key") != plaintext {
		t.Error("the key must travel in x-api-key")
	}
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Date") != "" {
		t.Error("the token route sits behind the keygate authorizer and must not be SigV4-signed")
	}
	jsonEqual(t, decodeBody(t, r), `{"ttlSeconds":900,"scopes":["read"]}`)
	mustContain(t, "stdout", res.stdout, "eyJhbGciOiJFZERTQSJ9.e30.c2ln", "2026-11-26T12:15:00Z")
	if strings.Contains(res.stdout+res.stderr, plaintext) {
		t.Error("tokens create must not print the API key")
	}
}

func TestTokensCreateRefusedKeyExitsThreeWithoutEchoingIt(t *testing.T) {
	plaintext := newPlaintext(t)
	api := newLocalAPI(t, func(int, seen) reply {
		return reply{status: 403, body: `{"code":"revoked","message":"the key was revoked"}`}
	})
	res := runCLI(t, runOpts{env: map[string]string{"KEYGATE_API_URL": api.srv.URL, "KEYGATE_API_KEY": plaintext}},
		"tokens", "create")
	if res.code != ExitUnavailable {
		t.Fatalf("want exit 3, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "403 revoked", "the key was revoked", "KEYGATE_API_KEY")
	if strings.Contains(res.stderr, plaintext) {
		t.Error("the key reached stderr")
	}
	if len(api.requests()) != 1 {
		t.Error("a token request must not be retried")
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"keys", "create", "-h"}, {"tokens", "create", "--help"}} {
		res := runCLI(t, runOpts{}, args...)
		if res.code != 0 || !strings.Contains(res.stdout, "Usage") {
			t.Errorf("%v: %v", args, res)
		}
	}
}

func TestDroppedConnectionIsRetriedWithTheSameIdempotencyKey(t *testing.T) {
	plaintext := newPlaintext(t)
	api := newLocalAPI(t, func(n int, _ seen) reply {
		if n == 0 {
			return reply{status: -1} // hang up without an answer
		}
		return reply{status: http.StatusCreated, body: keyBody(t, testID, plaintext, nil)}
	})
	res := runCLI(t, local(api), "keys", "create", "--name", "n", "--owner", "acme")
	if res.code != 0 {
		t.Fatalf("a dropped connection then a 201 should succeed: %v", res)
	}
	reqs := api.requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Idempotency-Key") != reqs[1].Header.Get("Idempotency-Key") {
		t.Fatalf("want 2 attempts with one Idempotency-Key, got %d", len(reqs))
	}
	if len(res.sleeps) != 1 {
		t.Errorf("want the CLI's own retry after a wait, got waits %v", res.sleeps)
	}
	if strings.Count(res.stdout, plaintext) != 1 {
		t.Errorf("plaintext should appear once: %v", res)
	}
}
