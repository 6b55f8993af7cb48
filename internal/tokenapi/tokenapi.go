// Package tokenapi is the token function's HTTP handler: POST /v1/tokens
// exchanges the caller's API key for a short-lived access token, and GET
// /.well-known/jwks.json publishes the public keys that verify them. Like
// the admin API it is an ordinary net/http handler (Lambda runs it through
// internal/lambdahttp, the local gateway as is) and answers errors with the
// same RFC 9457 problems, through internal/httpedge.
//
// POST /v1/tokens sits behind the keygate authorizer, not IAM: the caller
// proves itself with its key, and the handler learns which key from the
// authorizer's context (keyId). It then reads the key's record, so the
// token reflects the key as it is now (state, scopes, expiry), not as the
// authorizer's context summarised it.
package tokenapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// Problem codes of this handler beyond the admin API's. The key states
// reuse the authorizer's reason codes, so a client reads one vocabulary.
const (
	// CodeKeyRequired: the request carried an access token, not a key; a
	// token cannot be exchanged for another (it would outlive its scopes).
	CodeKeyRequired = "key_required"
)

// Codes lists every problem code this handler answers with, for the
// OpenAPI test.
var Codes = []string{
	string(gateway.MissingKey), string(gateway.UnknownKey), CodeKeyRequired,
	string(gateway.InsufficientScope), string(gateway.Disabled), string(gateway.Revoked),
	string(gateway.Expired), string(gateway.NotYetValid), string(gateway.RateLimited),
	httpedge.CodeInvalidRequest, httpedge.CodeBodyTooLarge, httpedge.CodeUnsupportedMediaType,
	httpedge.CodeMethodNotAllowed, httpedge.CodeNotFound, httpedge.CodeThrottled,
	httpedge.CodeUnavailable, httpedge.CodeInternal,
}

// Routes lists the routes this handler serves (all documented in the admin
// API's OpenAPI document).
var Routes = []string{
	"POST /v1/tokens",
	"GET /.well-known/jwks.json",
}

// JWKSCacheControl lets any verifier cache the key set for as long as the
// authorizer does; new keys are published PublishAhead (more) before use.
const JWKSCacheControl = "public, max-age=300"

// Keys reads a key's record by id (internal/store).
type Keys interface {
	Get(ctx context.Context, id string) (*key.Key, error)
}

// Issuer signs tokens (internal/token).
type Issuer interface {
	Issue(ctx context.Context, k *key.Key, r token.Request, now time.Time) (token.Issued, error)
}

// Exchanges counts a key's token exchanges per window (internal/store), so
// that one key cannot make the token function sign without bound: every
// exchange is a KMS Sign call, billed per request and drawn from the
// account's shared KMS request quota.
type Exchanges interface {
	CountTokenExchange(ctx context.Context, keyID string, now time.Time, limit int64) (bool, time.Time, error)
}

// Published lists the published signing keys (token.Keyring).
type Published interface {
	Published(ctx context.Context, now time.Time) ([]store.SigningKey, error)
}

// Options are what the handler needs, built once at cold start.
type Options struct {
	Keys   Keys
	Issuer Issuer
	Ring   Published
	// Exchanges counts each key's exchanges against ExchangesPerMinute
	// (KEYGATE_TOKEN_EXCHANGES_PER_MINUTE; token.DefaultExchangesPerMinute
	// when 0).
	Exchanges          Exchanges
	ExchangesPerMinute int64
	Logger             *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler is the token function's handler.
type Handler struct {
	o   Options
	mux *httpedge.Mux
}

// New returns the handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ExchangesPerMinute <= 0 {
		o.ExchangesPerMinute = token.DefaultExchangesPerMinute
	}
	h := &Handler{o: o}
	h.mux = httpedge.NewMux(httpedge.MuxOptions{Name: "token API", Logger: o.Logger, OnError: h.failed},
		httpedge.RoutesOf(Routes, map[string]httpedge.HandlerFunc{
			"POST /v1/tokens":            h.exchange,
			"GET /.well-known/jwks.json": h.jwks,
		})...)
	return h
}

// ServeHTTP serves the routes; a panic becomes a 500 problem.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// failed logs a refusal (at info) or a failure (at error) with the key it
// was for; never the key or the token themselves.
func (h *Handler) failed(r *http.Request, p *httpedge.Problem, err error) {
	keyID := lambdahttp.Authorizer(r.Context(), gateway.CtxKeyID)
	if p.Status >= 500 {
		h.o.Logger.ErrorContext(r.Context(), "token request failed", "route", r.Pattern, "keyId", keyID, "error", err.Error())
		return
	}
	h.o.Logger.InfoContext(r.Context(), "token refused", "keyId", keyID, "status", p.Status)
}

// Request is the optional body of POST /v1/tokens.
type Request struct {
	// TTLSeconds is the token's lifetime (default KEYGATE_TOKEN_TTL, at
	// most KEYGATE_TOKEN_MAX_TTL, never past the key's expiry).
	TTLSeconds *int64 `json:"ttlSeconds"`
	// Scopes are the scopes to grant, each one of the key's (default all).
	Scopes *[]string `json:"scopes"`
}

// Response is the body of a successful exchange.
type Response struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

func problem(status int, code gateway.Reason, field, detail string) error {
	return httpedge.NewProblem(status, string(code), field, detail)
}

func (h *Handler) exchange(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	keyID := lambdahttp.Authorizer(ctx, gateway.CtxKeyID)
	switch {
	case keyID == "" || !key.ValidID(keyID):
		return problem(http.StatusUnauthorized, gateway.MissingKey, "", "no verified API key: POST /v1/tokens must be called through the keygate authorizer with x-api-key")
	case lambdahttp.Authorizer(ctx, gateway.CtxTokenID) != "":
		return httpedge.NewProblem(http.StatusForbidden, CodeKeyRequired, "", "exchange the API key itself: an access token cannot be exchanged for another")
	}
	is, err := h.issue(w, r, keyID, h.o.Now())
	if err != nil {
		return err
	}
	// The token is a bearer credential: it is in the response only, never
	// in a log line (its id is).
	h.o.Logger.InfoContext(ctx, "token issued", "keyId", keyID, "tokenId", is.ID, "expiresAt", is.ExpiresAt)
	httpedge.WriteJSON(w, http.StatusOK, Response{Token: is.Token, ExpiresAt: is.ExpiresAt.UTC().Format(time.RFC3339)})
	return nil
}

func (h *Handler) issue(w http.ResponseWriter, r *http.Request, keyID string, now time.Time) (token.Issued, error) {
	var body Request
	if r.ContentLength != 0 {
		if err := httpedge.DecodeBody(w, r, &body); err != nil {
			return token.Issued{}, err
		}
	}
	var req token.Request
	if body.TTLSeconds != nil {
		if *body.TTLSeconds < 1 || *body.TTLSeconds > int64(token.MaxLifetime/time.Second) {
			return token.Issued{}, fault.Fieldf("ttlSeconds", "must be a whole number of seconds from 1 up to the deployment's maximum")
		}
		req.TTL = time.Duration(*body.TTLSeconds) * time.Second
	}
	if body.Scopes != nil {
		req.Scopes = append([]string{}, *body.Scopes...) // [] grants no scope, not all
	}
	k, err := h.o.Keys.Get(r.Context(), keyID)
	if fault.Is(err, fault.NotFound) {
		return token.Issued{}, problem(http.StatusUnauthorized, gateway.UnknownKey, "", "the API key is not known")
	}
	if err != nil {
		return token.Issued{}, err
	}
	switch st := k.StatusAt(now); st {
	case key.Active:
	case key.Disabled, key.Revoked, key.Expired, key.NotYetValid:
		return token.Issued{}, problem(http.StatusForbidden, gateway.Reason(st), "", "the API key is "+strings.ReplaceAll(string(st), "_", " "))
	default:
		return token.Issued{}, fault.Errorf(fault.Internal, "key state %q", st)
	}
	ok, until, err := h.o.Exchanges.CountTokenExchange(r.Context(), keyID, now, h.o.ExchangesPerMinute)
	if err != nil {
		return token.Issued{}, err
	}
	if !ok {
		p := httpedge.NewProblem(http.StatusTooManyRequests, string(gateway.RateLimited), "",
			"this key has had its token exchanges for this minute; retry after Retry-After, and reuse a token until it expires")
		p.RetryAfterSeconds = max(int((until.Sub(now)+time.Second-1)/time.Second), 1)
		return token.Issued{}, p
	}
	is, err := h.o.Issuer.Issue(r.Context(), k, req, now)
	if errors.Is(err, token.ErrScope) {
		return token.Issued{}, problem(http.StatusForbidden, gateway.InsufficientScope, "scopes", "a token can only carry scopes the key has")
	}
	return is, err
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) error {
	keys, err := h.o.Ring.Published(r.Context(), h.o.Now())
	if err != nil {
		return err
	}
	doc := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: make([]json.RawMessage, 0, len(keys))}
	for _, k := range keys {
		if j, _, err := token.DecodeJWK(k.JWK); err == nil && j.Kid == k.KID {
			b, _ := json.Marshal(j) // re-encoded: only the public members ever leave
			doc.Keys = append(doc.Keys, b)
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", JWKSCacheControl)
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
