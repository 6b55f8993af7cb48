package adminapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/store"
)

// faultAfterClaim fails the DynamoDB call number n (1-based) after a
// request claims an Idempotency-Key (a PutItem), whatever that call is,
// except the claim's release (a DeleteItem). It records the operations.
type faultAfterClaim struct {
	mu      sync.Mutex
	n       int // 0: never fail
	claimed bool
	after   int
	failed  bool
	ops     []string
}

// see is the dynamotest.Watched hook.
func (f *faultAfterClaim) see(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	switch {
	case op == "PutItem" && !f.claimed:
		f.claimed = true
	case f.claimed && op != "DeleteItem":
		f.after++
		if f.after == f.n {
			f.failed = true
			return errors.New("injected DynamoDB failure")
		}
	}
	return nil
}

func (f *faultAfterClaim) released() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, op := range f.ops {
		if op == "DeleteItem" {
			return true
		}
	}
	return false
}

// Every write route that takes an Idempotency-Key gives the key up on every
// way it can fail after claiming it, so that a retry with the same key
// runs at once (never idempotency_in_progress for the lease): each DynamoDB
// call after the claim is failed in turn, until the request has no call
// left to fail, and then the retry, unfailed, must succeed. On success the
// claim is completed in the change's transaction, never released.
func TestEveryIdempotentWriteReleasesItsKeyOnEveryFailure(t *testing.T) {
	routes := map[string]func(e *env, api http.Handler) (method, path, body string){
		"issue": func(*env, http.Handler) (string, string, string) {
			return "POST", "/v1/keys", `{"name":"n","ownerId":"acme","environment":"live"}`
		},
		"rotate": func(e *env, _ http.Handler) (string, string, string) {
			id := e.do("POST", "/v1/keys", `{"name":"n","ownerId":"acme","environment":"live"}`).str("id")
			return "POST", "/v1/keys/" + id + "/rotate", `{"gracePeriodSeconds":60}`
		},
	}
	for name, route := range routes {
		t.Run(name, func(t *testing.T) {
			for n := 1; ; n++ {
				e := newEnv(t)
				f := &faultAfterClaim{n: n}
				api := e.apiOver(f, name == "rotate")
				method, path, body := route(e, api)
				idem := fmt.Sprintf("release-%s-%d", name, n)
				r := e.serveWith(api, method, path, body, "Idempotency-Key", idem)
				if !f.failed {
					if r.Code != 201 || f.released() {
						t.Fatalf("unfailed: %d %s (released: %v)", r.Code, r.Body, f.released())
					}
					if n == 1 {
						t.Fatal("no DynamoDB call after the claim: nothing was tested")
					}
					return
				}
				if r.Code < 500 || !f.released() {
					t.Fatalf("call %d after the claim failed: %d %s, released: %v", n, r.Code, r.Body, f.released())
				}
				f.mu.Lock()
				f.n = 0
				f.mu.Unlock()
				if r := e.serveWith(api, method, path, body, "Idempotency-Key", idem); r.Code != 201 {
					t.Fatalf("call %d after the claim failed, then the retry: %d %s", n, r.Code, r.Body)
				}
			}
		})
	}
}

// A rotation refused after its claim (the key unknown, or revoked) gives
// the key up too: the retry gets the same refusal, not "in progress".
func TestRefusedRotationReleasesItsKey(t *testing.T) {
	e := newEnv(t)
	rot := e.rotator()
	revoked := e.do("POST", "/v1/keys", `{"name":"n","ownerId":"acme","environment":"live"}`).str("id")
	e.do("DELETE", "/v1/keys/"+revoked, "")
	for id, want := range map[string]int{"key_00000000000000000000000001": 404, revoked: 409} {
		for attempt := range 2 {
			r := e.rotate(rot, "POST", "/v1/keys/"+id+"/rotate", "", "Idempotency-Key", "refused-"+id)
			if r.Code != want || r.Header().Get("Idempotent-Replayed") != "" {
				t.Errorf("%s, attempt %d: %d %s, want %d", id, attempt+1, r.Code, r.Body, want)
			}
		}
	}
}

// apiOver returns the issue route (or, with rotate, the rotate route) over
// e's table through a DynamoDB client with f in its middleware.
func (e *env) apiOver(f *faultAfterClaim, rotate bool) http.Handler {
	e.t.Helper()
	st := store.New(dynamotest.Watched(e.db, f.see), e.table, store.Options{Now: e.clock})
	idem := adminapi.NewIdempotency(st, e.Sealer)
	o := adminapi.Options{Store: st, Format: format, Hasher: e.hasher, Idempotency: idem, Now: e.clock, Logger: discard()}
	if rotate {
		return adminapi.NewRotator(o, 0)
	}
	return adminapi.New(o)
}

// serveWith sends a request to h as e.rotate does.
func (e *env) serveWith(h http.Handler, method, path, body string, headers ...string) resp {
	e.t.Helper()
	return resp{ResponseRecorder: e.rotate(h, method, path, body, headers...)}
}
