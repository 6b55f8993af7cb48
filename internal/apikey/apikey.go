// Package apikey defines the plaintext format of a keygate key: how one is
// generated, recognised, checked and hashed.
//
// A key reads
//
//	<prefix>_<type>_<environment>_<secret><checksum>
//	kg_sk_live_3xQ...(43 characters)...Zk9a01 (6 characters)
//
// where prefix names the deployment (default "kg"; 1 to 10 lowercase letters
// or digits, starting with a letter), type is "sk" (secret) or "pk"
// (publishable), environment is "live" or "test", secret is 256 bits from
// crypto/rand written as exactly 43 base62 characters, and checksum is the
// CRC32 (IEEE) of everything before it, as 6 base62 characters. The readable
// prefix lets secret scanners and people recognise a leaked key; the checksum
// lets the authorizer reject a mistyped or invented key without touching
// DynamoDB, as GitHub's tokens do. Pattern is the regular expression that
// matches any keygate key.
//
// Only a keyed hash of the whole key is ever stored (see Hasher), with a short
// display hint (see Hint).
package apikey

import (
	"crypto/rand"
	"errors"
	"hash/crc32"
	"regexp"
	"sync"
	"unsafe"
)

// Pattern matches a keygate key of any deployment prefix, for secret scanners.
// DefaultPattern matches keys of the default prefix only.
const (
	Pattern        = `\b[a-z][a-z0-9]{0,9}_(?:sk|pk)_(?:live|test)_[0-9A-Za-z]{49}\b`
	DefaultPattern = `\bkg_(?:sk|pk)_(?:live|test)_[0-9A-Za-z]{49}\b`
)

// pattern is compiled at the first Redact, not at start: the authorizer
// imports this package and never redacts.
var pattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(Pattern) })

// Redact replaces anything shaped like a keygate key in s with "[redacted
// key]": the second line of defence for text that quotes what a server or
// a user sent (a key never goes there on purpose). Redact before
// shortening such text, so that no cut leaves part of a key unmatched.
func Redact(s string) string { return pattern().ReplaceAllString(s, "[redacted key]") }

// DefaultPrefix is the deployment prefix used when none is configured.
const DefaultPrefix = "kg"

const (
	secretLen   = 43 // base62 digits that hold 256 bits: 62^43 > 2^256
	checksumLen = 6  // base62 digits that hold 32 bits: 62^6 > 2^32
	bodyLen     = secretLen + checksumLen
	maxPrefix   = 10
	// MaxLen is the longest a well-formed key can be; anything longer is
	// rejected before any other work.
	MaxLen = maxPrefix + len("_sk_live_") + bodyLen
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Type is the kind of key, as written in the key ("sk" or "pk").
type Type string

// The key types. Secret keys are for servers; publishable keys may sit in a
// browser or an app and are limited to read-only methods and listed origins.
const (
	Secret      Type = "sk"
	Publishable Type = "pk"
)

// Environment is the environment a key belongs to, as written in the key.
type Environment string

// The environments a key can be issued for.
const (
	Live Environment = "live"
	Test Environment = "test"
)

// ErrMalformed is the one error Parse returns. It carries no detail on
// purpose: the input may be a secret, and it must not reach a log or an error.
var ErrMalformed = errors.New("malformed_key")

// ErrPrefix is returned by NewFormat for a prefix that breaks the rules.
var ErrPrefix = errors.New("apikey: prefix must be 1 to 10 lowercase letters or digits, starting with a letter")

// Format generates and parses keys for one deployment prefix. The zero value
// is not usable; build one with NewFormat.
type Format struct {
	prefix string
}

// NewFormat returns the format for a deployment prefix ("" means DefaultPrefix).
func NewFormat(prefix string) (Format, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !validPrefix(prefix) {
		return Format{}, ErrPrefix
	}
	return Format{prefix: prefix}, nil
}

// Prefix returns the deployment prefix this format writes and accepts.
func (f Format) Prefix() string { return f.prefix }

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxPrefix || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Key is a parsed key. Its fields are substrings of the input, so parsing
// allocates nothing; Plaintext is the whole key and must be handled as a secret.
type Key struct {
	Plaintext   string
	Type        Type
	Environment Environment
}

// Generate returns a new key of the given type and environment, with 256 bits
// from crypto/rand.
func (f Format) Generate(t Type, env Environment) (Key, error) {
	if t != Secret && t != Publishable {
		return Key{}, errors.New("apikey: unknown key type")
	}
	if env != Live && env != Test {
		return Key{}, errors.New("apikey: unknown environment")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Key{}, err
	}
	head := f.prefix + "_" + string(t) + "_" + string(env) + "_"
	buf := make([]byte, 0, len(head)+bodyLen)
	buf = append(buf, head...)
	buf = appendBase62(buf, raw[:], secretLen)
	sum := crc32.ChecksumIEEE(buf)
	buf = appendBase62(buf, []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)}, checksumLen)
	return Key{Plaintext: string(buf), Type: t, Environment: env}, nil
}

// appendBase62 appends n base62 digits of the big-endian number in num
// (which it consumes), most significant digit first.
func appendBase62(dst, num []byte, n int) []byte {
	digits := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		var rem uint32
		for j := range num {
			cur := rem<<8 | uint32(num[j])
			num[j] = byte(cur / 62)
			rem = cur % 62
		}
		digits[i] = base62[rem]
	}
	return append(dst, digits...)
}

// Parse checks that s is a well-formed key of this deployment and that its
// checksum matches. It never panics, allocates nothing and returns ErrMalformed
// for anything else, so that garbage is refused before the cache or DynamoDB.
func (f Format) Parse(s string) (Key, error) {
	p := len(f.prefix)
	// prefix "_" type(2) "_" env(4) "_" body
	if len(s) != p+1+2+1+4+1+bodyLen || s[:p] != f.prefix || s[p] != '_' {
		return Key{}, ErrMalformed
	}
	rest := s[p+1:]
	var t Type
	switch rest[:3] {
	case "sk_":
		t = Secret
	case "pk_":
		t = Publishable
	default:
		return Key{}, ErrMalformed
	}
	var env Environment
	switch rest[3:8] {
	case "live_":
		env = Live
	case "test_":
		env = Test
	default:
		return Key{}, ErrMalformed
	}
	body := rest[8:]
	for i := 0; i < len(body); i++ {
		if decode62[body[i]] < 0 {
			return Key{}, ErrMalformed
		}
	}
	var want uint64
	for i := secretLen; i < bodyLen; i++ {
		want = want*62 + uint64(decode62[body[i]])
	}
	if want > 0xFFFFFFFF || uint32(want) != crc32IEEEString(s[:len(s)-checksumLen]) {
		return Key{}, ErrMalformed
	}
	return Key{Plaintext: s, Type: t, Environment: env}, nil
}

// crc32IEEEString computes the checksum of a string without copying it to a
// byte slice (which would allocate): the slice aliases the string's bytes
// and crc32 only reads it, so the string's immutability is kept. It uses the
// package's accelerated implementation, which the authorizer runs on every
// request.
func crc32IEEEString(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

var decode62 = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = int8(i)
	}
	return t
}()

// hintLen is how many characters of the secret a hint shows: 4 base62
// characters are about 24 of the key's 256 bits, enough to tell keys apart
// in a list and useless for guessing.
const hintLen = 4

// Hint returns the display hint stored with a key: the readable prefix and the
// first characters of the secret, for example "kg_sk_live_3xQa". It is the
// only part of the plaintext that is ever kept.
func Hint(k Key) string {
	head := len(k.Plaintext) - bodyLen
	if head < 0 {
		return ""
	}
	return k.Plaintext[:head+hintLen]
}
