package verify_test

import (
	"context"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/verify"
)

// demoRoutes is the table of the review that found the bypasses: the admin
// area needs scope admin, users need read, reports write; the public area
// needs nothing.
var demoRoutes = mustRoutes(`[
	{"method":"GET","path":"/demo/users/{id}","scopes":["read"]},
	{"method":"*","path":"/demo/admin/*","scopes":["admin"]},
	{"method":"POST","path":"/demo/reports/{rest+}","scopes":["write"]},
	{"method":"GET","path":"/demo/public/*"}]`)

func mustRoutes(text string) verify.Routes {
	rs, err := verify.ParseRoutes(text)
	if err != nil {
		panic(err)
	}
	return rs
}

// scopesOf resolves a request and returns the scopes its route needs, or
// the reason it is refused whatever the key.
func scopesOf(t *verify.RouteTable, method, p string) (string, gateway.Reason) {
	r, reason := t.Resolve(method, p)
	if reason != "" {
		return "", reason
	}
	return strings.Join(r.Scopes, " "), ""
}

// TestPathVariantsAreRefusedOrScopeChecked holds each variant of the review
// (and the ones a reviewer would try next) to its answer: refused as
// invalid_path whatever the key, or matched to the route its upstream
// would serve, so its scopes apply.
func TestPathVariantsAreRefusedOrScopeChecked(t *testing.T) {
	table := verify.NewRouteTable(demoRoutes, "", verify.Unmatched{})
	cases := []struct {
		method, path string
		scopes       string
		reason       gateway.Reason
	}{
		{"GET", "/demo/admin/x", "admin", ""},
		{"GET", "/demo/admin", "admin", ""},
		{"GET", "/demo/admin/", "admin", ""},
		// Case: ASP.NET and IIS ignore it.
		{"GET", "/demo/Admin/x", "admin", ""},
		{"GET", "/DEMO/ADMIN/x", "admin", ""},
		{"GET", "/demo/adm\u0130n/x", "admin", ""}, // İ lowercases to i (Java's equalsIgnoreCase)
		{"GET", "/demo/adm\u0131n/x", "admin", ""}, // ı uppercases to I
		{"GET", "/demo/\u212admin/x", "", ""},      // the Kelvin sign folds to k, not a
		// Methods: HEAD is served by the GET handler; case folded.
		{"HEAD", "/demo/users/42", "read", ""},
		{"get", "/demo/users/42", "read", ""},
		{"head", "/demo/users/42", "read", ""},
		{"POST", "/demo/users/42", "", ""},
		// Escapes other than of separators and dots are decoded first.
		{"GET", "/demo/%61dmin/x", "admin", ""},
		{"GET", "/demo/%41DMIN/x", "admin", ""},
		{"GET", "/demo/users/a%20b", "read", ""},
		// Empty segments: nginx merges slashes.
		{"GET", "/demo//admin/x", "", gateway.InvalidPath},
		{"GET", "//demo/admin/x", "", gateway.InvalidPath},
		{"GET", "/demo/admin//", "", gateway.InvalidPath},
		// Dot segments, plain and escaped (once or twice), and trailing dots
		// (IIS drops them).
		{"GET", "/demo/./admin/x", "", gateway.InvalidPath},
		{"GET", "/demo/public/../admin/x", "", gateway.InvalidPath},
		{"GET", "/demo/public/..", "", gateway.InvalidPath},
		{"GET", "/demo/%2e%2e/admin", "", gateway.InvalidPath},
		{"GET", "/demo/%2E/admin", "", gateway.InvalidPath},
		{"GET", "/demo/%252e%252e/admin", "", gateway.InvalidPath},
		{"GET", "/demo/admin./x", "", gateway.InvalidPath},
		{"GET", "/demo/admin...", "", gateway.InvalidPath},
		// Encoded slashes and backslashes.
		{"GET", "/demo%2fadmin/x", "", gateway.InvalidPath},
		{"GET", "/demo/admin%2Fx", "", gateway.InvalidPath},
		{"GET", "/demo/%252fadmin", "", gateway.InvalidPath},
		{"GET", "/demo\\admin\\x", "", gateway.InvalidPath},
		{"GET", "/demo/%5cadmin", "", gateway.InvalidPath},
		// Tomcat's path parameters, control characters, bad escapes.
		{"GET", "/demo/admin;jsessionid=1/x", "", gateway.InvalidPath},
		{"GET", "/demo/%3badmin", "", gateway.InvalidPath},
		{"GET", "/demo/admin%00", "", gateway.InvalidPath},
		{"GET", "/demo/admin\t/x", "", gateway.InvalidPath},
		{"GET", "/demo/%zzadmin", "", gateway.InvalidPath},
		{"GET", "/demo/admin%4", "", gateway.InvalidPath},
		{"GET", "/demo/%ff", "", gateway.InvalidPath},
		{"GET", "/demo/%3fadmin", "", gateway.InvalidPath},
		{"GET", "demo/admin", "", gateway.InvalidPath},
		// What stays as it was.
		{"GET", "/", "", ""},
		{"GET", "", "", ""},
		{"GET", "/demo/public/a.b/c", "", ""},
		{"GET", "/demo/other", "", ""},
		{"POST", "/demo/reports/a/b", "write", ""},
	}
	for _, c := range cases {
		scopes, reason := scopesOf(table, c.method, c.path)
		if scopes != c.scopes || reason != c.reason {
			t.Errorf("%s %q: scopes %q reason %q, want %q %q", c.method, c.path, scopes, reason, c.scopes, c.reason)
		}
	}
}

func TestCaseSensitiveRoutesMatchOnlyAsWritten(t *testing.T) {
	rs := mustRoutes(`[{"method":"GET","path":"/Files/{id}","scopes":["files"],"caseSensitive":true}]`)
	table := verify.NewRouteTable(rs, "", verify.Unmatched{Scopes: []string{"other"}})
	for p, want := range map[string]string{"/Files/1": "files", "/files/1": "other", "/FILES/1": "other"} {
		if got, _ := scopesOf(table, "GET", p); got != want {
			t.Errorf("%s: scopes %q, want %q", p, got, want)
		}
	}
}

func TestBasePathIsStripped(t *testing.T) {
	base, err := verify.ParseBasePath("/payments/")
	if err != nil || base != "/payments" {
		t.Fatalf("ParseBasePath: %q %v", base, err)
	}
	table := verify.NewRouteTable(demoRoutes, base, verify.Unmatched{})
	for p, want := range map[string]string{
		"/payments/demo/admin/x": "admin",
		"/Payments/demo/admin/x": "admin",
		"/demo/admin/x":          "admin", // through the execute-api URL, without the mapping
		"/paymentsdemo/admin/x":  "",      // not the base path
		"/payments":              "",
	} {
		if got, reason := scopesOf(table, "GET", p); got != want || reason != "" {
			t.Errorf("%s: scopes %q reason %q, want %q", p, got, reason, want)
		}
	}
	for _, bad := range []string{"payments", "/a//b", "/a/../b", "/{x}", "/a%2fb"} {
		if _, err := verify.ParseBasePath(bad); err == nil {
			t.Errorf("ParseBasePath(%q) accepted a bad base path", bad)
		}
	}
}

func TestUnmatchedPaths(t *testing.T) {
	cases := []struct {
		setting string
		scopes  string
		reason  gateway.Reason
	}{
		{"", "", ""},
		{"allow", "", ""},
		{"deny", "", gateway.RouteNotAllowed},
		{"read:all, admin", "read:all admin", ""},
		{"read:all admin", "read:all admin", ""},
	}
	for _, c := range cases {
		u, err := verify.ParseUnmatched(c.setting)
		if err != nil {
			t.Fatalf("%q: %v", c.setting, err)
		}
		table := verify.NewRouteTable(demoRoutes, "", u)
		if got, reason := scopesOf(table, "GET", "/elsewhere"); got != c.scopes || reason != c.reason {
			t.Errorf("KEYGATE_UNMATCHED=%q: scopes %q reason %q, want %q %q", c.setting, got, reason, c.scopes, c.reason)
		}
		if got, reason := scopesOf(table, "GET", "/demo/admin/x"); got != "admin" || reason != "" {
			t.Errorf("KEYGATE_UNMATCHED=%q changed a matched route: %q %q", c.setting, got, reason)
		}
	}
	if _, err := verify.ParseUnmatched("bad scope!"); err == nil {
		t.Error("ParseUnmatched accepted a bad scope")
	}
}

// TestPathRefusalsCostNoDynamoDBCall: a refused path is decided before the
// cache and DynamoDB, for any well-formed key (minting random keys costs
// the attacker nothing), and a HEAD needs the GET route's scopes through
// the whole verification.
func TestPathRefusalsCostNoDynamoDBCall(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, func(k *key.Key) { k.Scopes = []string{"read"} })
	deny, _ := verify.ParseUnmatched("deny")
	v := f.verifier(func(o *verify.Options) { o.Routes, o.Unmatched = demoRoutes, deny })
	for _, c := range []struct {
		method, path string
		want         gateway.Reason
		calls        int
	}{
		{"GET", "/demo//admin/x", gateway.InvalidPath, 0},
		{"GET", "/demo/%2e%2e/admin", gateway.InvalidPath, 0},
		{"GET", "/elsewhere", gateway.RouteNotAllowed, 0},
		{"GET", "/demo/Admin/x", gateway.InsufficientScope, 1},
		{"HEAD", "/demo/admin/x", gateway.InsufficientScope, 0}, // cached refusal
		{"HEAD", "/demo/users/1", "", 1},
	} {
		d := v.Verify(context.Background(), &verify.Request{Credential: plain, Method: c.method, Path: c.path, Stage: "prod"})
		if d.Reason != c.want || d.Calls != c.calls {
			t.Errorf("%s %s: %q after %d calls, want %q after %d", c.method, c.path, d.Reason, d.Calls, c.want, c.calls)
		}
	}
}

// upstreamViews are the paths lenient upstreams make of a request path:
// decoding escapes (once, or until nothing changes), backslashes as
// slashes, Tomcat's ;parameters dropped, trailing dots dropped (IIS),
// slashes merged and dot segments resolved (nginx, path.Clean), and lower
// or upper case (case-insensitive routers); and all of them together.
func upstreamViews(p string) []string {
	decodeAll := func(s string) string {
		for range 4 {
			d, err := url.PathUnescape(s)
			if err != nil || d == s {
				break
			}
			s = d
		}
		return s
	}
	backslash := func(s string) string { return strings.ReplaceAll(s, "\\", "/") }
	params := func(s string) string {
		segs := strings.Split(s, "/")
		for i, g := range segs {
			if j := strings.IndexByte(g, ';'); j >= 0 {
				segs[i] = g[:j]
			}
		}
		return strings.Join(segs, "/")
	}
	dots := func(s string) string {
		segs := strings.Split(s, "/")
		for i, g := range segs {
			if g != "." && g != ".." {
				segs[i] = strings.TrimRight(g, ".")
			}
		}
		return strings.Join(segs, "/")
	}
	clean := func(s string) string { return path.Clean("/" + s) }
	once, _ := url.PathUnescape(p)
	all := strings.ToLower(clean(dots(params(backslash(decodeAll(p))))))
	return []string{
		once, decodeAll(p), backslash(p), params(p), dots(p), clean(p),
		strings.ToLower(p), strings.ToUpper(p), all, strings.ToUpper(all),
	}
}

// FuzzRoutesFailClosed: no request path admits a key that the path an
// upstream would make of it refuses. For any path the authorizer does not
// refuse, every upstream view of it resolves to a route needing no scope
// the path's own route does not need, and is not denied.
func FuzzRoutesFailClosed(f *testing.F) {
	for _, p := range []string{
		"/demo/admin/x", "/demo//admin/x", "/demo/Admin/x", "/demo/%61dmin/x", "/demo/admin%2fx",
		"/demo/public/../admin/x", "/demo/admin;x/y", "/demo/admin./x", "/demo\\admin", "/demo/%252e%252e/admin",
		"/demo/adm\u0130n/x", "/demo/users/1", "/demo/reports/a/b", "/x/%2e", "/", "/demo/public/%2e%2e/admin",
	} {
		f.Add("GET", p, uint8(0))
		f.Add("HEAD", p, uint8(1))
	}
	tables := []*verify.RouteTable{
		verify.NewRouteTable(demoRoutes, "", verify.Unmatched{}),
		verify.NewRouteTable(demoRoutes, "", verify.Unmatched{Deny: true}),
		verify.NewRouteTable(demoRoutes, "", verify.Unmatched{Scopes: []string{"other"}}),
	}
	f.Fuzz(func(t *testing.T, method, p string, mode uint8) {
		table := tables[int(mode)%len(tables)]
		r, reason := table.Resolve(method, p)
		if reason != "" {
			return // refused whatever the key: nothing to bypass
		}
		upMethod := strings.ToUpper(method)
		if upMethod == "HEAD" {
			upMethod = "GET"
		}
		for _, u := range upstreamViews(p) {
			ur, ureason := table.Resolve(upMethod, u)
			if ureason == gateway.InvalidPath {
				continue // an upstream's view no request of ours could name
			}
			if ureason != "" {
				t.Fatalf("%s %q is admitted under %q, but its upstream view %q is refused: %q", method, p, r.Path, u, ureason)
			}
			for _, s := range ur.Scopes {
				if !slices.Contains(r.Scopes, s) {
					t.Fatalf("%s %q needs %v (route %q), but its upstream view %q needs %v (route %q)",
						method, p, r.Scopes, r.Path, u, ur.Scopes, ur.Path)
				}
			}
		}
	})
}
