package httpedge

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// HandlerFunc is a route's handler. It writes its successful response and
// returns its failure instead of writing it: the Mux renders a returned
// error as a problem (ProblemOf) and logs it, so a handler is a sequence of
// `if err != nil { return err }` with one way out for every failure.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one route of a Mux.
type Route struct {
	// Pattern is "METHOD /path", as http.ServeMux takes it ({id} is one
	// segment); a GET route serves HEAD too.
	Pattern string
	Handle  HandlerFunc
}

// RoutesOf pairs each of patterns (a handler's exported route list, which
// its OpenAPI test and the gateway's route table read too) with its
// handler, in the order of patterns. A pattern without a handler is a
// programming error, and panics.
func RoutesOf(patterns []string, handlers map[string]HandlerFunc) []Route {
	rs := make([]Route, len(patterns))
	for i, p := range patterns {
		h, ok := handlers[p]
		if !ok {
			panic("httpedge: no handler for " + p)
		}
		rs[i] = Route{Pattern: p, Handle: h}
	}
	return rs
}

// MuxOptions configure a Mux.
type MuxOptions struct {
	// Name names the handler in log lines ("admin API").
	Name string
	// Logger receives failures and panics (default: discarded).
	Logger *slog.Logger
	// OnError, when set, is called for every error a route returns, after
	// its problem is written, instead of the default: server-side failures
	// (5xx) logged at error with their cause (fault errors never hold a
	// secret).
	OnError func(r *http.Request, p *Problem, err error)
	// Access, when set, is called once per request after it is served,
	// with the route pattern ("unmatched" when none matched) and the
	// status, for an access log line.
	Access func(r *http.Request, route string, status int)
}

// Mux serves Routes. A request to a known path with another method gets
// 405 with Allow, any other 404, both as problems; a panic in a route
// becomes a 500 problem (when nothing was written yet) and a log line.
type Mux struct {
	mux *http.ServeMux
	o   MuxOptions
}

// NewMux returns a Mux serving routes.
func NewMux(o MuxOptions, routes ...Route) *Mux {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnError == nil {
		o.OnError = func(r *http.Request, p *Problem, err error) {
			if p.Status >= 500 {
				o.Logger.ErrorContext(r.Context(), o.Name+" request failed", "route", r.Pattern, "code", p.Code, "error", err.Error())
			}
		}
	}
	m := &Mux{mux: http.NewServeMux(), o: o}
	var paths []string
	allow := map[string][]string{}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if allow[path] == nil {
			paths = append(paths, path)
		}
		allow[path] = append(allow[path], method)
		if method == http.MethodGet {
			allow[path] = append(allow[path], http.MethodHead)
		}
		m.mux.HandleFunc(rt.Pattern, m.serve(rt.Handle))
	}
	// Method-less patterns are less specific than the routes above, so they
	// see only the methods no route takes.
	for _, path := range paths {
		methods := strings.Join(allow[path], ", ")
		m.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			WriteProblem(w, NewProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "this route takes "+methods))
		})
	}
	m.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, NewProblem(http.StatusNotFound, CodeNotFound, "", "no such route"))
	})
	return m
}

// serve adapts a route: its error becomes a problem, unless the route
// wrote its response already.
func (m *Mux) serve(h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		p := ProblemOf(err)
		if rec, ok := w.(*Recorder); !ok || rec.Status == 0 {
			WriteProblem(w, p)
		}
		m.o.OnError(r, p, err)
	}
}

// ServeHTTP serves a request.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &Recorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			m.o.Logger.ErrorContext(r.Context(), "panic in "+m.o.Name, "route", r.Pattern)
			if rec.Status == 0 {
				WriteProblem(rec, NewProblem(http.StatusInternalServerError, CodeInternal, "", "internal error"))
			}
		}
		if m.o.Access != nil {
			route := r.Pattern
			if route == "" || route == "/" {
				route = "unmatched"
			}
			m.o.Access(r, route, rec.Status)
		}
	}()
	m.mux.ServeHTTP(rec, r)
}

// Recorder is a ResponseWriter that remembers the status it wrote, for
// access logs and for knowing whether a response has begun.
type Recorder struct {
	http.ResponseWriter
	// Status is the status written, 0 until the response begins.
	Status int
}

// WriteHeader records the status and writes it.
func (r *Recorder) WriteHeader(code int) {
	if r.Status == 0 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and writes b.
func (r *Recorder) Write(b []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type basePathKey struct{}

// WithBasePath returns ctx carrying the path prefix the request came
// through before the handler's own routes: an execute-api URL's stage
// ("/prod"), a custom domain's base path mapping, or "" when the routes
// sit at the root. The adapter that turns an API Gateway event into a
// request (internal/lambdahttp) sets it, from what API Gateway reports.
func WithBasePath(ctx context.Context, prefix string) context.Context {
	return context.WithValue(ctx, basePathKey{}, strings.TrimSuffix(prefix, "/"))
}

// Link returns path (a route's own path, such as /v1/keys/key_...) as the
// client must request it: below the base path the request came through,
// so a Location header or a link in a body works on the URL the client
// used.
func Link(r *http.Request, path string) string {
	prefix, _ := r.Context().Value(basePathKey{}).(string)
	return prefix + path
}
