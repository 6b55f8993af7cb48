// Package gateway is the one definition of how keygate looks from API
// Gateway: the authorizer's context keys and reason codes, the headers the
// protected proxy forwards, the route table and the gateway responses. The
// CDK stack and the local gateway both read it, so the deployed API and
// `make dev` behave alike.
package gateway

import "strconv"

// Reason is a machine-readable reason for a denial, the `code` of a
// denial's body. The values are a contract with clients; never rename one.
type Reason string

// The reasons, in the order the authorizer checks them.
const (
	MissingKey   Reason = "missing_key"
	MalformedKey Reason = "malformed_key"
	// InvalidPath: the request's path is not canonical (empty or dot
	// segments, encoded separators or dots, backslashes, ...): refused
	// whatever the key, because an upstream might read it as another route.
	InvalidPath Reason = "invalid_path"
	// RouteNotAllowed: no route matches and the deployment denies
	// unmatched paths (KEYGATE_UNMATCHED=deny).
	RouteNotAllowed   Reason = "route_not_allowed"
	UnknownKey        Reason = "unknown_key"
	Disabled          Reason = "disabled"
	Revoked           Reason = "revoked"
	Expired           Reason = "expired"
	NotYetValid       Reason = "not_yet_valid"
	WrongEnvironment  Reason = "wrong_environment"
	InsufficientScope Reason = "insufficient_scope"
	MethodNotAllowed  Reason = "method_not_allowed"
	OriginNotAllowed  Reason = "origin_not_allowed"
	IPNotAllowed      Reason = "ip_not_allowed"
	RateLimited       Reason = "rate_limited"
	QuotaExceeded     Reason = "quota_exceeded"
	Unavailable       Reason = "unavailable"
)

// Unrecognised reports whether a reason means no credential was recognised
// (API Gateway answers 401 with a generic body, and can carry no context),
// as opposed to a recognised key being refused (403 with the reason).
func (r Reason) Unrecognised() bool {
	return r == MissingKey || r == MalformedKey || r == UnknownKey
}

// Context keys the authorizer sets. On allow: the key's identity and the
// remaining limits; on deny: the reason, a message and, for limits, the
// seconds until a retry can succeed. API Gateway context values are
// strings, numbers or booleans only, so lists are flattened as noted.
const (
	CtxKeyID       = "keyId"
	CtxOwnerID     = "ownerId"
	CtxType        = "type"        // secret | publishable
	CtxEnvironment = "environment" // live | test
	CtxScopes      = "scopes"      // space separated
	CtxPlan        = "plan"        // the key's metadata "plan", or ""
	// CtxRateLimitRemaining is "name=remaining" pairs, comma separated, in
	// the order of the key's limits, for example "second=9,day=9990".
	CtxRateLimitRemaining = "rateLimitRemaining"
	// CtxQuotaRemaining is the credits left in the current period, or "".
	CtxQuotaRemaining = "quotaRemaining"
	// CtxTokenID is the jti of the access token the request carried, or "".
	CtxTokenID = "tokenId"

	CtxCode              = "code"
	CtxMessage           = "message"
	CtxRetryAfterSeconds = "retryAfterSeconds" // whole seconds, 0 when retrying will not help
	// CtxRetryAfterField repeats retryAfterSeconds as the JSON fragment
	// `,"retryAfterSeconds":N` (see RetryAfterField) for the ACCESS_DENIED
	// template. API Gateway renders that template for IAM refusals of admin
	// calls too, with no authorizer context: a bare
	// `"retryAfterSeconds":$context.authorizer.retryAfterSeconds` would then
	// print invalid JSON, while an absent fragment prints nothing.
	CtxRetryAfterField = "retryAfterField"
)

// RetryAfterField returns the value of CtxRetryAfterField for a denial.
func RetryAfterField(seconds int64) string {
	return `,"retryAfterSeconds":` + strconv.FormatInt(seconds, 10)
}

// Forward maps each allow-context key to the header the protected proxy sends
// upstream. The stack's integration and the local gateway both use it.
var Forward = []struct{ Context, Header string }{
	{CtxKeyID, "X-Keygate-Key-Id"},
	{CtxOwnerID, "X-Keygate-Owner-Id"},
	{CtxType, "X-Keygate-Key-Type"},
	{CtxEnvironment, "X-Keygate-Environment"},
	{CtxScopes, "X-Keygate-Scopes"},
	{CtxPlan, "X-Keygate-Plan"},
	{CtxRateLimitRemaining, "X-Keygate-RateLimit-Remaining"},
	{CtxQuotaRemaining, "X-Keygate-Quota-Remaining"},
	{CtxTokenID, "X-Keygate-Token-Id"},
}
