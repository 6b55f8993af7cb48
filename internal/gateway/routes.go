package gateway

import "strings"

// Auth is how API Gateway authorizes a route before keygate's code runs.
type Auth string

// The three ways a route is authorized.
const (
	// AuthIAM: SigV4-signed requests by principals allowed execute-api:Invoke
	// (the admin API: key management is an AWS permission, not a key).
	AuthIAM Auth = "iam"
	// AuthKeygate: the keygate authorizer verifies an API key or token.
	AuthKeygate Auth = "keygate"
	// AuthNone: public (the JWKS document, which only holds public keys).
	AuthNone Auth = "none"
)

// The function names: each is a folder under functions/, which the CDK
// construct builds into the function's bootstrap at synth.
const (
	FnAuthorizer = "authorizer"
	FnIssuer     = "issuer"
	FnRotator    = "rotator"
	FnTokens     = "tokens"
	// FnUsage keeps usage history from the table's stream; no route
	// reaches it.
	FnUsage = "usage"
)

// Upstream is the Function of the protected proxy's routes: the request goes
// to the configured upstream URL (the echo upstream under `make dev`), with
// the authorizer context as the headers in Forward, not to a keygate
// function.
const Upstream = "upstream"

// Route is one method on one path of keygate's API. Paths use API Gateway's
// syntax: {name} is one segment, {name+} is the rest of the path (greedy).
type Route struct {
	Method   string // GET, POST, PATCH, DELETE or ANY
	Path     string
	Function string // a function name, or Upstream
	Auth     Auth
}

// Routes is keygate's own API: the admin API (IAM), the token exchange (the
// keygate authorizer) and the public JWKS document. The stack declares one
// API Gateway method per entry and the local gateway dispatches by it, so a
// route added here exists in both. The protected proxy is added by Proxy,
// because its base path is a setting.
var Routes = []Route{
	{Method: "POST", Path: "/v1/keys", Function: FnIssuer, Auth: AuthIAM},
	{Method: "GET", Path: "/v1/keys", Function: FnIssuer, Auth: AuthIAM},
	{Method: "GET", Path: "/v1/keys/{id}", Function: FnIssuer, Auth: AuthIAM},
	{Method: "PATCH", Path: "/v1/keys/{id}", Function: FnIssuer, Auth: AuthIAM},
	{Method: "DELETE", Path: "/v1/keys/{id}", Function: FnIssuer, Auth: AuthIAM},
	{Method: "GET", Path: "/v1/keys/{id}/usage", Function: FnIssuer, Auth: AuthIAM},
	{Method: "GET", Path: "/v1/keys/{id}/audit", Function: FnIssuer, Auth: AuthIAM},
	{Method: "GET", Path: "/v1/owners/{ownerId}/usage", Function: FnIssuer, Auth: AuthIAM},
	{Method: "GET", Path: "/v1/openapi.json", Function: FnIssuer, Auth: AuthIAM},
	{Method: "POST", Path: "/v1/keys/{id}/rotate", Function: FnRotator, Auth: AuthIAM},
	{Method: "POST", Path: "/v1/tokens", Function: FnTokens, Auth: AuthKeygate},
	{Method: "GET", Path: "/.well-known/jwks.json", Function: FnTokens, Auth: AuthNone},
}

// DefaultProxyBase is the path the deployed stack mounts the protected proxy
// under. The proxy sits below a base path of its own, not at the root,
// because API Gateway does not fall back from a more specific resource to a
// root {proxy+}: an upstream's own /v1/... would otherwise be unreachable.
const DefaultProxyBase = "api"

// ProxyParam is the greedy path parameter of the proxy route; the rest of
// the path after the base is appended to the upstream URL.
const ProxyParam = "proxy"

// Proxy returns the protected proxy's routes under base (without slashes,
// for example "api", the stack's and the local gateway's default): any method
// on /<base> and on everything below it, behind the keygate authorizer, sent
// to the upstream.
func Proxy(base string) []Route {
	base = "/" + strings.Trim(base, "/")
	return []Route{
		{Method: "ANY", Path: base, Function: Upstream, Auth: AuthKeygate},
		{Method: "ANY", Path: base + "/{" + ProxyParam + "+}", Function: Upstream, Auth: AuthKeygate},
	}
}

// Functions returns the distinct function names routes reach, in order of
// first appearance, without Upstream: the functions an API needs.
func Functions(routes []Route) []string {
	var out []string
	seen := map[string]bool{Upstream: true}
	for _, r := range routes {
		if !seen[r.Function] {
			seen[r.Function] = true
			out = append(out, r.Function)
		}
	}
	return out
}
