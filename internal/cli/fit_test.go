package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On a terminal, revoke shows the key and asks; only y or yes goes on.
func TestRevokeAsksOnATerminal(t *testing.T) {
	for _, c := range []struct {
		answer  string
		revoked bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"", false}} {
		api := newLocalAPI(t, func(int, seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
		res := runCLI(t, runOpts{env: local(api).env, typing: true, stdin: c.answer}, "keys", "revoke", testID)
		reqs := api.requests()
		if len(reqs) == 0 || reqs[0].Method != http.MethodGet {
			t.Fatalf("answer %q: want the key read first, got %+v", c.answer, reqs)
		}
		mustContain(t, "the question", res.stderr, "Revoke "+testID, `"billing worker"`, "owner acme", "cannot be undone", "[y/N]")
		deleted := len(reqs) == 2 && reqs[1].Method == http.MethodDelete
		if deleted != c.revoked || (res.code == ExitOK) != c.revoked {
			t.Errorf("answer %q: deleted %v, %v", c.answer, deleted, res)
		}
		if !c.revoked {
			mustContain(t, "stderr", res.stderr, "cancelled", "--yes")
		}
	}
}

// --yes skips the question, and input that is not a terminal (a script, a
// pipe, CI) is never asked: the key is revoked at once.
func TestRevokeNeverAsksAScriptOrWithYes(t *testing.T) {
	for _, o := range []runOpts{{typing: true, stdin: "n\n"}, {typing: false, stdin: "n\n"}} {
		api := newLocalAPI(t, func(int, seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
		o.env = local(api).env
		args := []string{"keys", "revoke", testID}
		if o.typing {
			args = append(args, "--yes")
		}
		res := runCLI(t, o, args...)
		reqs := api.requests()
		if res.code != ExitOK || len(reqs) != 1 || reqs[0].Method != http.MethodDelete || strings.Contains(res.stderr, "[y/N]") {
			t.Errorf("%v (terminal %v): want one DELETE and no question, got %d requests, %v", args, o.typing, len(reqs), res)
		}
	}
}

func TestAuditListsTheTrailAndFollowsCursors(t *testing.T) {
	api := newLocalAPI(t, func(n int, r seen) reply {
		page := map[string]any{"records": []map[string]any{{
			"keyId": testID, "at": "2026-11-26T12:0" + string(rune('0'+n)) + ":00Z", "actor": "arn:aws:iam::123456789012:user/alice",
			"action": []string{"key.create", "key.update"}[n], "version": n + 1,
			"changes": []map[string]any{{"name": "billing worker"}, {"enabled": map[string]any{"from": true, "to": false}}}[n],
		}}}
		if n == 0 {
			page["nextCursor"] = "c1"
		}
		b, _ := json.Marshal(page)
		return reply{status: 200, body: string(b)}
	})
	res := runCLI(t, local(api), "keys", "audit", testID, "--all", "--output", "table")
	if res.code != ExitOK {
		t.Fatalf("audit: %v", res)
	}
	mustContain(t, "table", res.stdout, "AT", "ACTION", "ACTOR", "key.create", `name="billing worker"`,
		"key.update", "enabled=true->false", "user/alice")
	reqs := api.requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1/keys/"+testID+"/audit" || !strings.Contains(reqs[1].RawQuery, "cursor=c1") {
		t.Fatalf("want two pages of /audit, got %+v", reqs)
	}
	res = runCLI(t, local(api), "keys", "audit", testID, "--limit", "1000")
	if res.code != ExitUsage || len(api.requests()) != 2 {
		t.Errorf("--limit 1000: want exit 2 and nothing sent, got %v", res)
	}
}

// A transient answer that says how long to wait is waited out, never less,
// with a little jitter on top; one that asks for too long is reported at
// once with when to retry. Without a wait, the backoff is spread by jitter.
func TestRetriesHonourRetryAfterWithJitter(t *testing.T) {
	for _, c := range []struct {
		name     string
		header   map[string]string
		body     string
		attempts int
		minWait  time.Duration
		maxWait  time.Duration
	}{
		{"seconds", map[string]string{"Retry-After": "3"}, "", 2, 3 * time.Second, 4 * time.Second},
		{"date", map[string]string{"Retry-After": testNow.Add(5 * time.Second).Format(http.TimeFormat)}, "", 2, 5 * time.Second, 6 * time.Second},
		{"body", nil, `{"code":"rate_limited","message":"m","retryAfterSeconds":2}`, 2, 2 * time.Second, 3 * time.Second},
		{"none", nil, "", 2, 250 * time.Millisecond, 750 * time.Millisecond},
		{"too long", map[string]string{"Retry-After": "120"}, "", 1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := newLocalAPI(t, func(n int, _ seen) reply {
				if n == 0 {
					return reply{status: http.StatusTooManyRequests, header: c.header, body: c.body}
				}
				return reply{status: 200, body: keyBody(t, testID, "", nil)}
			})
			for _, spread := range []float64{0, 0.999} {
				o := local(api)
				o.jitter = func(d time.Duration) time.Duration { return time.Duration(float64(d) * spread) }
				res := runCLI(t, o, "keys", "get", testID)
				if c.attempts == 1 {
					if res.code != ExitUnavailable || len(res.sleeps) != 0 {
						t.Fatalf("want no retry and exit 3, got %v (waits %v)", res, res.sleeps)
					}
					mustContain(t, "stderr", res.stderr, "try again in 120 s")
					return
				}
				if res.code != ExitOK || len(res.sleeps) != 1 {
					t.Fatalf("want one retry, got %v (waits %v)", res, res.sleeps)
				}
				if w := res.sleeps[0]; w < c.minWait || w > c.maxWait {
					t.Errorf("jitter %.3f: waited %v, want %v to %v", spread, w, c.minWait, c.maxWait)
				}
				api.mu.Lock()
				api.reqs = nil
				api.mu.Unlock()
			}
		})
	}
}

// tokens create --key-file - reads the key from standard input, so it can
// come from a secret manager's output without a file.
func TestKeyFileDashReadsStandardInput(t *testing.T) {
	plaintext := newPlaintext(t)
	api := newLocalAPI(t, func(int, seen) reply {
		return reply{status: 201, body: `{"token":"t.t.t","expiresAt":"2026-11-26T12:15:00Z"}`}
	})
	res := runCLI(t, runOpts{env: local(api).env, stdin: plaintext + "\n"}, "tokens", "create", "--key-file", "-")
	if res.code != ExitOK || api.requests()[0].Header.Get("X-Api-Key") != plaintext {
		t.Fatalf("--key-file -: %v", res)
	}
	res = runCLI(t, runOpts{env: local(api).env, stdin: strings.Repeat("x", 5000)}, "tokens", "create", "--key-file", "-")
	if res.code != ExitUsage || len(api.requests()) != 1 {
		t.Errorf("a huge standard input: want exit 2 and nothing sent, got %v", res)
	}
	// A file named "-" in the folder is not read.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "-"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if res = runCLI(t, runOpts{env: local(api).env, stdin: plaintext}, "tokens", "create", "--key-file", "-"); res.code != ExitOK {
		t.Errorf("with a file named -: %v", res)
	}
}

// Credentials resolve in the AWS SDK's order: --profile, then the keys in
// the environment, then AWS_PROFILE, then the rest of the default chain.
func TestCredentialsFollowTheSDKsOrder(t *testing.T) {
	env := awsEnv(t, map[string]string{"KEYGATE_API_URL": deployedURL})
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ops]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"environment keys beat AWS_PROFILE", map[string]string{"AWS_PROFILE": "ops"}, nil, testAccessKey},
		{"--profile beats environment keys", nil, []string{"--profile", "ops"}, "AKIDPROFILE"},
		{"AWS_PROFILE without environment keys", map[string]string{"AWS_PROFILE": "ops", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, nil, "AKIDPROFILE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range c.env {
				e[k] = v
			}
			var got string
			_, tr := newDeployedAPI(t, func(_ int, r seen) reply {
				got = r.Header.Get("Authorization")
				return reply{status: 200, body: keyBody(t, testID, "", nil)}
			})
			res := runCLI(t, runOpts{transport: tr, env: e}, append([]string{"keys", "get", testID}, c.args...)...)
			if res.code != ExitOK {
				t.Fatalf("%v", res)
			}
			if !strings.Contains(got, "Credential="+c.want+"/") {
				t.Errorf("signed with %q, want access key %s", got, c.want)
			}
		})
	}
}

// smoke --stack signs its admin API calls as every command does, calls
// the protected proxy unsigned where the stack's ProxyPath output says,
// and revokes the key it made even when a check fails.
func TestSmokeAgainstAStackSignsTheAdminAPIAndFindsTheProxy(t *testing.T) {
	cfn := &fakeCloudFormation{}
	cfnSrv := httptest.NewServer(cfn)
	t.Cleanup(cfnSrv.Close)
	plaintext := newPlaintext(t)
	api, tr := newDeployedAPI(t, func(_ int, r seen) reply {
		switch {
		case r.Method == http.MethodPost && r.Path == "/prod/v1/keys":
			return reply{status: 201, body: keyBody(t, testID, plaintext, nil), header: map[string]string{"Location": "/prod/v1/keys/" + testID}}
		case r.Method == http.MethodDelete:
			return reply{status: 200, body: keyBody(t, testID, "", map[string]any{"status": "revoked"})}
		case r.Path == "/prod/shop" && r.Header.Get("X-Api-Key") == "":
			return reply{status: 401, body: `{"code":"unauthorized","message":"a valid API key is required","retryAfterSeconds":0}`,
				header: map[string]string{"Cache-Control": "no-store"}}
		case r.Path == "/prod/shop":
			return reply{status: 403, body: `{"code":"wrong_environment","message":"no","retryAfterSeconds":0}`}
		}
		return reply{status: 200, body: keyBody(t, testID, "", map[string]any{"hint": plaintext[:len("kg_sk_live_")+4]})}
	})
	env := awsEnv(t, map[string]string{"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_CLOUDFORMATION": cfnSrv.URL})
	res := runCLI(t, runOpts{transport: tr, env: env}, "smoke", "--stack", "keygate")
	if res.code != ExitAPI {
		t.Fatalf("a failed check: want exit 1, got %v", res)
	}
	mustContain(t, "report", res.stdout, "proxy /shop", "FAIL the key opens the protected proxy: GET /shop: 403 wrong_environment",
		"ok   clean up: revoke the key the smoke test made", "4 passed, 1 failed")
	var proxied, deleted int
	for _, r := range api.requests() {
		switch {
		case strings.HasPrefix(r.Path, "/prod/v1/"):
			verifySigV4(t, r, "eu-west-1")
			if r.Method == http.MethodDelete {
				deleted++
			}
		case r.Path == "/prod/shop":
			proxied++
			if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Date") != "" {
				t.Errorf("a request to the proxy was signed")
			}
		default:
			t.Errorf("a request to %s", r.Path)
		}
	}
	if proxied != 2 || deleted != 1 {
		t.Errorf("%d proxy requests (want 2: without and with the key) and %d revocations (want 1)", proxied, deleted)
	}
	if strings.Contains(res.stdout+res.stderr, plaintext) {
		t.Error("the smoke test printed a key")
	}
}
