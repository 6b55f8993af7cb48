package localgw

import (
	"strings"

	"github.com/keygate/keygate/internal/gateway"
)

// match is a request matched to a route of the table.
type match struct {
	route gateway.Route
	// params are the path parameters by name ({id} -> "key_...", {proxy+}
	// -> "a/b/c"), as API Gateway passes them in pathParameters.
	params map[string]string
}

// resolve finds the route for method and path as API Gateway does: among
// the resources whose path matches, the most specific wins (a literal
// segment beats {param}, which beats a greedy {param+}); on that resource an
// exact method beats ANY. ok is false when no resource matches or the
// resource lacks the method: API Gateway answers both with 403 "Missing
// Authentication Token".
func resolve(routes []gateway.Route, method, path string) (m match, ok bool) {
	segs := splitPath(path)
	var best string
	var bestScore []int
	var bestParams map[string]string
	for _, r := range routes {
		score, params, hit := matchPath(splitPath(r.Path), segs)
		if !hit {
			continue
		}
		if bestScore == nil || better(score, bestScore) {
			best, bestScore, bestParams = r.Path, score, params
		}
	}
	if bestScore == nil {
		return match{}, false
	}
	var anyRoute *gateway.Route
	for i := range routes {
		r := &routes[i]
		if r.Path != best {
			continue
		}
		if r.Method == method {
			return match{route: *r, params: bestParams}, true
		}
		if r.Method == "ANY" && anyRoute == nil {
			anyRoute = r
		}
	}
	if anyRoute != nil {
		return match{route: *anyRoute, params: bestParams}, true
	}
	return match{}, false
}

// splitPath splits "/a/b" into ["a", "b"]; "/" is no segments.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Segment kinds, in order of specificity.
const (
	greedySeg  = 1
	paramSeg   = 2
	literalSeg = 3
)

// matchPath matches a resource path's segments against a request's. The
// score lists the kind of each resource segment, for better.
func matchPath(res, req []string) (score []int, params map[string]string, ok bool) {
	score = make([]int, 0, len(res))
	for i, s := range res {
		name, isParam := strings.CutPrefix(s, "{")
		if !isParam {
			if i >= len(req) || req[i] != s {
				return nil, nil, false
			}
			score = append(score, literalSeg)
			continue
		}
		name = strings.TrimSuffix(name, "}")
		if params == nil {
			params = map[string]string{}
		}
		if greedy, ok := strings.CutSuffix(name, "+"); ok {
			// {name+} takes one or more segments, and must be last.
			if i >= len(req) || i != len(res)-1 {
				return nil, nil, false
			}
			params[greedy] = strings.Join(req[i:], "/")
			return append(score, greedySeg), params, true
		}
		if i >= len(req) || req[i] == "" {
			return nil, nil, false
		}
		params[name] = req[i]
		score = append(score, paramSeg)
	}
	if len(res) != len(req) {
		return nil, nil, false
	}
	return score, params, true
}

// better reports whether score a is more specific than b: the first segment
// that differs decides; a longer literal path beats a shorter one.
func better(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
