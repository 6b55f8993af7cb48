package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad command line is refused with exit 2, a message naming what to
// fix, and no request at all.
func TestBadFlagsAreRefusedBeforeAnyRequest(t *testing.T) {
	create := []string{"keys", "create", "--name", "n", "--owner", "acme"}
	with := func(base []string, more ...string) []string { return append(append([]string(nil), base...), more...) }
	cases := []struct {
		args []string
		env  map[string]string
		want string // in stderr
	}{
		{args: nil, want: "no command"},
		{args: []string{"keys"}, want: "keys needs a command"},
		{args: []string{"tokens"}, want: "tokens needs a command"},
		{args: []string{"keys", "destroy"}, want: "unknown command 'keys destroy'"},
		{args: []string{"users", "list"}, want: "unknown command"},
		{args: with(create, "--frobnicate"), want: "--frobnicate"},
		{args: []string{"keys", "create", "--owner", "acme"}, want: "--name: is required"},
		{args: []string{"keys", "create", "--name", "n"}, want: "--owner: is required"},
		{args: with(create, "--owner", "has space"), want: "--owner"},
		{args: with(create, "--type", "admin"), want: "--type"},
		{args: with(create, "--environment", "prod"), want: "must be one of live, test"},
		{args: with(create, "--scope", "bad scope"), want: "--scope"},
		{args: with(create, "--scope", "a,a"), want: "duplicate scope"},
		{args: with(create, "--ttl", "-5"), want: "--ttl"},
		{args: with(create, "--ttl", "1.5s"), want: "--ttl"},
		{args: with(create, "--ttl", "0"), want: "--ttl: at least 1 second"},
		{args: with(create, "--ttl", "ten"), want: "whole seconds"},
		{args: with(create, "--expires-at", "tomorrow"), want: "RFC 3339"},
		{args: with(create, "--expires-at", "2020-01-01T00:00:00Z"), want: "--expires-at: must be in the future"},
		{args: with(create, "--expires-at", "2027-01-01T00:00:00Z", "--ttl", "1h"), want: "not both"},
		{args: with(create, "--rate-limit", "10/1s"), want: "NAME=LIMIT/WINDOW"},
		{args: with(create, "--rate-limit", "second=ten/1s"), want: "NAME=LIMIT/WINDOW"},
		{args: with(create, "--rate-limit", "second=0/1s"), want: "--rate-limit: must be from 1"},
		{args: with(create, "--rate-limit", "Second=10/1s"), want: "--rate-limit: must match"},
		{args: with(create, "--rate-limit", "s=10/0s"), want: "--rate-limit: must be from 1"},
		{args: with(create, "--rate-limit", "s=10/1s", "--rate-limit", "s=20/1m"), want: "duplicate rate limit"},
		{args: with(create, "--rate-limit", "day=10/400d"), want: "--rate-limit: must be from 1 to"},
		{args: with(create, "--quota", "100000/week"), want: "--quota"},
		{args: with(create, "--quota", "0/month"), want: "--quota"},
		{args: with(create, "--quota", "many"), want: "LIMIT/PERIOD"},
		{args: with(create, "--metadata", "novalue"), want: "KEY=VALUE"},
		{args: with(create, "--metadata", "a=1", "--metadata", "a=2"), want: "given twice"},
		{args: with(create, "--metadata-json", "[1,2]"), want: "JSON object"},
		{args: with(create, "--metadata", "a=1", "--metadata-json", `{"b":2}`), want: "not both"},
		{args: with(create, "--metadata", "big="+strings.Repeat("x", 5000)), want: "--metadata: at most"},
		{args: with(create, "--allowed-cidr", "10.0.0.0/33"), want: "--allowed-cidr"},
		{args: with(create, "--allowed-origin", "app.example.com"), want: "--allowed-origin"},
		{args: with(create, "--idempotency-key", "has space"), want: "--idempotency-key"},
		{args: with(create, "--output", "yaml"), want: "--output: must be json or table"},
		{args: with(create, "--timeout", "0s"), want: "--timeout"},
		{args: with(create, "--api-url", "ftp://example.com"), want: "--api-url"},
		{args: with(create, "--api-url", "http://api.example.com"), want: "use https"},
		{args: with(create, "--api-url", "https://user:pw@example.com"), want: "credentials"},
		{args: with(create, "--api-url", "https://example.com", "--stack", "keygate"), want: "not both"},
		{args: create, env: map[string]string{"KEYGATE_API_URL": "not a url"}, want: "KEYGATE_API_URL"},
		{args: []string{"keys", "get"}, want: "needs ID"},
		{args: []string{"keys", "get", "key_1", "key_2"}, want: "needs ID"},
		{args: []string{"keys", "get", "../../etc/passwd"}, want: "not a key id"},
		{args: []string{"keys", "list"}, want: "--owner: is required"},
		{args: []string{"keys", "list", "--owner", "acme", "--limit", "0"}, want: "--limit"},
		{args: []string{"keys", "list", "--owner", "acme", "--limit", "101"}, want: "--limit"},
		{args: []string{"keys", "list", "--owner", "acme", "--status", "gone"}, want: "--status"},
		{args: []string{"keys", "update", testID}, want: "nothing to change"},
		{args: []string{"keys", "update", testID, "--enable", "--disable"}, want: "not both"},
		{args: []string{"keys", "update", testID, "--quota", "1/day", "--no-quota"}, want: "not both"},
		{args: []string{"keys", "update", testID, "--name", "x", "--if-match", "v3"}, want: "--if-match"},
		{args: []string{"keys", "update", testID, "--name", ""}, want: "--name: is required"},
		{args: []string{"keys", "update", testID, "--expires-at", "2001-01-01T00:00:00Z"}, want: "--expires-at"},
		{args: []string{"keys", "rotate", testID, "--grace-period", "-1h"}, want: "--grace-period"},
		{args: []string{"keys", "rotate", "nope"}, want: "not a key id"},
		{args: []string{"keys", "usage", testID, "--from", "2026-13-01"}, want: "--from"},
		{args: []string{"keys", "usage", testID, "--from", "2026-11-02", "--to", "2026-11-01"}, want: "--to must not be before --from"},
		{args: []string{"keys", "usage", testID, "--from", "2025-01-01", "--to", "2026-11-01"}, want: "at most 366 days"},
		{args: []string{"tokens", "create"}, want: "KEYGATE_API_KEY"},
		{args: []string{"tokens", "create"}, env: map[string]string{"KEYGATE_API_KEY": "hunter2"}, want: "does not hold a keygate key"},
		{args: []string{"tokens", "create", "--key-file", "/nonexistent/key"}, want: "--key-file"},
		{args: []string{"tokens", "create", "--ttl", "0"}, want: "--ttl"},
		{args: []string{"tokens", "create", "--scope", "no spaces"}, want: "--scope"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			api := newLocalAPI(t, func(int, seen) reply { return reply{status: 500} })
			env := map[string]string{"KEYGATE_API_URL": api.srv.URL}
			for k, v := range c.env {
				env[k] = v
			}
			res := runCLI(t, runOpts{env: env}, c.args...)
			if n := len(api.requests()); n != 0 {
				t.Errorf("bad usage sent %d requests", n)
			}
			if res.code != ExitUsage {
				t.Fatalf("want exit 2, got %v", res)
			}
			mustContain(t, "stderr", res.stderr, c.want)
			if res.stdout != "" {
				t.Errorf("a usage error printed to stdout: %q", res.stdout)
			}
		})
	}
}

func TestBadKeyInputIsNeverEchoed(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply { return reply{status: 500} })
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	secret := "kg_sk_live_not-quite-a-key-but-secret"
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range []runOpts{
		{env: map[string]string{"KEYGATE_API_URL": api.srv.URL, "KEYGATE_API_KEY": secret}},
		{env: map[string]string{"KEYGATE_API_URL": api.srv.URL}},
	} {
		args := []string{"tokens", "create"}
		if o.env["KEYGATE_API_KEY"] == "" {
			args = append(args, "--key-file", file)
		}
		res := runCLI(t, o, args...)
		if res.code != ExitUsage || strings.Contains(res.stderr, secret) {
			t.Errorf("want exit 2 without the value: %v", res)
		}
	}
	if len(api.requests()) != 0 {
		t.Error("a malformed key must not be sent")
	}
}

func TestFlagsMayFollowTheID(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
	res := runCLI(t, runOpts{}, "--api-url", api.srv.URL, "keys", "get", testID, "--output", "table")
	if res.code != 0 || !strings.Contains(res.stdout, "billing worker") {
		t.Errorf("flags around the id: %v", res)
	}
	res = runCLI(t, runOpts{}, "keys", "get", "--api-url", api.srv.URL, "--", testID)
	if res.code != 0 {
		t.Errorf("-- before the id: %v", res)
	}
}

func TestParseSeconds(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "3600": 3600, "90s": 90, "15m": 900, "1h30m": 5400, "30d": 2592000} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5s", "1ms", "d", "1w", "99999999999d", "9223372036854775807"} {
		if _, err := parseSeconds(in); err == nil {
			t.Errorf("parseSeconds(%q) should fail", in)
		}
	}
}
