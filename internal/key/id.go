package key

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// IDPrefix starts every key id, so an id is never mistaken for a key.
const IDPrefix = "key_"

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new key id: "key_" and 26 characters of Crockford-style
// base32 holding 128 random bits. Ids are not secrets: they appear in logs,
// events, the authorizer's context and URLs.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return IDPrefix + idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of a key id, so that garbage in a
// URL is refused before any lookup.
func ValidID(s string) bool {
	if !strings.HasPrefix(s, IDPrefix) || len(s) != len(IDPrefix)+26 {
		return false
	}
	for _, c := range s[len(IDPrefix):] {
		if !strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz", c) {
			return false
		}
	}
	return true
}
