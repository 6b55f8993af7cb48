package verify

import (
	"encoding/json"
	"strings"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

// Route is one entry of the route table: requests whose method and path
// match need every scope listed, and spend Cost quota credits (default 1).
//
// Method is an HTTP method or "*"/"ANY" for any. Path is a pattern of
// segments: a literal ("users"), a parameter ("{id}", one non-empty
// segment), or, as the last segment only, "{name+}" (one or more segments)
// or "*" (zero or more).
type Route struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Scopes []string `json:"scopes"`
	Cost   int64    `json:"cost"`

	segs []string
}

// Routes is the route table; the first matching route wins. A request that
// matches no route needs no scope and costs 1: list a catch-all route
// ("*" "/*") with scopes to require some everywhere.
type Routes []Route

// defaultRoute applies to requests no route matches.
var defaultRoute = Route{Cost: 1}

// ParseRoutes reads the route table from JSON (KEYGATE_ROUTES), for example
// [{"method":"GET","path":"/users/{id}","scopes":["read:users"]},
// {"method":"POST","path":"/reports/*","scopes":["write:reports"],"cost":5}].
// An empty string is an empty table.
func ParseRoutes(text string) (Routes, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var rs Routes
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return nil, fault.Fieldf("routes", "must be a JSON list of {method, path, scopes, cost}: %v", err)
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

// Match returns the first route matching method and path, or the default
// route. It allocates nothing.
func (rs Routes) Match(method, path string) *Route {
	for i := range rs {
		r := &rs[i]
		if (r.Method == "*" || r.Method == method) && r.matches(path) {
			return r
		}
	}
	return &defaultRoute
}

func (r *Route) matches(path string) bool {
	rest := strings.Trim(path, "/")
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
			if part == "" {
				return false
			}
			continue
		}
		if part != seg {
			return false
		}
	}
	return rest == ""
}
