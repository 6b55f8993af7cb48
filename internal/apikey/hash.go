package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Hash is the keyed hash of a key: the only form in which a key is stored or
// looked up. It is an array, so it can key a map without allocating.
type Hash [sha256.Size]byte

// String returns the hash in lowercase hex, the form stored in DynamoDB.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hash written by Hash.String.
func ParseHash(s string) (Hash, bool) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, false
	}
	return h, true
}

// Hasher hashes keys with HMAC-SHA-256 under a pepper held outside the table
// (so a copy of the table alone cannot confirm a guessed key), or with plain
// SHA-256 when no pepper is configured. The key has 256 bits of entropy, so a
// fast hash is right here: there is nothing to brute-force that a slow hash
// would protect.
type Hasher struct {
	peppered bool
	ipad     [sha256.BlockSize]byte
	opad     [sha256.BlockSize]byte
	fallback []byte // the pepper, for the (never expected) long-input path
}

// NewHasher returns a hasher for the given pepper; an empty pepper means
// plain SHA-256.
func NewHasher(pepper []byte) *Hasher {
	h := &Hasher{}
	if len(pepper) == 0 {
		return h
	}
	h.peppered = true
	h.fallback = append([]byte(nil), pepper...)
	k := pepper
	if len(k) > sha256.BlockSize {
		s := sha256.Sum256(k)
		k = s[:]
	}
	for i := range h.ipad {
		var b byte
		if i < len(k) {
			b = k[i]
		}
		h.ipad[i] = b ^ 0x36
		h.opad[i] = b ^ 0x5c
	}
	return h
}

// Sum returns the hash of a key's plaintext. For keys up to MaxLen it
// allocates nothing: HMAC is computed over stack buffers from the precomputed
// pads, which is the same function as crypto/hmac (a test holds them equal).
func (h *Hasher) Sum(plaintext string) Hash {
	if len(plaintext) > MaxLen+16 {
		return h.slowSum(plaintext)
	}
	if !h.peppered {
		var buf [MaxLen + 16]byte
		n := copy(buf[:], plaintext)
		return sha256.Sum256(buf[:n])
	}
	var inner [sha256.BlockSize + MaxLen + 16]byte
	copy(inner[:], h.ipad[:])
	n := copy(inner[sha256.BlockSize:], plaintext)
	in := sha256.Sum256(inner[:sha256.BlockSize+n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], h.opad[:])
	copy(outer[sha256.BlockSize:], in[:])
	return sha256.Sum256(outer[:])
}

func (h *Hasher) slowSum(plaintext string) Hash {
	if !h.peppered {
		return sha256.Sum256([]byte(plaintext))
	}
	m := hmac.New(sha256.New, h.fallback)
	m.Write([]byte(plaintext))
	var out Hash
	copy(out[:], m.Sum(nil))
	return out
}
