package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
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

func TestParseAndHashAllocateNothing(t *testing.T) {
	f := mustFormat(t, "")
	k, _ := f.Generate(Secret, Live)
	h := NewHasher([]byte("pepper"))
	allocs := testing.AllocsPerRun(1000, func() {
		p, err := f.Parse(k.Plaintext)
		if err != nil {
			t.Fatal(err)
		}
		_ = h.Sum(p.Plaintext)
		_, _ = f.Parse("kg_sk_live_garbage")
	})
	if allocs != 0 {
		t.Fatalf("parse+hash allocated %v times per run, want 0", allocs)
	}
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
