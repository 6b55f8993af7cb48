// Package admintest is what the tests of the admin API and of the rotator
// share: an admin API's parts over a fresh DynamoDB Local table (Env), and
// sending a handler a request as an IAM principal, as the admin API's
// adapter (internal/lambdahttp) and the local gateway hand it over.
package admintest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/logtest"
	"github.com/keygate/keygate/internal/seal"
	"github.com/keygate/keygate/internal/store"
)

// Serve sends h a request from the principal who (the request's actor),
// with body as JSON when it is not empty and headers as name, value pairs
// (which may replace the Content-Type), and returns the recorded response.
func Serve(h http.Handler, who, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req.WithContext(actor.With(req.Context(), who)))
	return rec
}

// Env is the parts of an admin API over a fresh DynamoDB Local table, for
// the tests of the admin API and of the rotator: a store with a settable
// clock, and admin API Options whose publisher records every event and
// whose logger writes to Logs.
type Env struct {
	DB     *dynamodb.Client
	Table  string
	Store  *store.Store
	Hasher *apikey.Hasher
	Logs   *logtest.Buffer
	// Options are the admin API's options over Store, at the clock.
	Options adminapi.Options
	// Sealer seals the stored idempotent responses of Options, so that
	// other handlers over the same table (the rotate route) can open them.
	Sealer seal.Sealer

	mu     sync.Mutex
	now    time.Time
	events []lifecycle.Event
}

// New returns an Env whose clock starts at now and whose keys are hashed
// with pepper. The table's list cursors are signed with a fixed secret.
func New(t testing.TB, now time.Time, pepper string) *Env {
	t.Helper()
	db, table := dynamotest.Table(t)
	e := &Env{DB: db, Table: table, now: now, Logs: &logtest.Buffer{}, Hasher: apikey.NewHasher([]byte(pepper))}
	e.Store = store.New(db, table, store.Options{CursorSecret: []byte("cursor"), Now: e.Clock})
	e.Sealer = seal.Random()
	idem := adminapi.NewIdempotency(e.Store, e.Sealer)
	format, _ := apikey.NewFormat("")
	e.Options = adminapi.Options{
		Store: e.Store, Format: format, Hasher: e.Hasher, Idempotency: idem, Now: e.Clock,
		Logger: slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Publisher: lifecycle.PublisherFunc(func(_ context.Context, ev lifecycle.Event) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
			return nil
		}),
	}
	return e
}

// Clock is the Env's time.
func (e *Env) Clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// Set sets the clock.
func (e *Env) Set(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = t
}

// Advance moves the clock on by d.
func (e *Env) Advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// Events returns the events published so far.
func (e *Env) Events() []lifecycle.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]lifecycle.Event(nil), e.events...)
}
