package localstack

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/cli"
	"github.com/keygate/keygate/internal/smoke"
)

// checkLine is one line of the smoke test's report.
var checkLine = regexp.MustCompile(`^(ok  |FAIL) [^\n]+$`)

// smokeReport checks the shape of a smoke test's output: a heading, one
// line per check, and the summary; it returns the check lines.
func smokeReport(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "keygate smoke test of ") {
		t.Fatalf("not a smoke test report:\n%s", out)
	}
	var checks []string
	for _, l := range lines[1 : len(lines)-1] {
		if strings.HasPrefix(l, "     (") {
			continue // the note that later checks did not run
		}
		if !checkLine.MatchString(l) {
			t.Errorf("line %q is not one check", l)
		}
		checks = append(checks, l)
	}
	return checks
}

// The smoke test a user runs right after cdk deploy passes against the
// local stack: the same scenario code, in make test.
func TestSmokeAgainstTheLocalStack(t *testing.T) {
	l := startLocal(t, nil)
	code, out, errOut := l.keygate(t, "smoke", "--wait", "20s")
	t.Logf("keygate smoke:\n%s", out)
	checks := smokeReport(t, out)
	if code != cli.ExitOK {
		t.Fatalf("keygate smoke: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"issue a test key", "shown once", "401", "opens the protected proxy", "rate limit bites",
		"access token", "token opens", "rotate", "new key opens", "old key stops", "revoke the new key",
		"revocation takes effect", "clean up: revoke the 3 keys"} {
		found := false
		for _, c := range checks {
			found = found || (strings.HasPrefix(c, "ok   ") && strings.Contains(c, want))
		}
		if !found {
			t.Errorf("no passed check %q in:\n%s", want, out)
		}
	}
	if last := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]); last != "13 passed, 0 failed" {
		t.Errorf("summary %q, want 13 passed, 0 failed", last)
	}
	assertSmokeKeysRevoked(t, l)
	if strings.Contains(out, "kg_sk_") {
		t.Errorf("the report holds a key:\n%s", out)
	}
}

// A deployment whose protected proxy cannot reach its upstream fails the
// smoke test: the failed checks say why, it exits non-zero, and every key
// it made is revoked all the same.
func TestSmokeFailsLoudlyAndStillCleansUp(t *testing.T) {
	l := startLocalUpstream(t, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}) // nothing listens on port 1
	code, out, _ := l.keygate(t, "smoke", "--wait", "5s")
	t.Logf("keygate smoke:\n%s", out)
	checks := smokeReport(t, out)
	if code != cli.ExitAPI {
		t.Fatalf("keygate smoke: exit %d, want %d\n%s", code, cli.ExitAPI, out)
	}
	failed := 0
	for _, c := range checks {
		if strings.HasPrefix(c, "FAIL") {
			failed++
			if !strings.Contains(c, "let through, but the upstream answered 502") {
				t.Errorf("the failure does not say the upstream failed: %s", c)
			}
		}
	}
	if failed == 0 || !strings.Contains(out, "(the checks after this one need it: not run)") {
		t.Errorf("want a failed check that stops the run:\n%s", out)
	}
	if !strings.Contains(out, "ok   clean up: revoke the key the smoke test made") {
		t.Errorf("the key made before the failure was not cleaned up:\n%s", out)
	}
	assertSmokeKeysRevoked(t, l)
}

// assertSmokeKeysRevoked lists the smoke test owner's keys: there are some,
// and none is still usable.
func assertSmokeKeysRevoked(t *testing.T, l *local) {
	t.Helper()
	code, out, errOut := l.keygate(t, "keys", "list", "--owner", smoke.DefaultOwner, "--all")
	if code != cli.ExitOK {
		t.Fatalf("keys list: exit %d %s", code, errOut)
	}
	keys := decodeJSON[struct {
		Keys []issued `json:"keys"`
	}](t, out).Keys
	if len(keys) == 0 {
		t.Fatal("the smoke test's keys are not under its owner")
	}
	for _, k := range keys {
		if k.Status != "revoked" {
			t.Errorf("key %s left %s", k.ID, k.Status)
		}
	}
}
