// Package adminapi is keygate's admin API for the key lifecycle (issue, get,
// list, update, revoke, usage, audit trail) as an ordinary net/http handler:
// the issuer function runs it in Lambda through internal/lambdahttp, and the
// local gateway serves it as is.
//
// Every error is an RFC 9457 problem (application/problem+json) with a
// stable code: each route returns its error, and internal/httpedge, the
// one HTTP edge of keygate's handlers, turns it into its problem (fault
// codes from the domain and the store become HTTP statuses there and
// nowhere else). Every change writes an audit record and
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
	"time"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
)

// OpenAPI is the OpenAPI 3.1 document of the whole admin API (this handler's
// routes and the rotator's and token routes), served at /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// CursorSecret derives the secret that signs list cursors from the admin
// API's cursor secret (KEYGATE_CURSOR_SECRET, else the pepper), through its
// own HKDF label, so that no key is used twice. It is empty when there
// is no master secret: cursors are then only integrity-checked against
// accidents, not forgery (set a pepper).
func CursorSecret(secret []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "keygate list cursor v1", 32)
	if err != nil {
		return secret
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
	// Retention keeps revoked keys; MaxTTL caps ttlSeconds. Zero means
	// the registry's default (config.RevokedRetention, config.MaxKeyTTL).
	Retention time.Duration
	MaxTTL    time.Duration
}

// API is the admin API handler.
type API struct {
	o   Options
	mux *httpedge.Mux
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
	"GET /v1/owners/{ownerId}/usage",
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
		o.Retention = config.RevokedRetention.Default()
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = config.MaxKeyTTL.Default()
	}
	if o.Publisher == nil {
		o.Publisher = &lifecycle.Log{Logger: o.Logger}
	}
	a := &API{o: o}
	handlers := map[string]httpedge.HandlerFunc{
		"POST /v1/keys":                  a.issue,
		"GET /v1/keys":                   a.list,
		"GET /v1/keys/{id}":              a.get,
		"PATCH /v1/keys/{id}":            a.update,
		"DELETE /v1/keys/{id}":           a.revoke,
		"GET /v1/keys/{id}/usage":        a.usage,
		"GET /v1/keys/{id}/audit":        a.audit,
		"GET /v1/owners/{ownerId}/usage": a.ownerUsage,
		"GET /v1/openapi.json":           a.openapi,
	}
	a.mux = a.newMux(Routes, handlers)
	return a
}

// newMux serves routes with the admin API's conventions: errors as
// problems, and one access log line per request.
func (a *API) newMux(routes []string, handlers map[string]httpedge.HandlerFunc) *httpedge.Mux {
	return httpedge.NewMux(httpedge.MuxOptions{Name: "admin API", Logger: a.o.Logger, Access: a.access},
		httpedge.RoutesOf(routes, handlers)...)
}

// access logs one line per request: method, route pattern (never the raw
// path or query, which are client input), status and actor.
func (a *API) access(r *http.Request, route string, status int) {
	a.o.Logger.InfoContext(r.Context(), "admin request", "method", r.Method, "route", route,
		"status", status, "actor", actor.From(r.Context()))
}

// ServeHTTP serves the admin API; a panic becomes a 500 problem.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *API) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(OpenAPI)
	return nil
}
