package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/alloctest"
)

func mustFormat(t testing.TB, prefix string) Format {
	t.Helper()
	f, err := NewFormat(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, prefix := range []string{"", "kg", "acme2", "abcdefghij"} {
		f := mustFormat(t, prefix)
		for _, typ := range []Type{Secret, Publishable} {
			for _, env := range []Environment{Live, Test} {
				k, err := f.Generate(typ, env)
				if err != nil {
					t.Fatal(err)
				}
				want := f.Prefix() + "_" + string(typ) + "_" + string(env) + "_"
				if !strings.HasPrefix(k.Plaintext, want) {
					t.Fatalf("key %q lacks prefix %q", k.Plaintext, want)
				}
				got, err := f.Parse(k.Plaintext)
				if err != nil {
					t.Fatalf("Parse(generated key): %v", err)
				}
				if got.Type != typ || got.Environment != env {
					t.Fatalf("parsed %v/%v, want %v/%v", got.Type, got.Environment, typ, env)
				}
				if !regexp.MustCompile(Pattern).MatchString(k.Plaintext) {
					t.Fatalf("Pattern does not match %q", k.Plaintext)
				}
				if prefix == "" && !regexp.MustCompile(DefaultPattern).MatchString(k.Plaintext) {
					t.Fatalf("DefaultPattern does not match %q", k.Plaintext)
				}
			}
		}
	}
}

func TestGeneratedKeysDiffer(t *testing.T) {
	f := mustFormat(t, "")
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k, err := f.Generate(Secret, Live)
		if err != nil {
			t.Fatal(err)
		}
		if seen[k.Plaintext] {
			t.Fatal("duplicate key generated")
		}
		seen[k.Plaintext] = true
	}
}

// Every single-character typo in a key must be caught by the checksum or the
// shape, so that it is refused without a DynamoDB call.
func TestParseRejectsEveryTypo(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Secret, Live)
	for i := 0; i < len(k.Plaintext); i++ {
		for _, c := range []byte("0aZ_-") {
			if k.Plaintext[i] == c {
				continue
			}
			bad := k.Plaintext[:i] + string(c) + k.Plaintext[i+1:]
			if _, err := f.Parse(bad); err != ErrMalformed {
				// A typo in the type or environment can produce another valid
				// head only if the checksum also matches, which it does not.
				t.Fatalf("Parse accepted a key with position %d changed: err=%v", i, err)
			}
		}
	}
	// Swapping two adjacent different characters of the secret is also caught.
	b := []byte(k.Plaintext)
	for i := 11; i < len(b)-1; i++ {
		if b[i] == b[i+1] {
			continue
		}
		b[i], b[i+1] = b[i+1], b[i]
		if _, err := f.Parse(string(b)); err == nil {
			t.Fatalf("Parse accepted a transposition at %d", i)
		}
		b[i], b[i+1] = b[i+1], b[i]
	}
}

func TestParseRejectsOtherDeploymentsAndShapes(t *testing.T) {
	kg := mustFormat(t, "kg")
	acme := mustFormat(t, "acme")
	k, _ := acme.Generate(Secret, Live)
	cases := map[string]string{
		"other prefix": k.Plaintext,
		"empty":        "",
		"prefix only":  "kg_sk_live_",
		"bearer word":  "Bearer " + k.Plaintext,
		"trailing":     k.Plaintext + "x",
		"unknown type": "kg_xk_live_" + strings.Repeat("a", 49),
		"unknown env":  "kg_sk_prod_" + strings.Repeat("a", 49),
		"bad checksum": "kg_sk_live_" + strings.Repeat("a", 49),
		"max checksum": "kg_sk_live_" + strings.Repeat("a", 43) + "zzzzzz",
		"non-ascii":    "kg_sk_live_" + strings.Repeat("é", 24) + "a",
		"upper prefix": "KG_sk_live_" + strings.Repeat("a", 49),
		"jwt-like":     "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
	}
	for name, s := range cases {
		if _, err := kg.Parse(s); err != ErrMalformed {
			t.Errorf("%s: Parse(%q) err = %v, want ErrMalformed", name, s, err)
		}
	}
}

func TestNewFormatRejectsBadPrefixes(t *testing.T) {
	for _, p := range []string{"1kg", "KG", "k_g", "abcdefghijk", "k-g"} {
		if _, err := NewFormat(p); err == nil {
			t.Errorf("NewFormat(%q) accepted a bad prefix", p)
		}
	}
}

func TestHintShowsOnlyPrefixAndFourCharacters(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Publishable, Test)
	h := Hint(k)
	if !strings.HasPrefix(h, "kg_pk_test_") || len(h) != len("kg_pk_test_")+4 {
		t.Fatalf("Hint = %q", h)
	}
	if !strings.HasPrefix(k.Plaintext, h) {
		t.Fatalf("hint %q is not the start of the key", h)
	}
}

func TestHasherMatchesCryptoHMACAndSHA256(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Secret, Live)
	for _, pepper := range [][]byte{[]byte("pepper"), make([]byte, 64), make([]byte, 100)} {
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(k.Plaintext))
		var want Hash
		copy(want[:], m.Sum(nil))
		if got := NewHasher(pepper).Sum(k.Plaintext); got != want {
			t.Fatalf("HMAC mismatch for pepper of %d bytes", len(pepper))
		}
		long := strings.Repeat("x", 500)
		m.Reset()
		m.Write([]byte(long))
		copy(want[:], m.Sum(nil))
		if got := NewHasher(pepper).Sum(long); got != want {
			t.Fatal("HMAC mismatch on the long-input path")
		}
	}
	if got, want := NewHasher(nil).Sum(k.Plaintext), Hash(sha256.Sum256([]byte(k.Plaintext))); got != want {
		t.Fatal("unpeppered hash is not SHA-256")
	}
	if NewHasher([]byte("a")).Sum(k.Plaintext) == NewHasher([]byte("b")).Sum(k.Plaintext) {
		t.Fatal("different peppers gave the same hash")
	}
}

func TestHashStringRoundTrip(t *testing.T) {
	h := NewHasher([]byte("p")).Sum("anything")
	got, ok := ParseHash(h.String())
	if !ok || got != h {
		t.Fatal("ParseHash(Hash.String()) did not round-trip")
	}
	if _, ok := ParseHash("zz"); ok {
		t.Fatal("ParseHash accepted garbage")
	}
}

// Parsing and hashing a key, the first work of every verification,
// allocate nothing, for a well-formed key and for garbage alike.
func TestParseAndHashAllocatesNothing(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Secret, Live)
	h := NewHasher([]byte("pepper"))
	plain := NewHasher(nil)
	alloctest.Zero(t, "Parse and Sum", func() {
		p, err := f.Parse(k.Plaintext)
		if err != nil {
			t.Fatal(err)
		}
		_ = h.Sum(p.Plaintext)
		_ = plain.Sum(p.Plaintext)
		_, _ = f.Parse("kg_sk_live_garbage")
	})
}

func FuzzParse(f *testing.F) {
	format := mustFormat(f, "")
	k, _ := format.Generate(Secret, Live)
	f.Add(k.Plaintext)
	f.Add("kg_sk_live_")
	f.Add("")
	f.Add("kg_pk_test_" + strings.Repeat("0", 49))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := format.Parse(s)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Anything accepted must be well-formed and match the published pattern.
		if got.Plaintext != s || !regexp.MustCompile(DefaultPattern).MatchString(s) {
			t.Fatalf("accepted %q which the pattern does not match", s)
		}
		if Hint(got) == "" {
			t.Fatal("accepted key has no hint")
		}
	})
}

var sinkHash Hash

func BenchmarkGenerate(b *testing.B) {
	f := mustFormat(b, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Generate(Secret, Live); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	f := mustFormat(b, "")
	k, _ := f.Generate(Secret, Live)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Parse(k.Plaintext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	f := mustFormat(b, "")
	k, _ := f.Generate(Secret, Live)
	h := NewHasher([]byte("pepper"))
	b.ReportAllocs()
	for b.Loop() {
		sinkHash = h.Sum(k.Plaintext)
	}
}

func BenchmarkParseAndHash(b *testing.B) {
	f := mustFormat(b, "")
	k, _ := f.Generate(Secret, Live)
	h := NewHasher([]byte("pepper"))
	b.ReportAllocs()
	for b.Loop() {
		p, err := f.Parse(k.Plaintext)
		if err != nil {
			b.Fatal(err)
		}
		sinkHash = h.Sum(p.Plaintext)
	}
}

// Every character the rules allow in a deployment prefix is accepted, at
// the first position and after it, so no deployment's prefix is refused.
func TestNewFormatAcceptsEveryAllowedCharacter(t *testing.T) {
	for _, p := range []string{"a", "z", "kaz09", "z9a0z", "abcdefghij"} {
		f, err := NewFormat(p)
		if err != nil {
			t.Errorf("NewFormat(%q): %v", p, err)
			continue
		}
		k, _ := f.Generate(Secret, Live)
		if _, err := f.Parse(k.Plaintext); err != nil {
			t.Errorf("prefix %q: its own key does not parse", p)
		}
	}
}

// withChecksum replaces the checksum of a key-shaped string with the right
// one for the rest of it.
func withChecksum(s string) string {
	head := s[:len(s)-checksumLen]
	sum := crc32IEEEString(head)
	return string(appendBase62([]byte(head), []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)}, checksumLen))
}

// A key is base62 only, as Pattern says: a character outside base62 in the
// secret is refused even when the checksum matches it (as an attacker or a
// broken client can arrange).
func TestParseRefusesNonBase62EvenWithAValidChecksum(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Secret, Live)
	if _, err := f.Parse(withChecksum(k.Plaintext)); err != nil {
		t.Fatal("withChecksum broke a valid key: the test proves nothing")
	}
	head := len(k.Plaintext) - bodyLen
	for _, pos := range []int{head, head + 20, head + secretLen - 1} {
		for _, c := range []byte("-_+/=.~ !\x00\xff") {
			bad := withChecksum(k.Plaintext[:pos] + string(c) + k.Plaintext[pos+1:])
			if _, err := f.Parse(bad); err != ErrMalformed {
				t.Errorf("character %q at %d with a matching checksum: err = %v, want ErrMalformed", c, pos, err)
			}
		}
	}
}

// The largest checksum a CRC32 can be (0xFFFFFFFF) is a valid key's
// checksum too: one key in 2^32 has it, and it must parse. The key is
// forged: CRC32 is affine over GF(2), so choosing bits 0, 1, 2 and 5 of
// 16 secret characters (which keeps each among 'H'..'O' and 'h'..'o', all
// base62) reaches any checksum.
func TestParseAcceptsTheLargestChecksum(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Secret, Live)
	head := len(k.Plaintext) - bodyLen
	b := []byte(k.Plaintext[:len(k.Plaintext)-checksumLen])
	const free = 16
	bits := [4]byte{1, 2, 4, 0x20}
	for i := range free {
		b[head+i] = 'H'
	}
	base := crc32IEEEString(string(b))
	// basis[bit] is a combination (mask of free bits) whose CRC delta has
	// its highest set bit at bit.
	var basis [32]struct {
		delta uint32
		mask  uint64
	}
	for j := range free * 4 {
		b[head+j/4] ^= bits[j%4]
		d, m := crc32IEEEString(string(b))^base, uint64(1)<<j
		b[head+j/4] ^= bits[j%4]
		for bit := 31; bit >= 0 && d != 0; bit-- {
			if d&(1<<bit) == 0 {
				continue
			}
			if basis[bit].delta == 0 {
				basis[bit].delta, basis[bit].mask = d, m
				break
			}
			d, m = d^basis[bit].delta, m^basis[bit].mask
		}
	}
	want, mask := base^0xFFFFFFFF, uint64(0)
	for bit := 31; bit >= 0; bit-- {
		if want&(1<<bit) != 0 {
			if basis[bit].delta == 0 {
				t.Fatalf("the free bits do not span bit %d: choose other positions", bit)
			}
			want, mask = want^basis[bit].delta, mask^basis[bit].mask
		}
	}
	for j := range free * 4 {
		if mask&(1<<j) != 0 {
			b[head+j/4] ^= bits[j%4]
		}
	}
	if crc32IEEEString(string(b)) != 0xFFFFFFFF {
		t.Fatal("the forged key's checksum is not 0xFFFFFFFF: the test proves nothing")
	}
	forged := withChecksum(string(b) + "000000")
	if got, err := f.Parse(forged); err != nil || got.Plaintext != forged || !regexp.MustCompile(Pattern).MatchString(forged) {
		t.Fatalf("a key whose checksum is 0xFFFFFFFF: err = %v", err)
	}
}
