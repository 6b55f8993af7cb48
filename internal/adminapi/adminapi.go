// Package adminapi is keygate's admin API for the key lifecycle (issue, get,
// list, update, revoke, usage, audit trail) as an ordinary net/http handler:
// the issuer function runs it in Lambda through internal/lambdahttp, and the
// local gateway serves it as is.
//
// Every error is an RFC 9457 problem (application/problem+json) with a
// stable code; fault codes from the domain and the store become HTTP
// statuses here and nowhere else. Every change writes an audit record and
// publishes a lifecycle event; neither ever carries the plaintext key, which
// appears only in the one response that issues it.
package adminapi

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	_ "embed"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
)

// OpenAPI is the OpenAPI 3.1 document of the whole admin API (this handler's
// routes and the rotator's and token routes), served at /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// The issuer's own settings, read next to internal/config's.
const (
	// EnvIdempotencySecret keys the sealing of stored idempotent responses
	// and the signing of list cursors; when unset the pepper is used (each
	// through its own HKDF label, so no key is used twice).
	EnvIdempotencySecret = "KEYGATE_IDEMPOTENCY_SECRET"
	// EnvRevokedRetentionDays is how long a revoked key's record is kept
	// before DynamoDB's TTL deletes it (default 90).
	EnvRevokedRetentionDays = "KEYGATE_REVOKED_RETENTION_DAYS"
	// EnvMaxTTLSeconds caps ttlSeconds of session keys (default 86400).
	EnvMaxTTLSeconds = "KEYGATE_MAX_TTL_SECONDS"
)

// Defaults of the settings.
const (
	DefaultRetention = 90 * 24 * time.Hour
	DefaultMaxTTL    = 24 * time.Hour
)

// Settings are the issuer's own settings.
type Settings struct {
	// Secret is the master secret for idempotency sealing and cursors.
	Secret    []byte
	Retention time.Duration
	MaxTTL    time.Duration
}

// SettingsFromEnv reads the issuer's settings through getenv; pepper is the
// fallback secret (config.Config.Pepper).
func SettingsFromEnv(getenv func(string) string, pepper []byte) (Settings, error) {
	s := Settings{Secret: []byte(getenv(EnvIdempotencySecret)), Retention: DefaultRetention, MaxTTL: DefaultMaxTTL}
	if len(s.Secret) == 0 {
		s.Secret = pepper
	}
	if v := getenv(EnvRevokedRetentionDays); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			return Settings{}, fault.Fieldf(EnvRevokedRetentionDays, "must be a whole number of days from 1 to 3650")
		}
		s.Retention = time.Duration(n) * 24 * time.Hour
	}
	if v := getenv(EnvMaxTTLSeconds); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366*24*3600 {
			return Settings{}, fault.Fieldf(EnvMaxTTLSeconds, "must be a whole number of seconds from 1 to 31622400")
		}
		s.MaxTTL = time.Duration(n) * time.Second
	}
	return s, nil
}

// CursorSecret returns the secret that signs list cursors, derived from the
// master secret (empty when there is none: cursors are then only
// integrity-checked against accidents, not forgery; set a pepper).
func (s Settings) CursorSecret() []byte {
	if len(s.Secret) == 0 {
		return nil
	}
	k, err := hkdf.Key(sha256.New, s.Secret, nil, "keygate list cursor v1", 32)
	if err != nil {
		return s.Secret
	}
	return k
}

// Publisher sends lifecycle events (internal/lifecycle has the EventBridge
// and logging implementations). A failed publish is logged, never fails the
// request: the change and its audit record are already stored.
type Publisher interface {
	Publish(ctx context.Context, e lifecycle.Event) error
}

// Options are what the admin API needs, built once at cold start.
type Options struct {
	Store        *store.Store
	Format       apikey.Format
	Hasher       *apikey.Hasher
	Environments []key.Environment
	Idempotency  *Idempotency
	Publisher    Publisher
	Logger       *slog.Logger
	// Now is the clock; nil means time.Now. It should be the store's clock.
	Now func() time.Time
	// Retention keeps revoked keys (default 90 days); MaxTTL caps ttlSeconds.
	Retention time.Duration
	MaxTTL    time.Duration
}

// API is the admin API handler.
type API struct {
	o   Options
	mux *http.ServeMux
}

// Routes lists the method and path pattern of every route this handler
// serves, for the OpenAPI test and the gateway's route table.
var Routes = []string{
	"POST /v1/keys",
	"GET /v1/keys",
	"GET /v1/keys/{id}",
	"PATCH /v1/keys/{id}",
	"DELETE /v1/keys/{id}",
	"GET /v1/keys/{id}/usage",
	"GET /v1/keys/{id}/audit",
	"GET /v1/openapi.json",
}

// New returns the admin API handler.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.Publisher == nil {
		o.Publisher = &lifecycle.Log{Logger: o.Logger}
	}
	a := &API{o: o, mux: http.NewServeMux()}
	handlers := map[string]http.HandlerFunc{
		"POST /v1/keys":           a.issue,
		"GET /v1/keys":            a.list,
		"GET /v1/keys/{id}":       a.get,
		"PATCH /v1/keys/{id}":     a.update,
		"DELETE /v1/keys/{id}":    a.revoke,
		"GET /v1/keys/{id}/usage": a.usage,
		"GET /v1/keys/{id}/audit": a.audit,
		"GET /v1/openapi.json":    a.openapi,
	}
	for _, r := range Routes {
		a.mux.HandleFunc(r, handlers[r])
	}
	// Method-less patterns are less specific than the routes above, so they
	// see only the methods no route takes: 405 with Allow, as a problem.
	allow := map[string]string{}
	for _, r := range Routes {
		m, p, _ := strings.Cut(r, " ")
		if allow[p] != "" {
			allow[p] += ", "
		}
		allow[p] += m
	}
	for p, methods := range allow {
		a.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			writeProblem(w, newProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "this route takes "+methods))
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(http.StatusNotFound, CodeNotFound, "", "no such route"))
	})
	return a
}

// statusWriter remembers the status, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ServeHTTP serves the admin API and logs one line per request: method,
// route pattern (never the raw path or query, which are client input),
// status and actor. A panic becomes a 500 problem.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			a.o.Logger.ErrorContext(r.Context(), "panic in admin API", "route", r.Pattern)
			if sw.status == 0 {
				writeProblem(sw, newProblem(http.StatusInternalServerError, CodeInternal, "", "internal error"))
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		a.o.Logger.InfoContext(r.Context(), "admin request", "method", r.Method, "route", route,
			"status", sw.status, "actor", actor.From(r.Context()))
	}()
	a.mux.ServeHTTP(sw, r)
}

// fail writes err as a problem and logs server-side failures with their
// cause (fault errors never hold a secret).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(err)
	if p.Status >= 500 {
		a.o.Logger.ErrorContext(r.Context(), "admin request failed", "route", r.Pattern, "code", p.Code, "error", err.Error())
	}
	writeProblem(w, p)
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(OpenAPI)
}
