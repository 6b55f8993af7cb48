package key

import (
	"regexp"
	"strings"
	"testing"
)

// The written-out name rules accept exactly what the regular expressions
// their messages show accept: every string of up to two characters over an
// alphabet that crosses each rule's boundaries, and the length limits.
func TestNameRulesAreTheirPatterns(t *testing.T) {
	chars := []string{"a", "Z", "0", "-", "_", ".", ":", "@", "/", "+", "=", "*", " ", "\n", "é", "\x00"}
	inputs := []string{"", strings.Repeat("a", 32), strings.Repeat("a", 33), strings.Repeat("a", 128), strings.Repeat("a", 129)}
	for _, a := range chars {
		inputs = append(inputs, a)
		for _, b := range chars {
			inputs = append(inputs, a+b, "x"+a+b)
		}
	}
	for _, r := range []nameRule{ownerRe, scopeRe, limitRe, stageRe} {
		re := regexp.MustCompile(r.pattern)
		for _, s := range inputs {
			if got, want := r.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("%s on %q: %v, want %v", r, s, got, want)
			}
		}
	}
}
