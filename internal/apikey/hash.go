package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"hash"
	"sync"
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
//
// The SHA-256 states after absorbing the inner and outer pads are computed
// once, so each Sum compresses 3 blocks instead of 5 (the authorizer hashes
// every request); the states are restored into pooled digests, so Sum
// allocates nothing.
type Hasher struct {
	peppered bool
	inner    []byte // marshalled SHA-256 state after the inner pad
	outer    []byte // marshalled SHA-256 state after the outer pad
	fallback []byte // the pepper, for the (never expected) long-input path
	pool     sync.Pool
}

// scratch is one pooled digest with buffers that live on the heap with it,
// so passing them through the hash.Hash interface does not allocate.
type scratch struct {
	d   hash.Hash
	st  encoding.BinaryUnmarshaler
	in  [MaxLen + 16]byte
	sum [sha256.Size]byte
	out [sha256.Size]byte
}

// NewHasher returns a hasher for the given pepper; an empty pepper means
// plain SHA-256.
func NewHasher(pepper []byte) *Hasher {
	h := &Hasher{}
	h.pool.New = func() any {
		d := sha256.New()
		return &scratch{d: d, st: d.(encoding.BinaryUnmarshaler)}
	}
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
	var ipad, opad [sha256.BlockSize]byte
	for i := range ipad {
		var b byte
		if i < len(k) {
			b = k[i]
		}
		ipad[i] = b ^ 0x36
		opad[i] = b ^ 0x5c
	}
	h.inner = padState(ipad[:])
	h.outer = padState(opad[:])
	return h
}

func padState(pad []byte) []byte {
	d := sha256.New()
	d.Write(pad)
	st, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("apikey: sha256 state cannot be marshalled: " + err.Error())
	}
	return st
}

// Sum returns the hash of a key's plaintext. For keys up to MaxLen it
// allocates nothing: HMAC is computed from the precomputed pad states, which
// is the same function as crypto/hmac (a test holds them equal).
func (h *Hasher) Sum(plaintext string) Hash {
	if len(plaintext) > MaxLen+16 {
		return h.slowSum(plaintext)
	}
	if !h.peppered {
		var buf [MaxLen + 16]byte
		n := copy(buf[:], plaintext)
		return sha256.Sum256(buf[:n])
	}
	s := h.pool.Get().(*scratch)
	n := copy(s.in[:], plaintext)
	if s.st.UnmarshalBinary(h.inner) != nil {
		h.pool.Put(s)
		return h.slowSum(plaintext)
	}
	s.d.Write(s.in[:n])
	s.d.Sum(s.sum[:0])
	if s.st.UnmarshalBinary(h.outer) != nil {
		h.pool.Put(s)
		return h.slowSum(plaintext)
	}
	s.d.Write(s.sum[:])
	s.d.Sum(s.out[:0])
	out := Hash(s.out)
	h.pool.Put(s)
	return out
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
