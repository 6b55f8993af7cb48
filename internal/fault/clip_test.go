package fault

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClipKeepsShortTextAndCutsLongTextOnARuneBoundary(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 5, "short"},
		{"longer", 4, "long..."},
		{"ab€cd", 3, "ab..."}, // € is 3 bytes: cutting at 3 or 4 would split it
		{"ab€cd", 4, "ab..."},
		{"ab€cd", 5, "ab€..."},
		{"€€", 1, "..."},
	} {
		got := Clip(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	if got := Clip(strings.Repeat("é", 1000), 200); len(got) > 203 || !utf8.ValidString(got) {
		t.Errorf("a long accented text clipped to 200 bytes: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}
