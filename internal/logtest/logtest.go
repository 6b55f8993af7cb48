// Package logtest captures what functions log, for tests that read it back:
// that a line was logged, or that no line carries a plaintext key.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer for slog handlers that is safe for concurrent
// requests, with String to read everything written so far.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
