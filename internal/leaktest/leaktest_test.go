package leaktest

import (
	"strings"
	"testing"
)

const plain = "kg_sk_live_3xQaT9fLm2ZpR8vWc4YbN7dKj1HsG6eUo5iAq0rXyBtCnMlEwVgPzFh"

func TestFindCatchesEveryRunOfMinRun(t *testing.T) {
	secret := Secret(plain)
	if secret != plain[len("kg_sk_live_"):] {
		t.Fatalf("Secret = %q", secret)
	}
	for i := 0; i+MinRun <= len(secret); i++ {
		text := "hint kg_sk_live_3xQa; " + secret[i:i+MinRun] + " and more"
		if at, ok := Find(text, secret); !ok || at > i {
			t.Fatalf("a run at %d was not found (found=%v at %d)", i, ok, at)
		}
	}
	// The hint (prefix and 4 characters) and any 7 characters pass.
	for _, text := range []string{"kg_sk_live_3xQa", secret[10 : 10+MinRun-1], strings.ToLower(secret)} {
		if _, ok := Find(text, secret); ok {
			t.Fatalf("%q counted as a leak", text)
		}
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatal(...any)          { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestCheckFailsOnALeakAndOnNothingToCheck(t *testing.T) {
	for name, c := range map[string]struct {
		places map[string]string
		plains []string
		fail   bool
	}{
		"clean":          {map[string]string{"logs": "keyId=key_1 hint=kg_sk_live_3xQa"}, []string{plain}, false},
		"leak":           {map[string]string{"logs": "ok", "table": "x" + Secret(plain)[20:30]}, []string{plain}, true},
		"no plaintexts":  {map[string]string{"logs": "ok"}, nil, true},
		"an empty place": {map[string]string{"logs": ""}, []string{plain}, true},
	} {
		r := &recorder{TB: t}
		Check(r, c.places, c.plains...)
		if r.failed != c.fail {
			t.Errorf("%s: failed=%v, want %v", name, r.failed, c.fail)
		}
	}
}
