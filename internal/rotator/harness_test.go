package rotator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/admintest"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/leaktest"
	"github.com/keygate/keygate/internal/logtest"
	"github.com/keygate/keygate/internal/rotator"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

const alice = "arn:aws:iam::123456789012:user/alice"

// t0 is the tests' start of time. It is the real time (whole seconds), not
// a fixed date: DynamoDB Local deletes items whose ttl has passed in real
// time, so TTLs computed from a date in the past (an idempotency record's
// day) would vanish under a test.
var t0 = time.Now().UTC().Truncate(time.Second)

// env is the rotator over a fresh DynamoDB Local table: the issuer's admin
// API to issue keys, the rotate route, and the scheduled run, sharing one
// settable clock, captured events and captured logs (admintest.Env).
type env struct {
	*admintest.Env
	t       *testing.T
	db      *dynamodb.Client
	table   string
	store   *store.Store
	issuer  http.Handler
	rotate  http.Handler
	sweeper *rotator.Sweeper
	handler func(context.Context, json.RawMessage) (any, error)
	hasher  *apikey.Hasher
	logs    *logtest.Buffer

	mu     sync.Mutex
	plains []string // every plaintext key handed out
}

func newEnv(t *testing.T, policy rotator.Policy) *env {
	t.Helper()
	a := admintest.New(t, t0, "pepper")
	e := &env{Env: a, t: t, db: a.DB, table: a.Table, store: a.Store, hasher: a.Hasher, logs: a.Logs}
	o := a.Options
	o.MaxTTL = time.Hour
	e.issuer = adminapi.New(o)
	rot := adminapi.NewRotator(o, policy.MaxGrace)
	e.rotate = rot
	e.sweeper = &rotator.Sweeper{Store: e.store, Policy: policy, Publisher: o.Publisher, Logger: o.Logger, Now: e.clock, PageSize: 5,
		SigningKeys: token.NewKeyring(e.store, &token.LocalBackend{}, 0)}
	e.handler = rotator.Handler(e.sweeper, rot, time.Minute)
	return e
}

func (e *env) clock() time.Time { return e.Clock() }
func (e *env) set(t time.Time)  { e.Set(t) }

// policy is the default policy with overrides for tests.
func policy() rotator.Policy {
	return rotator.DefaultPolicy()
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(h http.Handler, method, path, body string, hdr ...string) response {
	e.t.Helper()
	w := admintest.Serve(h, alice, method, path, body, hdr...)
	resp := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &resp.body)
	if k, ok := resp.body["key"].(string); ok {
		e.mu.Lock()
		e.plains = append(e.plains, k)
		e.mu.Unlock()
	}
	return resp
}

// issue issues a key through the issuer's API and returns its id.
func (e *env) issue(body string) string {
	e.t.Helper()
	r := e.do(e.issuer, "POST", "/v1/keys", body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("issue: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string)
}

func (e *env) get(id string) *key.Key {
	e.t.Helper()
	k, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return k
}

// use records a use of the key at the current time, as the authorizer's
// verifying UpdateItem does (lastUsedAt and the day's usage count).
func (e *env) use(id string) {
	e.t.Helper()
	k := e.get(id)
	now := e.clock()
	_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(e.table), Key: store.ItemKey(store.KeyPK(k.Hash), "KEY"),
		UpdateExpression:         aws.String("SET lastUsedAt = :now ADD #u.#d :one"),
		ExpressionAttributeNames: map[string]string{"#u": "usage", "#d": now.Format(time.DateOnly)},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":now": &ddb.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":one": &ddb.AttributeValueMemberN{Value: "1"},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// item returns a raw item's attribute, for TTL checks.
func (e *env) ttlOf(pk, sk string) int64 {
	e.t.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: store.ItemKey(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	n, ok := out.Item["ttl"].(*ddb.AttributeValueMemberN)
	if !ok {
		return 0
	}
	v, _ := strconv.ParseInt(n.Value, 10, 64)
	return v
}

// counts returns the number of events per key id and type.
func (e *env) counts() map[string]map[string]int {
	c := map[string]map[string]int{}
	for _, ev := range e.Events() {
		if c[ev.KeyID] == nil {
			c[ev.KeyID] = map[string]int{}
		}
		c[ev.KeyID][ev.Type]++
	}
	return c
}

// checkNoPlaintext looks for every plaintext key handed out, and for any
// run of leaktest.MinRun characters of its secret, in the whole table, the
// events and the logs.
func (e *env) checkNoPlaintext() {
	e.t.Helper()
	evs, _ := json.Marshal(e.Events())
	e.mu.Lock()
	plains := append([]string(nil), e.plains...)
	e.mu.Unlock()
	if len(plains) == 0 {
		e.t.Fatal("no plaintext was handed out: the check proves nothing")
	}
	places := map[string]string{
		"table":  dynamotest.Dump(e.t, e.db, e.table),
		"events": string(evs),
		"logs":   e.logs.String(),
	}
	leaktest.Check(e.t, places, plains...)
}
