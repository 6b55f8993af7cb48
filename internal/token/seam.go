package token

import (
	"context"

	"github.com/keygate/keygate/internal/verify"
)

// VerifyToken plugs the verifier into the authorizer (verify.TokenVerifier):
// a bearer value shaped like a JWT is verified offline and yields the key it
// speaks for and its id; anything else is not a token (ok=false: refused as
// a malformed key). The verify package then applies what it knows of the
// key and the route's rules.
func (v *Verifier) VerifyToken(ctx context.Context, raw string, _ *verify.Request) (verify.Decision, bool) {
	if !Looks(raw) {
		return verify.Decision{}, false
	}
	res := v.Verify(ctx, raw)
	d := verify.Decision{Reason: res.Reason, Calls: res.Calls, Err: res.Err}
	if res.Reason == "" {
		d.Key, d.TokenID = res.Key, res.Claims.ID
		if res.Claims.IssuedAt != nil {
			d.TokenIssuedAt = res.Claims.IssuedAt.Time
		}
	}
	return d, true
}
