package adminapi_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/admintest"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/seal"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/wire"
)

const idemBody = `{"name":"retry me","ownerId":"acme","environment":"live","scopes":["read:users"]}`

func TestIdempotentRetryReturnsTheSameKeyAndCreatesNothing(t *testing.T) {
	e := newEnv(t)
	first := e.issue(idemBody, "Idempotency-Key", "req-1")
	e.advance(time.Hour)
	// Same request, other formatting and field order: the same request.
	second := e.issue(`{ "scopes": ["read:users"], "environment": "live", "ownerId": "acme", "name": "retry me" }`, "Idempotency-Key", "req-1")
	if second.Body.String() != first.Body.String() || second.str("key") == "" {
		t.Fatalf("retry returned another response:\n%s\n%s", first.Body, second.Body)
	}
	if second.Header().Get("Idempotent-Replayed") != "true" || second.Header().Get("Location") != first.Header().Get("Location") ||
		second.Header().Get("ETag") != `"1"` {
		t.Fatalf("replay headers: %v", second.Header())
	}
	if n := e.countItems("KEY#"); n != 1 {
		t.Fatalf("%d key items after a retried issue, want 1", n)
	}
	if n := e.countItems("AUDIT#"); n != 1 {
		t.Fatalf("%d audit records after a retried issue, want 1", n)
	}
	if n := len(e.eventsCopy()); n != 1 {
		t.Fatalf("%d events after a retried issue, want 1", n)
	}

	// Same key, another body: refused, nothing created.
	other := e.do(http.MethodPost, "/v1/keys", strings.Replace(idemBody, "retry me", "another", 1), "Idempotency-Key", "req-1")
	if other.Code != 422 || other.str("code") != "idempotency_key_reused" || other.str("field") != "Idempotency-Key" {
		t.Fatalf("reuse with another body: %d %s", other.Code, other.Body)
	}
	// Another key: a new key.
	third := e.issue(idemBody, "Idempotency-Key", "req-2")
	if third.str("id") == first.str("id") || e.countItems("KEY#") != 2 {
		t.Fatalf("a new Idempotency-Key did not issue a new key")
	}
	// After 24 hours the record is expired (DynamoDB deletes it lazily, so
	// the store treats it as absent) and the key issues a new key.
	e.advance(24 * time.Hour)
	if fourth := e.issue(idemBody, "Idempotency-Key", "req-1"); fourth.str("id") == first.str("id") {
		t.Fatalf("an expired idempotency record was replayed")
	}
}

// TestIdempotencyRecordHoldsNoPlaintext checks that the stored response is
// sealed: the table holds neither the key nor the response's JSON, and a
// handler with another sealer (another KMS key) cannot open it.
func TestIdempotencyRecordHoldsNoPlaintext(t *testing.T) {
	e := newEnv(t)
	r := e.issue(idemBody, "Idempotency-Key", "sealed")
	dump := e.dump()
	if !strings.Contains(dump, "IDEM#issue#sealed") {
		t.Fatalf("no idempotency record in the table:\n%s", dump)
	}
	if strings.Contains(dump, r.str("key")) || strings.Contains(dump, r.str("key")[11:]) {
		t.Fatalf("the table holds the plaintext:\n%s", dump)
	}
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &e.table, Key: store.ItemKey(store.IdempotencyPK("issue", "sealed"), "IDEM")})
	if err != nil {
		t.Fatal(err)
	}
	sealed := out.Item["response"].(*ddb.AttributeValueMemberB).Value
	for _, clear := range []string{r.str("key"), r.str("key")[11:], r.str("id"), "retry me", `"status"`} {
		if bytes.Contains(sealed, []byte(clear)) {
			t.Fatalf("the stored response shows %q in the clear", clear)
		}
	}
	other := adminapi.NewIdempotency(e.store, seal.Random())
	api := adminapi.New(adminapi.Options{Store: e.store, Format: format, Hasher: e.hasher, Idempotency: other, Now: e.clock,
		Logger: discard()})
	rec := serve(api, http.MethodPost, "/v1/keys", idemBody, "Idempotency-Key", "sealed")
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "idempotency_unreadable") || strings.Contains(rec.Body.String(), r.str("key")) {
		t.Fatalf("another sealer: %d %s", rec.Code, rec.Body)
	}
}

// TestSealedResponsesDoNotOpenWithThePepper replays the review's attack: a
// principal who can read the table (its digest and sealed response) and
// every function's environment (the pepper) derives the key the first
// version sealed under (HKDF of the pepper) and opens the stored response.
// Sealed by a key that is no secret of the environment, it cannot.
func TestSealedResponsesDoNotOpenWithThePepper(t *testing.T) {
	e := newEnv(t)
	r := e.issue(idemBody, "Idempotency-Key", "attack")
	pk := store.IdempotencyPK("issue", "attack")
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &e.table, Key: store.ItemKey(pk, "IDEM")})
	if err != nil {
		t.Fatal(err)
	}
	digest := out.Item["digest"].(*ddb.AttributeValueMemberB).Value
	sealed := out.Item["response"].(*ddb.AttributeValueMemberB).Value
	aad := append([]byte(pk+"\x00"), digest...)
	k, err := hkdf.Key(sha256.New, []byte("test-pepper"), nil, "keygate idempotency response seal v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(block)
	for _, body := range [][]byte{sealed, sealed[1:]} { // as the first version wrote it, and past a format byte
		if len(body) > aead.NonceSize() {
			if plain, err := aead.Open(nil, body[:aead.NonceSize()], body[aead.NonceSize():], aad); err == nil {
				t.Fatalf("the pepper opened the stored response: %s", plain)
			}
		}
	}
	if strings.Contains(e.dump(), r.str("key")) {
		t.Fatal("the table holds the plaintext")
	}
}

func TestConcurrentIdempotentRetriesCreateOneKey(t *testing.T) {
	e := newEnv(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]resp, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.do(http.MethodPost, "/v1/keys", idemBody, "Idempotency-Key", "race")
		}(i)
	}
	wg.Wait()
	plain := ""
	created := 0
	for _, r := range results {
		switch r.Code {
		case 201:
			created++
			if plain != "" && r.str("key") != plain {
				t.Fatalf("two different keys for one Idempotency-Key")
			}
			plain = r.str("key")
		case 409:
			if r.str("code") != "idempotency_in_progress" || r.Header().Get("Retry-After") != "1" {
				t.Fatalf("409 without in-progress problem: %s", r.Body)
			}
		default:
			t.Fatalf("concurrent retry: %d %s", r.Code, r.Body)
		}
	}
	t.Logf("%d of %d concurrent requests got the key, the others 409 in progress", created, n)
	if created == 0 || e.countItems("KEY#") != 1 || e.countItems("AUDIT#") != 1 {
		t.Fatalf("%d successful responses, %d key items; want at least one and exactly one", created, e.countItems("KEY#"))
	}
	// Once done, every retry gets the key.
	if r := e.issue(idemBody, "Idempotency-Key", "race"); r.str("key") != plain {
		t.Fatal("retry after the race returned another key")
	}
}

// TestAbandonedClaimIsTakenOver: a request that claimed a key and died
// (its pending record stays) blocks retries only for the lease.
func TestAbandonedClaimIsTakenOver(t *testing.T) {
	e := newEnv(t)
	digest, err := adminapi.Digest("issue", alice, mustIssueRequest(t, idemBody))
	if err != nil {
		t.Fatal(err)
	}
	if old, err := e.store.ClaimIdempotency(context.Background(), "issue", "dead", digest, "dead-token", 30*time.Second, 24*time.Hour); err != nil || old != nil {
		t.Fatalf("claim: %v %v", old, err)
	}
	if r := e.do(http.MethodPost, "/v1/keys", idemBody, "Idempotency-Key", "dead"); r.Code != 409 {
		t.Fatalf("within the lease: %d %s", r.Code, r.Body)
	}
	e.advance(31 * time.Second)
	r := e.issue(idemBody, "Idempotency-Key", "dead")
	// The dead request can no longer complete its change.
	stale := &store.IdempotencyDone{Scope: "issue", Key: "dead", Token: "dead-token", Status: 201, Sealed: []byte("x")}
	if err := e.store.CreateAudited(context.Background(), newDomainKey(t, e), store.AuditRecord{Actor: "x", Action: "key.create", At: e.clock()}, stale); err == nil {
		t.Fatal("a request whose lease was taken over completed its change")
	}
	if again := e.issue(idemBody, "Idempotency-Key", "dead"); again.str("key") != r.str("key") {
		t.Fatal("replay after takeover differs")
	}
}

func mustIssueRequest(t *testing.T, body string) *wire.IssueRequest {
	t.Helper()
	var r wire.IssueRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func newDomainKey(t *testing.T, e *env) *key.Key {
	t.Helper()
	p, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	return &key.Key{ID: key.NewID(), Name: "n", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Hash: e.hasher.Sum(p.Plaintext), Hint: apikey.Hint(p), Enabled: true, CreatedAt: e.clock(), UpdatedAt: e.clock()}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve sends a request as alice straight to h.
func serve(h http.Handler, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	return admintest.Serve(h, alice, method, path, body, headers...)
}

// An Idempotency-Key belongs to the principal that used it first, on every
// write route that takes one (issue and rotate): another principal's
// request with the same key and body is refused as a reused key, never
// receives the first caller's plaintext key and changes nothing; the first
// caller's own retry is still replayed.
func TestIdempotencyKeyIsBoundToThePrincipalOnEveryWriteRoute(t *testing.T) {
	const mallory = "arn:aws:iam::123456789012:user/mallory"
	e := newEnv(t)
	rot := e.rotator()
	id := e.issue(`{"name":"to rotate","ownerId":"acme","environment":"live"}`).str("id")
	issueBody := `{"name":"ci","ownerId":"acme","environment":"live"}`
	rotatePath, rotateBody := "/v1/keys/"+id+"/rotate", `{"gracePeriodSeconds": 60}`
	for _, route := range []struct {
		name string
		send func(who string) resp
	}{
		{"issue", func(who string) resp {
			return e.doAs(who, http.MethodPost, "/v1/keys", issueBody, "Idempotency-Key", "shared-key-1")
		}},
		{"rotate", func(who string) resp {
			rec := e.rotateAs(who, rot, http.MethodPost, rotatePath, rotateBody, "Idempotency-Key", "shared-key-1")
			r := resp{ResponseRecorder: rec}
			_ = json.Unmarshal(rec.Body.Bytes(), &r.json)
			return r
		}},
	} {
		keys := e.countItems("KEY#")
		first := route.send(alice)
		if first.Code != http.StatusCreated || first.str("key") == "" {
			t.Fatalf("%s: %d %s", route.name, first.Code, first.Body)
		}
		other := route.send(mallory)
		if other.Code != http.StatusUnprocessableEntity || other.str("code") != "idempotency_key_reused" ||
			strings.Contains(other.Body.String(), first.str("key")) || other.str("key") != "" {
			t.Fatalf("%s: another principal reusing the key: %d %s", route.name, other.Code, other.Body)
		}
		if n := e.countItems("KEY#"); n != keys+1 {
			t.Fatalf("%s: %d key items after one request and a refused reuse, want %d", route.name, n, keys+1)
		}
		if again := route.send(alice); again.str("key") != first.str("key") {
			t.Fatalf("%s: the first caller's retry was not replayed: %d %s", route.name, again.Code, again.Body)
		}
	}
}

// A write that fails after claiming its Idempotency-Key gives the key up,
// so that a retry runs at once instead of waiting out the lease as
// idempotency_in_progress.
func TestFailedWriteReleasesItsIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	rot := e.rotator()
	revoked := e.issue(`{"name":"gone","ownerId":"acme","environment":"live"}`).str("id")
	if r := e.do(http.MethodDelete, "/v1/keys/"+revoked, ""); r.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Code, r.Body)
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v1/keys/key_00000000000000000000000000/rotate", http.StatusNotFound}, // no such key
		{"/v1/keys/" + revoked + "/rotate", http.StatusConflict},                // revoked: not rotatable
	} {
		for i := range 2 {
			rec := e.rotate(rot, http.MethodPost, c.path, `{}`, "Idempotency-Key", "fails")
			if rec.Code != c.status || strings.Contains(rec.Body.String(), "idempotency_in_progress") {
				t.Fatalf("%s, attempt %d: %d %s, want %d", c.path, i+1, rec.Code, rec.Body, c.status)
			}
		}
	}
}
