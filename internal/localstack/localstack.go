// Package localstack runs keygate on one machine, with no AWS account: it
// is `make dev` (cmd/keygate-dev only hands it the command line, the
// standard streams and the environment) and what the end-to-end test
// starts.
//
// Run starts DynamoDB Local (data under .local/dynamodb), creates the table
// if it is absent, and serves the local gateway (internal/localgw) on
// 127.0.0.1:$PORT, with every function built in process as its main.go
// builds it, and the echo upstream behind the protected proxy (at the
// stack's proxy path, /api unless cdk.json says otherwise). Settings come
// from cdk.json's keygate:* context, as the stack takes them, under the
// functions' environment variables. It stops everything it
// started when its context ends (Ctrl-C, SIGTERM): the gateway drains, then
// DynamoDB Local gets SIGTERM and time to close its files. The pepper that
// hashes keys and the key that seals idempotent responses are generated
// once and kept in .local/secrets.json, so keys issued in one run keep
// working in the next.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/localgw"
	"github.com/keygate/keygate/internal/localstream"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/usage"
)

// Options configure Start.
type Options struct {
	// Getenv reads the functions' environment (KEYGATE_*), with
	// KEYGATE_DYNAMODB_ENDPOINT pointing at DynamoDB Local.
	Getenv func(string) string
	// Context is the deployment's keygate:* context (cdk.json), by key
	// without the prefix (config.ReadCDKJSON): the functions get the
	// variables the stack would give them from it (a variable set in
	// Getenv wins), the proxy is mounted at its proxyBasePath and the
	// stage is its stageName, unless Stage says otherwise.
	Context map[string]string
	// Port is the gateway's port on 127.0.0.1; 0 picks a free one.
	Port int
	// Stage is the stage name the functions see (default: the context's
	// stageName, as deployed).
	Stage string
	// Upstream is the protected proxy's upstream; nil runs the built-in
	// echo upstream.
	Upstream *url.URL
	// Log receives the gateway's access log and failures.
	Log *slog.Logger
	// FunctionLog receives the functions' own logs and metrics lines.
	FunctionLog io.Writer
	// Schedule is how often the functions the stack runs on a schedule
	// (Scheduled) get their scheduled event; 0 never sends it.
	Schedule time.Duration
}

// Scheduled are the functions the stack also invokes on an EventBridge
// schedule (the rotator's lifecycle sweep, hourly by default).
var Scheduled = []string{gateway.FnRotator}

// Streamed are the functions the stack invokes from the table's stream
// (the usage consumer, through an event source mapping that passes only
// the keys' hot items); the local stack feeds them by polling DynamoDB
// Local's stream (internal/localstream) with the same filter.
var Streamed = []string{gateway.FnUsage}

// Stack is a running local stack without DynamoDB Local (Run and the tests
// manage that).
type Stack struct {
	// URL is the gateway's base URL, http://127.0.0.1:PORT.
	URL string
	// ProxyPath is where the protected proxy is mounted, such as /api.
	ProxyPath string
	// Stage is the stage name the functions see.
	Stage string
	// Table is the table the functions use.
	Table string
	// Format is the format (the prefix) of the keys the functions issue.
	Format apikey.Format

	servers []*http.Server
	gw      *localgw.Gateway
	stop    context.CancelFunc
	// stops end the stream pollers.
	stops []context.CancelFunc
	ticks sync.WaitGroup
}

// Start creates the table if absent, builds one environment of every
// function, starts the echo upstream (unless o.Upstream is set) and serves
// the gateway on 127.0.0.1:o.Port. Close stops it.
func Start(ctx context.Context, o Options) (*Stack, error) {
	// The functions are composed exactly as in Lambda (internal/compose);
	// the environment makes the local differences: tokens are signed with
	// local keys (KEYGATE_SIGNING_DIR), never KMS, and lifecycle events are
	// logged, never sent to an EventBridge bus.
	o.Getenv = overlay(o.Getenv, map[string]string{config.SigningKey.Setting().Env: "", config.EventBus.Setting().Env: ""})
	dep, err := deployment(o.Context)
	if err != nil {
		return nil, err
	}
	if o.Stage == "" {
		o.Stage = dep.stage
	}
	// Every function reads its environment as the stack would set it from
	// the context, under the local one: a variable set in the environment
	// wins, so KEYGATE_ROUTES=... make dev tries a setting out.
	envOf := func(fn string) func(string) string {
		return under(o.Getenv, dep.variables[fn])
	}
	r := config.FromEnv(envOf(gateway.FnAuthorizer))
	table, format, endpoint := config.Table.From(r), config.KeyPrefix.From(r), config.DynamoDBEndpoint.From(r)
	keyParam, signingDir := config.KeyQueryParam.From(r), config.SigningDir.From(r)
	cors := config.CORS(r)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if signingDir == "" {
		return nil, errors.New("configuration: " + config.SigningDir.Setting().Env + " is not set: the local stack keeps its token signing keys there")
	}
	if endpoint == "" {
		return nil, errors.New("configuration: " + config.DynamoDBEndpoint.Setting().Env + " is not set: the local stack runs against DynamoDB Local only")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FunctionLog == nil {
		o.FunctionLog = io.Discard
	}
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := store.EnsureTable(tctx, store.LocalClient(endpoint), table); err != nil {
		return nil, fmt.Errorf("create table %s in DynamoDB Local: %w", table, err)
	}
	s := &Stack{Table: table, Format: format, ProxyPath: "/" + dep.proxyBase, Stage: o.Stage}
	upstream := o.Upstream
	if upstream == nil {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("echo upstream: %w", err)
		}
		echo := localgw.NewServer(localgw.Echo(), o.Log)
		s.serve(echo, l)
		upstream = &url.URL{Scheme: "http", Host: l.Addr().String()}
	}
	gw := localgw.New(localgw.Options{
		Routes:    Routes(dep.proxyBase),
		Functions: Factories(envOf, o.FunctionLog),
		Upstream:  upstream,
		Stage:     o.Stage,
		Logger:    o.Log,
		// The proxy drops the authorizer's key query parameter, as the
		// stack's integration blanks it.
		KeyQueryParam: keyParam,
		CORS:          cors,
	})
	if err := gw.Warm(ctx); err != nil {
		s.Close(ctx)
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		s.Close(ctx)
		return nil, fmt.Errorf("the gateway cannot listen on 127.0.0.1:%d (set PORT to a free port): %w", o.Port, err)
	}
	s.URL = "http://" + l.Addr().String()
	s.gw = gw
	// The stream's pollers first: a stack that answers is a stack that is
	// up, so a signal right after its first answer stops a whole stack.
	if err := s.stream(ctx, gw, endpoint, table, o.Log); err != nil {
		_ = l.Close()
		s.Close(ctx)
		return nil, err
	}
	s.schedule(gw, o.Schedule, o.Log)
	s.serve(localgw.NewServer(loopbackOnly(gw), o.Log), l)
	return s, nil
}

// stream follows the table's stream for each streamed function, until
// Close: a batch the function fails is delivered again, as Lambda does.
func (s *Stack) stream(ctx context.Context, gw *localgw.Gateway, endpoint, table string, log *slog.Logger) error {
	arn, err := localstream.StreamARN(ctx, store.LocalClient(endpoint), table)
	if err != nil {
		return fmt.Errorf("the table's stream: %w", err)
	}
	for _, name := range Streamed {
		if Functions[name] == nil {
			continue
		}
		p := localstream.New(localstream.Client(endpoint), arn, func(ctx context.Context, ev events.DynamoDBEvent) error {
			return gw.InvokeStream(ctx, name, ev)
		}, localstream.Options{Filter: usage.Wanted, Logger: log.With("function", name)})
		pctx, cancel := context.WithCancel(context.Background())
		s.stops = append(s.stops, cancel)
		s.ticks.Add(1)
		go func() {
			defer s.ticks.Done()
			_ = p.Run(pctx)
		}()
	}
	return nil
}

// schedule invokes each scheduled function that the local stack runs every
// period, until Close.
func (s *Stack) schedule(gw *localgw.Gateway, every time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if every <= 0 {
		return
	}
	for _, name := range Scheduled {
		if Functions[name] == nil {
			continue
		}
		s.ticks.Add(1)
		go func() {
			defer s.ticks.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				out, err := gw.InvokeScheduled(ctx, name)
				if err != nil {
					log.Error("scheduled run failed", "function", name, "error", err.Error())
					continue
				}
				log.Info("scheduled run", "function", name, "result", string(out))
			}
		}()
	}
}

// Routes is the local gateway's route table: the stack's own routes and the
// protected proxy under base (the stack's proxyBasePath, "api" by default).
func Routes(base string) []gateway.Route {
	return append(append([]gateway.Route{}, gateway.Routes...), gateway.Proxy(base)...)
}

// deployed is what the local stack takes from the deployment's context.
type deployed struct {
	proxyBase string
	stage     string
	// variables are each function's variables from the context, by
	// function name.
	variables map[string]map[string]string
}

// deployment reads the deployment's context (cdk.json) through the
// settings registry, as the stack reads it: a bad value is an error that
// names its key.
func deployment(ctx map[string]string) (deployed, error) {
	if err := config.CheckContextKeys(ctx); err != nil {
		return deployed{}, fmt.Errorf("cdk.json: %w", err)
	}
	r := config.FromContext(ctx)
	d := deployed{proxyBase: config.ProxyBasePath.From(r), stage: config.StageName.From(r), variables: map[string]map[string]string{}}
	if err := r.Err(); err != nil {
		return deployed{}, fmt.Errorf("cdk.json: %w", err)
	}
	for _, fn := range config.Functions() {
		vars, err := config.FunctionVariables(ctx, fn)
		if err != nil {
			return deployed{}, fmt.Errorf("cdk.json: %w", err)
		}
		d.variables[fn] = vars
	}
	return d, nil
}

// under returns getenv, falling back to base for a variable getenv does
// not set.
func under(getenv func(string) string, base map[string]string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return base[k]
	}
}

func (s *Stack) serve(srv *http.Server, l net.Listener) {
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(l) }()
}

// Close stops the gateway, letting requests in flight finish (up to ctx's
// deadline), then the echo upstream, then shuts the function environments
// down as Lambda does (their SIGTERM work: the authorizer's report of usage
// admitted from reservations).
func (s *Stack) Close(ctx context.Context) {
	if s.stop != nil {
		s.stop()
	}
	for _, stop := range s.stops {
		stop()
	}
	s.ticks.Wait()
	for i := len(s.servers) - 1; i >= 0; i-- {
		if err := s.servers[i].Shutdown(ctx); err != nil {
			_ = s.servers[i].Close()
		}
	}
	s.servers = nil
	if s.gw != nil {
		// As Lambda's SIGTERM: the authorizer reports what it admitted
		// from reservations.
		s.gw.Shutdown(ctx)
		s.gw = nil
	}
}

// loopbackOnly refuses requests whose Host is not a loopback name, so that
// a web page cannot reach the unsigned admin API through DNS rebinding (a
// hostile name that resolves to 127.0.0.1).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hp, _, err := net.SplitHostPort(host); err == nil {
			host = hp
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"the local gateway answers requests to 127.0.0.1 or localhost only"}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}
