package rotator_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/verify"
)

// The grace period as a client sees it: the authorizer's verifier admits
// the old key until the last millisecond of the grace and refuses it as
// expired from its end, and admits the new key throughout.
func TestRotationThroughTheVerifier(t *testing.T) {
	e := newEnv(t, policy())
	issued := e.do(e.issuer, "POST", "/v1/keys", issueBody)
	oldPlain, _ := issued.body["key"].(string)
	r := e.do(e.rotate, "POST", "/v1/keys/"+issued.body["id"].(string)+"/rotate", `{"gracePeriodSeconds": 3600}`)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	newPlain, _ := r.body["key"].(string)
	format, _ := apikey.NewFormat("")
	v := verify.New(e.store, verify.Options{Format: format, Hasher: e.hasher, Now: e.clock})
	check := func(at time.Time, plain string, want gateway.Reason) {
		t.Helper()
		e.set(at)
		d := v.Verify(context.Background(), &verify.Request{Credential: plain, Method: "GET", Path: "/users", SourceIP: "203.0.113.5"})
		if d.Reason != want {
			t.Fatalf("at t0+%v: reason %q, want %q", at.Sub(t0), d.Reason, want)
		}
	}
	end := t0.Add(time.Hour)
	check(t0, oldPlain, "")
	check(t0, newPlain, "")
	check(end.Add(-time.Millisecond), oldPlain, "")
	check(end.Add(-time.Millisecond), newPlain, "")
	check(end, oldPlain, gateway.Expired)
	check(end, newPlain, "")
	check(end.Add(time.Hour), oldPlain, gateway.Expired)
	check(end.Add(time.Hour), newPlain, "")
}
