//go:build race

package alloctest

// raceEnabled reports whether the race detector is built in.
const raceEnabled = true
