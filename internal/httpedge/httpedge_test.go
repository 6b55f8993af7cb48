package httpedge_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/wire"
)

type served struct {
	code    int
	header  http.Header
	problem httpedge.Problem
	body    string
}

func serve(h http.Handler, method, path, body string) served {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	s := served{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &s.problem)
	return s
}

// A route's returned error becomes its problem: a fault by its code, a
// problem as is, anything else a generic 500 that says nothing of the
// cause; the access hook sees every request with its status.
func TestReturnedErrorsBecomeProblems(t *testing.T) {
	var access []string
	var failures []string
	m := httpedge.NewMux(httpedge.MuxOptions{
		Name: "test API",
		Access: func(r *http.Request, route string, status int) {
			access = append(access, route+" "+http.StatusText(status))
		},
		OnError: func(r *http.Request, p *httpedge.Problem, err error) { failures = append(failures, p.Code) },
	},
		httpedge.Route{Pattern: "GET /fault/{id}", Handle: func(w http.ResponseWriter, r *http.Request) error {
			return fault.Errorf(fault.NotFound, "no %s", r.PathValue("id"))
		}},
		httpedge.Route{Pattern: "POST /problem", Handle: func(http.ResponseWriter, *http.Request) error {
			return httpedge.NewProblem(http.StatusTeapot, "teapot", "field", "short and stout")
		}},
		httpedge.Route{Pattern: "GET /secret", Handle: func(http.ResponseWriter, *http.Request) error {
			return errors.New("dial tcp 10.0.0.1: the internals")
		}},
		httpedge.Route{Pattern: "GET /busy", Handle: func(http.ResponseWriter, *http.Request) error {
			return fault.Errorf(fault.Unavailable, "down")
		}},
		httpedge.Route{Pattern: "GET /ok", Handle: func(w http.ResponseWriter, r *http.Request) error {
			httpedge.WriteJSON(w, http.StatusOK, map[string]string{"a": "b"})
			return nil
		}},
	)
	for _, c := range []struct {
		method, path string
		status       int
		code, field  string
	}{
		{"GET", "/fault/x", 404, "not_found", ""},
		{"POST", "/problem", 418, "teapot", "field"},
		{"GET", "/secret", 500, "internal", ""},
		{"GET", "/busy", 503, "throttled_or_unavailable", ""},
	} {
		s := serve(m, c.method, c.path, "")
		if s.code != c.status || s.header.Get("Content-Type") != "application/problem+json" || s.problem.Status != c.status ||
			(c.code != "throttled_or_unavailable" && s.problem.Code != c.code) || s.problem.Field != c.field {
			t.Errorf("%s %s: %d %s", c.method, c.path, s.code, s.body)
		}
		if strings.Contains(s.body, "internals") {
			t.Errorf("%s %s: the cause reached the client: %s", c.method, c.path, s.body)
		}
	}
	if s := serve(m, "GET", "/busy", ""); s.header.Get("Retry-After") != "1" || s.problem.Code != "unavailable" {
		t.Errorf("unavailable: Retry-After %q, %s", s.header.Get("Retry-After"), s.body)
	}
	if s := serve(m, "GET", "/ok", ""); s.code != 200 || s.header.Get("Content-Type") != "application/json" || s.header.Get("Cache-Control") != "no-store" {
		t.Errorf("ok: %d %v", s.code, s.header)
	}
	if len(failures) != 5 || access[0] != "GET /fault/{id} Not Found" || access[len(access)-1] != "GET /ok OK" {
		t.Errorf("failures %v, access %v", failures, access)
	}
}

// Another method on a known path is 405 with Allow (HEAD with GET, as the
// mux serves it); an unknown path 404; both problems.
func TestUnroutedRequestsAreProblems(t *testing.T) {
	ok := func(http.ResponseWriter, *http.Request) error { return nil }
	m := httpedge.NewMux(httpedge.MuxOptions{},
		httpedge.RoutesOf([]string{"POST /things", "GET /things"}, map[string]httpedge.HandlerFunc{"POST /things": ok, "GET /things": ok})...)
	if s := serve(m, "DELETE", "/things", ""); s.code != 405 || s.header.Get("Allow") != "POST, GET, HEAD" || s.problem.Code != httpedge.CodeMethodNotAllowed {
		t.Errorf("DELETE: %d Allow %q %s", s.code, s.header.Get("Allow"), s.body)
	}
	if s := serve(m, "GET", "/nothing", ""); s.code != 404 || s.problem.Code != httpedge.CodeNotFound {
		t.Errorf("unknown path: %d %s", s.code, s.body)
	}
	defer func() {
		if recover() == nil {
			t.Error("a route without a handler was accepted")
		}
	}()
	httpedge.RoutesOf([]string{"GET /x"}, nil)
}

// A panic is a 500 problem when nothing was written yet, and never a
// second response when something was.
func TestPanicsAreInternalProblems(t *testing.T) {
	m := httpedge.NewMux(httpedge.MuxOptions{},
		httpedge.Route{Pattern: "GET /boom", Handle: func(http.ResponseWriter, *http.Request) error { panic("boom") }},
		httpedge.Route{Pattern: "GET /late", Handle: func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			panic("late")
		}},
		httpedge.Route{Pattern: "GET /written", Handle: func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			return errors.New("after the fact")
		}},
	)
	if s := serve(m, "GET", "/boom", ""); s.code != 500 || s.problem.Code != httpedge.CodeInternal {
		t.Errorf("panic: %d %s", s.code, s.body)
	}
	for _, p := range []string{"/late", "/written"} {
		if s := serve(m, "GET", p, ""); s.code != 202 || s.body != "" {
			t.Errorf("%s: %d %q, want the 202 alone", p, s.code, s.body)
		}
	}
}

// Bodies are read under one set of rules, each refusal a problem naming
// the field where it can.
func TestBodiesAreReadStrictly(t *testing.T) {
	type limit struct {
		Limit  int64  `json:"limit"`
		Period string `json:"period"`
	}
	type req struct {
		Name   string            `json:"name"`
		Count  int               `json:"count"`
		At     *wire.Timestamp   `json:"at"`
		Quota  *limit            `json:"quota"`
		Limits []limit           `json:"limits"`
		Tags   map[string]int    `json:"tags"`
		Meta   map[string]any    `json:"meta"`
		Labels map[string]string `json:"labels"`
	}
	m := httpedge.NewMux(httpedge.MuxOptions{}, httpedge.Route{Pattern: "POST /x", Handle: func(w http.ResponseWriter, r *http.Request) error {
		var v req
		return httpedge.DecodeBody(w, r, &v)
	}})
	for body, want := range map[string][2]string{
		`{"name":"a","extra":1}`:           {"invalid_request", ""},
		`{"quota":{"limit":1,"evil":2}}`:   {"invalid_request", "quota"},
		`{"limits":[{"limit":1},{"x":1}]}`: {"invalid_request", "limits"},
		`{"quota":{"limit":"x"}}`:          {"invalid_request", "quota.limit"},
		`{"tags":{"<script>":"x"}}`:        {"invalid_request", "tags"},
		`{"meta":{"anything":{"goes":1}}}`: {"", ""},
		`{"count":"many"}`:                 {"invalid_request", "count"},
		`{"at":5}`:                         {"invalid_request", "at"},
		`{"name":"a"} {"name":"b"}`:        {"invalid_request", ""},
		`{"name":`:                         {"invalid_request", ""},
		`{"name":"` + big(70_000) + `"}`:   {"body_too_large", ""},
	} {
		s := serve(m, "POST", "/x", body)
		if s.problem.Code != want[0] || s.problem.Field != want[1] {
			t.Errorf("%.40s: %d %s, want %s naming %q", body, s.code, s.body, want[0], want[1])
		}
	}
	if s := serve(m, "POST", "/x", `{"at":"yesterday"}`); s.problem.Field != "at" || !strings.Contains(s.problem.Detail, "RFC 3339") {
		t.Errorf("a typed field's problem says what it takes: %s", s.body)
	}
	// An unknown field is never named (it is the client's text), but the
	// problem says which fields the object takes.
	for body, detail := range map[string]string{
		`{"nAmE":"a","evil<b>":1}`:         "the body has a field this request does not take; it takes at, count, labels, limits, meta, name, quota, tags",
		`{"quota":{"period":"day","p":1}}`: "quota has a field it does not take; it takes limit, period",
	} {
		s := serve(m, "POST", "/x", body)
		if s.problem.Detail != detail || strings.Contains(s.body, "evil") || strings.Contains(s.body, `"p"`) {
			t.Errorf("%s: %s, want detail %q", body, s.body, detail)
		}
	}
	req2 := httptest.NewRequest("POST", "/x", strings.NewReader(`{}`))
	req2.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, req2)
	if rec.Code != 415 {
		t.Errorf("text/plain body: %d", rec.Code)
	}
}

func big(n int) string { return strings.Repeat("a", n) }
