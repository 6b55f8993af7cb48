// Package leaktest finds parts of plaintext keys in text that must never
// hold them: items, log lines, events, problem bodies, audit records. A
// test that only looks for the whole key passes when a hint, a log line or
// an error shows most of it; Check fails on any MinRun consecutive
// characters of a key's secret.
package leaktest

import (
	"sort"
	"strings"
	"testing"
)

// MinRun is the shortest run of a secret's characters that counts as a
// leak: 8 base62 characters are about 48 bits of the secret, twice what
// the 4-character display hint shows (the most any stored text may show).
const MinRun = 8

// Secret returns the secret part of a plaintext key: what follows its last
// "_" (the random characters and the checksum), which no text but the
// response that issues the key may hold any MinRun-character run of.
func Secret(plaintext string) string {
	return plaintext[strings.LastIndexByte(plaintext, '_')+1:]
}

// Find reports whether text holds a run of MinRun or more consecutive
// characters of secret, and where in secret the first such run starts.
func Find(text, secret string) (at int, found bool) {
	for i := 0; i+MinRun <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+MinRun]) {
			return i, true
		}
	}
	return 0, false
}

// Check fails t for every place (a name and its text) that holds a run of
// MinRun characters of the secret of any of plaintexts. Its messages name
// the place and the key's position in plaintexts, never the key. It also
// fails when there is no plaintext or no text to look at, since such a
// check would prove nothing.
func Check(t testing.TB, places map[string]string, plaintexts ...string) {
	t.Helper()
	if len(plaintexts) == 0 {
		t.Fatal("leaktest: no plaintext keys to look for: the check proves nothing")
	}
	names := make([]string, 0, len(places))
	for name, text := range places {
		if text == "" {
			t.Errorf("leaktest: the %s are empty: the check proves nothing there", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for i, p := range plaintexts {
		secret := Secret(p)
		if len(secret) < MinRun {
			t.Fatalf("leaktest: plaintext %d has no secret part of %d characters", i, MinRun)
		}
		for _, name := range names {
			if at, ok := Find(places[name], secret); ok {
				t.Errorf("the %s hold %d or more consecutive characters of plaintext key %d's secret (from character %d)", name, MinRun, i, at)
			}
		}
	}
}
