package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

// Key is a key as the admin API returns it (wire.Key: the plaintext, in
// Key, only in the response to the create or rotate that issued it; the
// console shows it once and keeps it nowhere), with the state the console
// shows.
type Key struct {
	apiKey
	// State is the badge: the wire status, or "not yet valid" for an
	// active key whose notBefore lies ahead (the wire says active).
	State string `json:"-"`
}

// apiKey names wire.Key for embedding, so that Key.Key stays the
// plaintext.
type apiKey = wire.Key

// LimitRow is a rate limit with its open window as the admin API reports
// it (GET /v1/keys/{id}); Window is nil where the API said nothing (a key
// from a listing).
type LimitRow struct {
	key.RateLimit
	Window *wire.Window
}

// LimitRows pairs each rate limit with its open window, for the key page.
func (k *Key) LimitRows() []LimitRow {
	rows := make([]LimitRow, len(k.RateLimits))
	for i, l := range k.RateLimits {
		rows[i].RateLimit = l
		if k.Current != nil && i < len(k.Current.RateLimits) && k.Current.RateLimits[i].Name == l.Name {
			rows[i].Window = &k.Current.RateLimits[i]
		}
	}
	return rows
}

// stateAt sets k.State for the instant now.
func (k *Key) stateAt(now time.Time) {
	k.State = string(k.Status)
	if k.Status == key.Active && k.NotBefore != nil {
		if t, err := time.Parse(time.RFC3339, *k.NotBefore); err == nil && now.Before(t) {
			k.State = "not yet valid"
		}
	}
}

// Problem is what went wrong with an admin API call: the API's RFC 9457
// problem (Field names the offending wire field), or, with Status 0, no
// answer at all.
type Problem struct {
	Status int
	Code   string
	Field  string
	Detail string
}

// Error is the message shown to the admin.
func (p *Problem) Error() string { return p.Detail }

// problemBody is an error body: the admin API's problem, or API Gateway's
// own {"message": ...}.
type problemBody struct {
	Title   string `json:"title"`
	Detail  string `json:"detail"`
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// call sends one request and decodes a 2xx JSON answer into out (when not
// nil); anything else is a Problem. It returns the response for its
// headers.
func (c *Console) call(ctx context.Context, req Request, out any) (*Response, *Problem) {
	resp, err := c.o.API.Do(ctx, req)
	if err != nil {
		return nil, &Problem{Detail: "no answer from the admin API: " + err.Error()}
	}
	if resp.Status/100 != 2 {
		var b problemBody
		_ = json.Unmarshal(resp.Body, &b)
		p := &Problem{Status: resp.Status, Code: b.Code, Field: b.Field, Detail: firstOf(b.Detail, b.Message, b.Title)}
		if p.Detail == "" {
			p.Detail = http.StatusText(resp.Status)
		}
		switch resp.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			p.Detail = "the admin API refused the console's credentials (" + p.Detail +
				"): check your AWS credentials and that your principal may call execute-api:Invoke on this API"
		case http.StatusPreconditionFailed:
			p.Detail = "the key changed since this page was loaded: reload the page to see its current settings, then try again"
		}
		return resp, p
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return resp, &Problem{Status: resp.Status, Detail: "the admin API answered with unexpected JSON: is the API URL the keygate admin API?"}
		}
	}
	return resp, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// getKey reads one key.
func (c *Console) getKey(ctx context.Context, id string) (*Key, *Problem) {
	var k Key
	if _, p := c.call(ctx, Request{Method: http.MethodGet, Path: wire.KeyPath(id, "")}, &k); p != nil {
		return nil, p
	}
	k.stateAt(c.o.Now())
	return &k, nil
}

// keyPage is a page of an owner's keys.
type keyPage struct {
	Keys       []Key  `json:"keys"`
	NextCursor string `json:"nextCursor"`
}

// listKeys reads one page of an owner's keys (status "" for all).
func (c *Console) listKeys(ctx context.Context, owner, status, cursor string, limit int) (*keyPage, *Problem) {
	q := url.Values{"ownerId": {owner}, "limit": {strconv.Itoa(limit)}}
	if status != "" {
		q.Set("status", status)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p keyPage
	if _, prob := c.call(ctx, Request{Method: http.MethodGet, Path: "/v1/keys", Query: q}, &p); prob != nil {
		return nil, prob
	}
	now := c.o.Now()
	for i := range p.Keys {
		p.Keys[i].stateAt(now)
	}
	return &p, nil
}

// parallel is how many admin API requests a page has in flight at once
// when it needs one per key.
const parallel = 8

// inParallel calls f(0) .. f(n-1), parallel at a time, and waits for all.
func inParallel(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// withLastUsed fills in each key's lastUsedAt, which listings leave out: the
// owner index carries no attribute that a verification writes (see
// schema.ListedAttributes), so it is read from each key. A key that cannot
// be read keeps what the listing said.
func (c *Console) withLastUsed(ctx context.Context, keys []Key) {
	inParallel(len(keys), func(i int) {
		if keys[i].LastUsedAt != "" {
			return
		}
		if k, p := c.getKey(ctx, keys[i].ID); p == nil {
			keys[i].LastUsedAt = k.LastUsedAt
		}
	})
}

// usage is a key's usage per day (GET /v1/keys/{id}/usage).
type usage struct {
	KeyID string `json:"keyId"`
	From  string `json:"from"`
	To    string `json:"to"`
	Total int64  `json:"total"`
	Days  []struct {
		Date  string `json:"date"`
		Count int64  `json:"count"`
	} `json:"days"`
}

// keyUsage reads a key's usage for the UTC days from..to.
func (c *Console) keyUsage(ctx context.Context, id string, from, to time.Time) (*usage, *Problem) {
	q := url.Values{"from": {from.Format(time.DateOnly)}, "to": {to.Format(time.DateOnly)}}
	var u usage
	if _, p := c.call(ctx, Request{Method: http.MethodGet, Path: wire.KeyPath(id, "/usage"), Query: q}, &u); p != nil {
		return nil, p
	}
	return &u, nil
}

// AuditRecord is one entry of a key's audit trail.
type AuditRecord struct {
	At      string         `json:"at"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Version int64          `json:"version"`
	Changes map[string]any `json:"changes"`
}

// maxAuditPages bounds how much of a trail the key page reads.
const maxAuditPages = 10

// audit reads a key's audit trail, newest first; more is true when the
// trail is longer than what was read.
func (c *Console) audit(ctx context.Context, id string) (recs []AuditRecord, more bool, p *Problem) {
	cursor := ""
	for range maxAuditPages {
		q := url.Values{"limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Records    []AuditRecord `json:"records"`
			NextCursor string        `json:"nextCursor"`
		}
		if _, p := c.call(ctx, Request{Method: http.MethodGet, Path: wire.KeyPath(id, "/audit"), Query: q}, &page); p != nil {
			return nil, false, p
		}
		recs = append(recs, page.Records...)
		if page.NextCursor == "" || page.NextCursor == cursor {
			cursor = ""
			break
		}
		cursor = page.NextCursor
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs, cursor != "", nil
}

// newIdempotencyKey returns a random Idempotency-Key for a create or rotate
// form, so that submitting it twice issues one key, not two.
func newIdempotencyKey() string { return "console-" + randomToken() }
