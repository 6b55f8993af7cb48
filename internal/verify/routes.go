package verify

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
)

// Route is one entry of the route table: requests whose method and path
// match need every scope listed, and spend Cost quota credits (default 1).
//
// Method is an HTTP method or "*"/"ANY" for any; a GET route matches HEAD
// too, because upstreams (Go's net/http, Express, Rails) answer HEAD with
// the GET handler. Path is a pattern of segments: a literal ("users"), a
// parameter ("{id}", one non-empty segment), or, as the last segment only,
// "{name+}" (one or more segments) or "*" (zero or more). Literals match in
// any case unless CaseSensitive is set, because upstreams that ignore case
// (ASP.NET, IIS, case-insensitive file systems) serve /Admin with the
// /admin handler.
type Route struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Scopes []string `json:"scopes"`
	Cost   int64    `json:"cost"`
	// CaseSensitive makes the route's literal segments match only as
	// written: for an upstream known to tell /Admin from /admin.
	CaseSensitive bool `json:"caseSensitive"`

	segs []string
}

// Routes is the route table; the first matching route wins. What a request
// that matches no route needs is the RouteTable's Unmatched.
type Routes []Route

// ParseRoutes reads the route table from JSON (KEYGATE_ROUTES), for example
// [{"method":"GET","path":"/users/{id}","scopes":["read:users"]},
// {"method":"POST","path":"/reports/*","scopes":["write:reports"],"cost":5}].
// An empty string is an empty table. A route's path must itself be
// canonical (see RouteTable.Resolve), or no request could ever match it.
func ParseRoutes(text string) (Routes, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var rs Routes
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return nil, fault.Fieldf("routes", "must be a JSON list of {method, path, scopes, cost, caseSensitive}: %v", err)
	}
	for i := range rs {
		r := &rs[i]
		r.Method = strings.ToUpper(r.Method)
		if r.Method == "" || r.Method == "ANY" {
			r.Method = "*"
		}
		if !strings.HasPrefix(r.Path, "/") {
			return nil, fault.Fieldf("routes", "route %d: path %q must start with /", i, r.Path)
		}
		if _, ok := canonical(r.Path); !ok || strings.ContainsRune(r.Path, '%') {
			return nil, fault.Fieldf("routes", "route %d: path %q must be canonical: no empty or dot segments, %%-escapes, backslashes or semicolons", i, r.Path)
		}
		if r.Cost == 0 {
			r.Cost = 1
		}
		if r.Cost < 0 || r.Cost > key.MaxQuota {
			return nil, fault.Fieldf("routes", "route %d: cost must be from 1 to %d", i, int64(key.MaxQuota))
		}
		if err := key.ValidateScopes(r.Scopes); err != nil {
			return nil, fault.Fieldf("routes", "route %d: %v", i, err)
		}
		r.segs = splitPath(r.Path)
		for j, s := range r.segs {
			if (s == "*" || strings.HasSuffix(s, "+}")) && j != len(r.segs)-1 {
				return nil, fault.Fieldf("routes", "route %d: %q may only end a path", i, s)
			}
		}
	}
	return rs, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Unmatched is what a request that matches no route needs (KEYGATE_UNMATCHED):
// nothing but a valid key (allow, the zero value), every scope in Scopes,
// or nothing can admit it (Deny).
type Unmatched struct {
	Deny   bool
	Scopes []string
}

// ParseUnmatched reads KEYGATE_UNMATCHED: "allow", "deny", or a list of
// scopes separated by commas or spaces ("read:all, admin").
func ParseUnmatched(text string) (Unmatched, error) {
	switch t := strings.TrimSpace(text); t {
	case "", "allow":
		return Unmatched{}, nil
	case "deny":
		return Unmatched{Deny: true}, nil
	default:
		scopes := strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' })
		if err := key.ValidateScopes(scopes); err != nil {
			return Unmatched{}, fault.Fieldf("unmatched", "must be allow, deny or a list of scopes: %v", err)
		}
		return Unmatched{Scopes: scopes}, nil
	}
}

// String is the setting's text for u.
func (u Unmatched) String() string {
	switch {
	case u.Deny:
		return "deny"
	case len(u.Scopes) == 0:
		return "allow"
	}
	return strings.Join(u.Scopes, ",")
}

// ParseBasePath reads KEYGATE_BASE_PATH: a canonical path such as
// "/payments" (the base path of a custom domain's API mapping, which API
// Gateway leaves in the path the authorizer sees), returned without its
// trailing slash; "" or "/" is none.
func ParseBasePath(text string) (string, error) {
	if text == "" || text == "/" {
		return "", nil
	}
	p, ok := canonical(text)
	if !ok || !strings.HasPrefix(text, "/") || strings.ContainsAny(text, "%{}*") {
		return "", fault.Fieldf("basePath", "must be a canonical path such as /payments")
	}
	return p, nil
}

// RouteTable decides which route a request is under: the routes, the base
// path stripped before matching, and what an unmatched request needs.
type RouteTable struct {
	Routes    Routes
	BasePath  string
	Unmatched Unmatched

	unmatched Route
}

// NewRouteTable returns the table; basePath is as ParseBasePath returns it.
func NewRouteTable(rs Routes, basePath string, u Unmatched) *RouteTable {
	return &RouteTable{Routes: rs, BasePath: basePath, Unmatched: u, unmatched: Route{Scopes: u.Scopes, Cost: 1}}
}

// Resolve returns the route that decides a request, or the reason it is
// refused whatever key it carries:
//
//   - invalid_path when the path is not canonical: it is empty of a
//     leading slash or has an empty segment ("//"; one trailing slash is
//     allowed and ignored), a dot segment ("." or ".."), a segment ending
//     in a dot, a backslash, a semicolon, a control character, invalid
//     UTF-8 once decoded, or a %-escape of "/", ".", "\", ";", "%", "?",
//     "#" or a control character (or one that is malformed). Upstreams differ on what such paths mean
//     (nginx merges slashes, Tomcat drops ";..." parameters, IIS drops
//     trailing dots, some decode twice): a path that could name another
//     route upstream than here is refused rather than guessed at. Other
//     %-escapes are decoded before matching, so /%61dmin is /admin;
//   - route_not_allowed when no route matches and Unmatched is Deny.
//
// The base path, when set, is stripped first (the path is matched as is
// when it does not start with it). An empty path (a dialect that names
// none) is "/". It allocates nothing for a path without %-escapes.
func (t *RouteTable) Resolve(method, path string) (*Route, gateway.Reason) {
	if path == "" {
		path = "/"
	}
	p, ok := canonical(path)
	if !ok {
		return nil, gateway.InvalidPath
	}
	if b := t.BasePath; b != "" && len(p) >= len(b) && strings.EqualFold(p[:len(b)], b) {
		if rest := p[len(b):]; rest == "" {
			p = "/"
		} else if rest[0] == '/' {
			p = rest
		}
	}
	for i := range t.Routes {
		r := &t.Routes[i]
		if methodMatches(r.Method, method) && r.matches(p) {
			return r, ""
		}
	}
	if t.Unmatched.Deny {
		return nil, gateway.RouteNotAllowed
	}
	return &t.unmatched, ""
}

// methodMatches reports whether a request's method falls under a route's:
// in any case (methods are case-sensitive in HTTP, but an upstream that
// folds them must not see a method no route checked), and HEAD under GET.
func methodMatches(route, method string) bool {
	return route == "*" || strings.EqualFold(route, method) ||
		(route == "GET" && strings.EqualFold(method, "HEAD"))
}

// canonical checks path (see RouteTable.Resolve) and returns it decoded and
// without its trailing slash. Without %-escapes the result is a substring
// of path: no allocation.
func canonical(path string) (string, bool) {
	if path == "" || path[0] != '/' {
		return "", false
	}
	escaped := false
	segStart := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) {
			c := path[i]
			switch {
			case c == '%':
				if i+2 >= len(path) {
					return "", false
				}
				d, ok := unhex(path[i+1], path[i+2])
				if !ok || d == '/' || d == '.' || d == '\\' || d == ';' || d == '%' || d == '?' || d == '#' || d < 0x20 || d == 0x7f {
					return "", false
				}
				escaped = true
				i += 2
				continue
			case c == '\\' || c == ';' || c == '?' || c == '#' || c < 0x20 || c == 0x7f:
				return "", false
			case c != '/':
				continue
			}
		}
		// A segment ends at i (a slash, or the end of the path).
		seg := path[segStart:i]
		switch {
		case seg == "" && i == len(path):
			// The root, or one trailing slash.
		case seg == "", seg == ".", seg == "..", seg[len(seg)-1] == '.':
			return "", false
		}
		segStart = i + 1
	}
	p := path
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if !escaped {
		return p, utf8.ValidString(p)
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			d, _ := unhex(p[i+1], p[i+2])
			b = append(b, d)
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return string(b), utf8.Valid(b)
}

func unhex(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// matches reports whether the canonical path p falls under the route.
func (r *Route) matches(p string) bool {
	rest := strings.Trim(p, "/")
	for _, seg := range r.segs {
		if seg == "*" {
			return true
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}") {
			return rest != ""
		}
		if rest == "" {
			return false
		}
		var part string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			part, rest = rest, ""
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			continue
		}
		if part != seg && (r.CaseSensitive || !foldEqual(part, seg)) {
			return false
		}
	}
	return rest == ""
}

// foldEqual reports whether a and b are equal ignoring case, under a fold
// wider than any one upstream's: two characters are equal when Unicode's
// case folding (strings.EqualFold), their lower case or their upper case
// makes them so. So "admİn" and "admın" match "admin" (as Java's
// equalsIgnoreCase and lowercasing upstreams have it), and a path an
// upstream would read as a literal's is matched as that literal here.
func foldEqual(a, b string) bool {
	for a != "" && b != "" {
		var ra, rb rune
		if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf {
			ra, rb = rune(a[0]), rune(b[0])
			a, b = a[1:], b[1:]
		} else {
			var na, nb int
			ra, na = utf8.DecodeRuneInString(a)
			rb, nb = utf8.DecodeRuneInString(b)
			a, b = a[na:], b[nb:]
		}
		if ra == rb || unicode.ToLower(ra) == unicode.ToLower(rb) || unicode.ToUpper(ra) == unicode.ToUpper(rb) {
			continue
		}
		if !sameFoldOrbit(ra, rb) {
			return false
		}
	}
	return a == "" && b == ""
}

// sameFoldOrbit reports whether r and s are in one orbit of Unicode's
// simple case folding (the Kelvin sign and k, for example).
func sameFoldOrbit(r, s rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == s {
			return true
		}
	}
	return false
}
