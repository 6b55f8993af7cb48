// Package alloctest holds allocation guarantees in tests, not only in
// benchmarks (which report allocations but never fail): Zero fails a test
// when a function allocates.
//
// Allocation counts mean something only in the build that ships. Under the
// race detector they do not: its sync.Pool drops one Put in four on
// purpose (to shake out races), so a pooled hasher allocates a fresh digest
// now and then, and instrumented code may allocate where the real build
// does not. Zero therefore skips, saying so, in a -race build; `make test`
// runs the allocation tests a second time without -race, where they count.
package alloctest

import "testing"

// Runs is how many calls Zero averages over.
const Runs = 1000

// SkipRace skips t in a -race build, saying why (see the package doc).
// Zero calls it; a test that sets up something costly before measuring
// calls it first.
func SkipRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts are only meaningful without -race: `make test` runs the AllocatesNothing tests without it")
	}
}

// Zero fails t when f allocates: what names the code, for the message. It
// skips in a -race build; name the test Test...AllocatesNothing so that
// `make test` runs it without -race.
func Zero(t *testing.T, what string, f func()) {
	t.Helper()
	AtMost(t, what, 0, f)
}

// AtMost fails t when f allocates more than n times per call on average,
// for code whose answer must be a new value (a string it returns) but
// should allocate nothing else. Like Zero it skips under -race; its test's
// name too holds AllocatesNothing (TestXAllocatesNothingButItsAnswer), so
// that `make test` runs it without -race.
func AtMost(t *testing.T, what string, n float64, f func()) {
	t.Helper()
	SkipRace(t)
	if got := testing.AllocsPerRun(Runs, f); got > n {
		if n == 0 {
			t.Errorf("%s allocated %v times per call, want 0", what, got)
		} else {
			t.Errorf("%s allocated %v times per call, want at most %v", what, got, n)
		}
	}
}
