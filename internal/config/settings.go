package config

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/schema"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/verify"
)

// This file is the registry: one declaration per setting, in the order of
// the configuration table. Functions are named as internal/gateway names
// them; a setting read by a function must list it (TestFunctionsReadWhatTheRegistrySays
// holds that).

const (
	fnAuthorizer = gateway.FnAuthorizer
	fnIssuer     = gateway.FnIssuer
	fnRotator    = gateway.FnRotator
	fnTokens     = gateway.FnTokens
	fnUsage      = gateway.FnUsage
)

const day = 24 * time.Hour

// LogRetentionDays are the retentions CloudWatch Logs allows, in days.
var LogRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

var (
	everyFunction = []string{fnAuthorizer, fnIssuer, fnRotator, fnTokens, fnUsage}
	// hashing are the functions that hash keys: they verify or issue them.
	hashing = []string{fnAuthorizer, fnIssuer, fnRotator}
	// admin are the functions that serve the admin API.
	admin = []string{fnIssuer, fnRotator}
	// signing are the functions that hold token signing keys.
	signing = []string{fnTokens, fnRotator}
)

// Shared by the functions.
var (
	// Table is the table every function uses.
	Table = text(Setting{
		Env: "KEYGATE_TABLE", Functions: everyFunction, Origin: ByStack,
		Doc: "the DynamoDB table",
	}, schema.DefaultTableName, "table name", nil)

	// DynamoDBEndpoint points the functions at DynamoDB Local.
	DynamoDBEndpoint = text(Setting{
		Env: "KEYGATE_DYNAMODB_ENDPOINT", Functions: everyFunction, Origin: LocalOnly,
		Doc:   "DynamoDB Local's URL: the functions use it, with dummy credentials, instead of AWS",
		unset: "AWS",
	}, "", "http(s) URL", httpURL)

	// KeyPrefix names the deployment in every key.
	KeyPrefix = parsed(Setting{
		Env: "KEYGATE_KEY_PREFIX", Context: "keyPrefix", Functions: hashing,
		Doc: "the deployment's name at the start of every key (`kg_sk_live_...`), so a leak scan recognises its keys",
	}, mustFormat(""), apikey.DefaultPrefix, "1 to 10 lowercase letters or digits, starting with a letter", func(v string) (apikey.Format, error) {
		return apikey.NewFormat(v)
	})

	// Environments are the key environments the deployment accepts.
	Environments = parsed(Setting{
		Env: "KEYGATE_ENVIRONMENTS", Context: "environments", Functions: hashing,
		Doc: "the key environments this deployment issues and accepts",
	}, []key.Environment{key.Live, key.Test}, "live,test", "`live`, `test` or `live,test`", parseEnvironments)

	// Pepper keys the hash of every key.
	Pepper = parsed(Setting{
		Env: "KEYGATE_PEPPER", Functions: hashing, Origin: ByStack,
		Doc: "keys the HMAC-SHA-256 of every key, so that a copy of the table alone cannot confirm a guessed key. " +
			"Deployed: a Secrets Manager secret generated at the first deploy, passed by dynamic reference; " +
			"under `make dev`: generated once into `.local/secrets.json`",
		unset: "plain SHA-256", noEcho: true,
	}, []byte(nil), "", "secret text", func(v string) ([]byte, error) { return []byte(v), nil })

	// EventBus receives the lifecycle events.
	EventBus = text(Setting{
		Env: "KEYGATE_EVENT_BUS", Functions: admin, Origin: ByStack,
		Doc:   "the EventBridge bus for lifecycle events",
		unset: "events are logged",
	}, "", "bus name", nil)
)

// Read by the authorizer.
var (
	// CacheTTL is how long the authorizer trusts a cached key record.
	CacheTTL = duration(Setting{
		Env: "KEYGATE_CACHE_TTL", Context: "keyCacheTtl", Functions: []string{fnAuthorizer},
		Doc: "how long the authorizer trusts a key record it read: the longest a revocation, a disable or a limit change takes to bite",
	}, verify.DefaultCacheTTL, span{min: time.Millisecond, max: time.Hour})

	// NegativeCacheTTL is how long an unknown key is refused without a call.
	NegativeCacheTTL = duration(Setting{
		Env: "KEYGATE_NEGATIVE_CACHE_TTL", Functions: []string{fnAuthorizer},
		Doc: "how long a key found unknown is refused without asking DynamoDB",
	}, verify.DefaultNegativeTTL, span{min: time.Millisecond, max: time.Hour})

	// CacheSize bounds the authorizer's key cache.
	CacheSize = integer(Setting{
		Env: "KEYGATE_CACHE_SIZE", Functions: []string{fnAuthorizer},
		Doc: "the most keys one authorizer environment caches",
	}, verify.DefaultCacheSize, 1, 10_000_000)

	// Routes is the authorizer's route table.
	Routes = parsed(Setting{
		Env: "KEYGATE_ROUTES", Context: "routes", Functions: []string{fnAuthorizer},
		Doc:   "the route table: the scopes and the cost of each method and path (see [Routes](verification.md#routes))",
		unset: "no scopes required, cost 1",
	}, verify.Routes(nil), "", "JSON list of `{method, path, scopes, cost}`", verify.ParseRoutes)

	// Unmatched is what a request matching no route needs.
	Unmatched = parsed(Setting{
		Env: "KEYGATE_UNMATCHED", Context: "unmatched", Functions: []string{fnAuthorizer},
		Doc: "what a request that matches no route needs: `allow` (a valid key, no scope), `deny` (refused as `route_not_allowed`) " +
			"or a list of scopes (see [Routes](verification.md#routes))",
	}, verify.Unmatched{}, "allow", "`allow`, `deny` or comma-separated scopes", verify.ParseUnmatched)

	// BasePath is stripped from request paths before route matching.
	BasePath = parsed(Setting{
		Env: "KEYGATE_BASE_PATH", Context: "routeBasePath", Functions: []string{fnAuthorizer},
		Doc: "a path prefix the authorizer strips before matching routes: the base path of a custom domain's API mapping, " +
			"which a REST API leaves in the path it passes (see [Routes](verification.md#routes))",
		unset: "none",
	}, "", "", "a canonical path such as `/payments`", verify.ParseBasePath)

	// KeyQueryParam is a query parameter that may carry the key.
	KeyQueryParam = text(Setting{
		Env: "KEYGATE_KEY_QUERY_PARAM", Functions: []string{fnAuthorizer},
		Doc:   "a query parameter that may carry the key; the proxy drops it before the upstream",
		unset: "headers only",
	}, "", "query parameter name", nil)

	// StoreTimeout is the DynamoDB deadline of one verification: well under
	// API Gateway's 10 s limit for an authorizer, so that a slow store is a
	// clean 503 from us rather than a gateway timeout.
	StoreTimeout = duration(Setting{
		Env: "KEYGATE_STORE_TIMEOUT", Functions: []string{fnAuthorizer},
		Doc: "the DynamoDB deadline of one verification; past it the request is refused as `unavailable`",
	}, verify.DefaultStoreTimeout, span{min: time.Millisecond, max: 5 * time.Second})

	// ServeStale bounds serve-stale: an outage longer than this fails
	// closed.
	ServeStale = duration(Setting{
		Env: "KEYGATE_SERVE_STALE", Functions: []string{fnAuthorizer},
		Doc: "while DynamoDB is unavailable (not throttling), admit keys admitted within this long, uncounted (see [Serve-stale](verification.md#serve-stale))",
	}, 0, span{min: time.Millisecond, max: 15 * time.Minute, off: true})

	// ReserveInterval sizes the reservations of hot keys.
	ReserveInterval = duration(Setting{
		Env: "KEYGATE_RESERVE_INTERVAL", Functions: []string{fnAuthorizer},
		Doc: "how much of a hot key's traffic in one authorizer environment one reservation covers, so about how often that environment writes the key's item; " +
			"`0` turns reservations off: every admission is one write (see [Limits at scale](verification.md#limits-at-scale))",
	}, verify.DefaultReserveInterval, span{min: 10 * time.Millisecond, max: 10 * time.Second, off: true})

	// ReportInterval bounds how long usage admitted from a reservation
	// waits for a write.
	ReportInterval = duration(Setting{
		Env: "KEYGATE_REPORT_INTERVAL", Functions: []string{fnAuthorizer},
		Doc: "the longest usage admitted from a reservation waits in a running authorizer environment before a write records it: what an environment that crashes can lose",
	}, verify.DefaultReportInterval, span{min: 100 * time.Millisecond, max: time.Minute})

	// LogLevel is the authorizer's lowest log level.
	LogLevel = parsed(Setting{
		Env: "AWS_LAMBDA_LOG_LEVEL", Functions: []string{fnAuthorizer}, Origin: ByLambda,
		Doc: "the lowest level logged, from the function's log level setting; allowed requests are logged at DEBUG",
	}, slog.LevelInfo, "INFO", "`DEBUG`, `INFO`, `WARN` or `ERROR`", func(v string) (slog.Level, error) {
		var l slog.Level
		if l.UnmarshalText([]byte(v)) != nil {
			return 0, errors.New("must be DEBUG, INFO, WARN or ERROR")
		}
		return l, nil
	})

	// TokenIssuer is the iss of access tokens.
	TokenIssuer = text(Setting{
		Env: "KEYGATE_TOKEN_ISSUER", Functions: []string{fnAuthorizer, fnTokens},
		Doc: "the `iss` of access tokens",
	}, token.DefaultIssuer, "text", nil)

	// TokenAudience is the aud of access tokens.
	TokenAudience = text(Setting{
		Env: "KEYGATE_TOKEN_AUDIENCE", Functions: []string{fnAuthorizer, fnTokens},
		Doc: "the `aud` of access tokens",
	}, token.DefaultAudience, "text", nil)
)

// Read by the admin API (the issuer, and the rotator's rotate route).
var (
	// CursorSecret signs list cursors.
	CursorSecret = parsed(Setting{
		Env: "KEYGATE_CURSOR_SECRET", Functions: admin,
		Doc:   "signs list and audit cursors (through its own HKDF label), so a client can neither forge nor alter one",
		unset: "the pepper", noEcho: true,
	}, []byte(nil), "", "secret text", func(v string) ([]byte, error) { return []byte(v), nil })

	// SealKey is the KMS key that seals stored idempotent responses.
	SealKey = text(Setting{
		Env: "KEYGATE_SEAL_KEY", Functions: admin, Origin: ByStack,
		Doc: "the symmetric KMS key that seals the stored responses of idempotent issues and rotations (which hold the new key), " +
			"by envelope encryption; its key policy lets only the issuer and the rotator decrypt (see [Security](security.md))",
		unset: "`KEYGATE_SEAL_LOCAL_KEY`, else a key of each process",
	}, "", "KMS key id or ARN", nil)

	// SealLocalKey seals stored idempotent responses in the local stack.
	SealLocalKey = parsed(Setting{
		Env: "KEYGATE_SEAL_LOCAL_KEY", Functions: admin, Origin: LocalOnly,
		Doc:   "the local stack's key that seals the stored responses of idempotent requests, instead of KMS (generated once into `.local/secrets.json`)",
		unset: "none", noEcho: true,
	}, []byte(nil), "", "64 hex digits", func(v string) ([]byte, error) {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 32 {
			return nil, errors.New("must be 64 hex digits (32 bytes)")
		}
		return b, nil
	})

	// RevokedRetention keeps revoked keys before DynamoDB's TTL deletes them.
	RevokedRetention = duration(Setting{
		Env: "KEYGATE_REVOKED_RETENTION", Functions: admin,
		Doc: "how long a revoked key's record is kept (for its audit trail and a clear `revoked` denial) before DynamoDB's TTL deletes it",
	}, 90*day, span{min: day, max: 3650 * day})

	// MaxKeyTTL caps ttlSeconds of session keys.
	MaxKeyTTL = duration(Setting{
		Env: "KEYGATE_MAX_KEY_TTL", Functions: admin,
		Doc: "the longest `ttlSeconds` an issued (session) key may ask for",
	}, day, span{min: time.Second, max: 366 * day, step: time.Second})
)

// Read by the rotator.
var (
	// ExpiringNotice is how long before its expiry a key gets key.expiring.
	ExpiringNotice = duration(Setting{
		Env: "KEYGATE_EXPIRING_NOTICE", Functions: []string{fnRotator},
		Doc: "how long before its expiry a key gets a `key.expiring` event",
	}, 7*day, span{min: time.Hour, max: 365 * day, off: true})

	// MaxKeyAge is the longest a key may live from its creation.
	MaxKeyAge = duration(Setting{
		Env: "KEYGATE_MAX_KEY_AGE", Functions: []string{fnRotator},
		Doc: "the longest a key may live from its creation: an older key is expired (an admin can extend it on purpose)",
	}, 0, span{min: time.Hour, max: 3650 * day, off: true})

	// IdleAfter is how long a key may go unused before key.idle.
	IdleAfter = duration(Setting{
		Env: "KEYGATE_IDLE_AFTER", Functions: []string{fnRotator},
		Doc: "how long a key may go unused (since its last use, or its creation) before a `key.idle` event",
	}, 90*day, span{min: time.Hour, max: 3650 * day, off: true})

	// IdleAction is what the scheduled run does with an idle key.
	IdleAction = oneOf(Setting{
		Env: "KEYGATE_IDLE_ACTION", Functions: []string{fnRotator},
		Doc: "what the scheduled run does with an idle key: send `key.idle`, or also disable it",
	}, "notify", "notify", "disable")

	// ExpiredRetention keeps expired keys before DynamoDB's TTL deletes them.
	ExpiredRetention = duration(Setting{
		Env: "KEYGATE_EXPIRED_RETENTION", Functions: []string{fnRotator},
		Doc: "how long an expired key is kept (for its audit trail and a clear `expired` denial) before DynamoDB's TTL deletes it",
	}, 90*day, span{min: day, max: 3650 * day})

	// RotatorMaxRun caps the time budget of one scheduled run.
	RotatorMaxRun = duration(Setting{
		Env: "KEYGATE_ROTATOR_MAX_RUN", Functions: []string{fnRotator},
		Doc: "the longest one scheduled run works (it is also bounded by the invocation's deadline); what it leaves is done by the next",
	}, 4*time.Minute, span{min: time.Second, max: 15 * time.Minute})

	// MaxGrace caps gracePeriodSeconds of a rotation.
	MaxGrace = duration(Setting{
		Env: "KEYGATE_MAX_GRACE", Functions: []string{fnRotator},
		Doc: "the longest `gracePeriodSeconds` a rotation may give the old key",
	}, 7*day, span{min: time.Second, max: 90 * day, step: time.Second})
)

// Read by the usage consumer.
var (
	// UsageRetention keeps usage history.
	UsageRetention = duration(Setting{
		Env: "KEYGATE_USAGE_RETENTION", Functions: []string{fnUsage},
		Doc: "how long usage history (per key and per owner, per UTC day) is kept after its day ends; DynamoDB's TTL deletes older days",
	}, 400*day, span{min: 31 * day, max: 3650 * day})
)

// Read by the token function (and the rotator, which rotates signing keys).
var (
	// SigningKey lists the KMS keys that sign access tokens.
	SigningKey = parsed(Setting{
		Env: "KEYGATE_SIGNING_KEY", Functions: signing, Origin: ByStack,
		Doc: "the KMS key that signs access tokens (an `ECC_NIST_EDWARDS25519` key: its id, ARN or alias ARN), " +
			"or several, comma separated: a rotation moves to one no published key uses",
		unset: "local keys (`KEYGATE_SIGNING_DIR`)",
	}, []string(nil), "", "comma-separated KMS key ids or ARNs", func(v string) ([]string, error) {
		var keys []string
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
		return keys, nil
	})

	// SigningDir holds the local stack's token signing keys.
	SigningDir = text(Setting{
		Env: "KEYGATE_SIGNING_DIR", Functions: signing, Origin: LocalOnly,
		Doc:   "where the local stack keeps its Ed25519 token signing keys (PEM, PKCS #8, mode 0600), when no KMS key is set",
		unset: "none (`.local/signing` under `make dev`)",
	}, "", "directory", nil)

	// SigningKeyRotation is how long a signing key signs before the next.
	SigningKeyRotation = duration(Setting{
		Env: "KEYGATE_SIGNING_KEY_ROTATION", Functions: signing,
		Doc: "how long a token signing key signs before the next one takes over",
	}, token.DefaultRotation, span{min: time.Hour, max: 366 * day})

	// TokenTTL is a token's lifetime when the request names none.
	TokenTTL = duration(Setting{
		Env: "KEYGATE_TOKEN_TTL", Functions: []string{fnTokens},
		Doc: "an access token's lifetime when the request names none (at most `KEYGATE_TOKEN_MAX_TTL`)",
	}, token.DefaultTTL, span{min: time.Minute, max: token.MaxLifetime})

	// TokenExchanges bounds one key's token exchanges per minute.
	TokenExchanges = integer(Setting{
		Env: "KEYGATE_TOKEN_EXCHANGES_PER_MINUTE", Functions: []string{fnTokens},
		Doc: "the most tokens one key may be exchanged for in a minute (each is a KMS `Sign` call); past it, `429 rate_limited` with `Retry-After`",
	}, token.DefaultExchangesPerMinute, 1, 100_000)

	// TokenMaxTTL is the longest lifetime a request may ask for.
	TokenMaxTTL = duration(Setting{
		Env: "KEYGATE_TOKEN_MAX_TTL", Functions: []string{fnTokens},
		Doc: "the longest lifetime a token request may ask for",
	}, token.DefaultMaxTTL, span{min: time.Minute, max: token.MaxLifetime})
)

// Read by the CDK stack (and those marked Gateway by the local gateway).
var (
	// UpstreamURL is the API the protected proxy forwards to.
	UpstreamURL = parsed(Setting{
		Context: "upstreamUrl",
		Doc:     "the API the protected proxy forwards to, with the authorizer's context as headers",
		unset:   "no proxy routes: the stack serves only keygate's own API",
		format:  func(v string) string { return strings.TrimRight(v, "/") },
	}, "", "", "absolute http(s) URL without a query", func(v string) (string, error) {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			return "", errors.New("is not an absolute http(s) URL without a query")
		}
		return strings.TrimRight(v, "/"), nil
	})

	// ProxyBasePath is the path the proxy is mounted under.
	ProxyBasePath = parsed(Setting{
		Context: "proxyBasePath",
		Doc:     "the path the protected proxy is mounted under",
		format:  func(v string) string { return strings.Trim(v, "/") },
	}, gateway.DefaultProxyBase, gateway.DefaultProxyBase, "one path segment other than `v1` and `.well-known`", func(v string) (string, error) {
		p := strings.Trim(v, "/")
		if p == "" || strings.ContainsAny(p, "/{}") || p == "v1" || p == ".well-known" {
			return "", errors.New("must be one path segment other than v1 and .well-known")
		}
		return p, nil
	})

	// CORSAllowOrigins are the origins the protected proxy's CORS allows.
	CORSAllowOrigins = parsed(Setting{
		Env: "KEYGATE_CORS_ALLOW_ORIGINS", Context: "corsAllowOrigins", Gateway: true,
		Doc: "the origins browsers may call the protected proxy from (CORS): preflights are answered without the authorizer " +
			"and denials carry `Access-Control-Allow-Origin` (see [CORS](clients.md#cors))",
		unset: "CORS off",
	}, []string(nil), "", "`*` or comma-separated origins such as `https://app.example.com`", gateway.ParseCORSOrigins)

	// CORSAllowMethods are the methods a preflight allows.
	CORSAllowMethods = parsed(Setting{
		Env: "KEYGATE_CORS_ALLOW_METHODS", Context: "corsAllowMethods", Gateway: true,
		Doc: "the methods a CORS preflight allows",
	}, gateway.DefaultCORSMethods, strings.Join(gateway.DefaultCORSMethods, ","), "comma-separated methods", gateway.ParseTokens)

	// CORSAllowHeaders are the request headers a preflight allows.
	CORSAllowHeaders = parsed(Setting{
		Env: "KEYGATE_CORS_ALLOW_HEADERS", Context: "corsAllowHeaders", Gateway: true,
		Doc: "the request headers a CORS preflight allows; `x-api-key` and `Authorization` are always allowed",
	}, gateway.DefaultCORSHeaders, strings.Join(gateway.DefaultCORSHeaders, ","), "comma-separated header names", gateway.ParseTokens)

	// CORSMaxAge is how long a browser caches a preflight's answer.
	CORSMaxAge = duration(Setting{
		Env: "KEYGATE_CORS_MAX_AGE", Context: "corsMaxAge", Gateway: true,
		Doc: "how long a browser may cache a CORS preflight's answer",
	}, gateway.DefaultCORSMaxAge, span{min: time.Second, max: 2 * time.Hour, step: time.Second})

	// GatewayCacheTTL is API Gateway's authorizer result cache.
	GatewayCacheTTL = duration(Setting{
		Context: "gatewayCacheTtl",
		Doc: "API Gateway's authorizer result cache: above 0 a cached request skips the authorizer, " +
			"so its limits, quota, usage counting and per-request checks (see [Caches](verification.md#caches-and-how-long-a-change-takes-to-bite))",
	}, 0, span{min: time.Second, max: time.Hour, step: time.Second, off: true})

	// LogRetention is how long function and access logs are kept.
	LogRetention = parsed(Setting{
		Context: "logRetention",
		Doc:     "how long the function and access logs are kept",
	}, 30*day, "30d", "a CloudWatch Logs retention: "+retentionList(), func(v string) (time.Duration, error) {
		d, err := ParseDuration(v)
		if err != nil || d%day != 0 || !slices.Contains(LogRetentionDays, int(d/day)) {
			return 0, errors.New("must be a CloudWatch Logs retention: " + retentionList())
		}
		return d, nil
	})

	// AlarmEmail is subscribed to the alarm topic.
	AlarmEmail = text(Setting{
		Context: "alarmEmail",
		Doc:     "an e-mail address subscribed to the alarm topic",
		unset:   "none",
	}, "", "e-mail address", func(v string) error {
		if !strings.Contains(v, "@") {
			return errors.New("is not an e-mail address")
		}
		return nil
	})

	// RemovalPolicy says whether stateful resources outlive the stack.
	RemovalPolicy = oneOf(Setting{
		Context: "removalPolicy",
		Doc: "`retain`: the table (with deletion protection), the pepper, the signing key, the environment and seal KMS keys, the usage function's failure queue and the logs outlive the stack; " +
			"`destroy`: `cdk destroy` removes everything (throwaway stacks)",
	}, "retain", "retain", "destroy")

	// StageName is the API stage.
	StageName = text(Setting{
		Context: "stageName",
		Doc:     "the API stage",
	}, "prod", "stage name", nil)

	// ThrottleRateLimit is the stage's default throttle.
	ThrottleRateLimit = number(Setting{
		Context: "throttleRateLimit",
		Doc:     "the stage's default throttle, requests per second",
	}, 1000)

	// ThrottleBurstLimit is the stage's default burst.
	ThrottleBurstLimit = number(Setting{
		Context: "throttleBurstLimit",
		Doc:     "the stage's default burst, requests",
	}, 2000)

	// AdminThrottleRateLimit and the next three throttle the admin and token
	// routes apart from the proxy (the stage's default throttle).
	AdminThrottleRateLimit = number(Setting{
		Context: "adminThrottleRateLimit",
		Doc:     "the admin API's throttle (every `/v1/keys` route), requests per second, apart from the proxy's",
	}, 50)

	// AdminThrottleBurstLimit is the admin API's burst.
	AdminThrottleBurstLimit = number(Setting{
		Context: "adminThrottleBurstLimit",
		Doc:     "the admin API's burst, requests",
	}, 100)

	// TokenThrottleRateLimit is the token routes' throttle.
	TokenThrottleRateLimit = number(Setting{
		Context: "tokenThrottleRateLimit",
		Doc:     "the token routes' throttle (`POST /v1/tokens` and the JWKS), requests per second, apart from the proxy's",
	}, 100)

	// TokenThrottleBurstLimit is the token routes' burst.
	TokenThrottleBurstLimit = number(Setting{
		Context: "tokenThrottleBurstLimit",
		Doc:     "the token routes' burst, requests",
	}, 200)

	// WAFRateLimit is the per-IP limit of the web ACL on the stage.
	WAFRateLimit = parsed(Setting{
		Context: "wafRateLimit",
		Doc: "a WAF web ACL on the stage blocks a source IP past this many requests in 5 minutes (the rate-based rule's window), " +
			"before any of them reaches the authorizer; `0` removes the web ACL (see [Deploy](deploy.md#unauthenticated-traffic))",
	}, 3000, "3000", "`0` (no web ACL) or a whole number from 10 to 2000000000", func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || (n != 0 && (n < 10 || n > 2_000_000_000)) {
			return 0, errors.New("must be 0 (no web ACL) or a whole number from 10 to 2000000000")
		}
		return n, nil
	})

	// RotatorSchedule is when the rotator's lifecycle run happens.
	RotatorSchedule = text(Setting{
		Context: "rotatorSchedule",
		Doc:     "when the rotator's scheduled lifecycle run happens",
	}, "rate(1 hour)", "EventBridge `rate(...)` or `cron(...)` expression", func(v string) error {
		if !strings.HasPrefix(v, "rate(") && !strings.HasPrefix(v, "cron(") {
			return errors.New("must be an EventBridge rate(...) or cron(...) expression")
		}
		return nil
	})

	// FunctionEnv sets further variables of the functions.
	FunctionEnv = parsed(Setting{
		Context: "functionEnv",
		Doc: "the functions' other variables, by function: those this table says are set by `keygate:functionEnv`, " +
			"each checked at synth (for example `{\"authorizer\":{\"KEYGATE_SERVE_STALE\":\"5m\"}}`)",
		unset: "none",
	}, map[string]map[string]string(nil), "", "JSON object of function name to variables", parseFunctionEnv)
)

func init() {
	rename("KEYGATE_REVOKED_RETENTION_DAYS", RevokedRetention.s)
	rename("KEYGATE_MAX_TTL_SECONDS", MaxKeyTTL.s)
	rename("KEYGATE_EXPIRING_DAYS", ExpiringNotice.s)
	rename("KEYGATE_MAX_KEY_AGE_DAYS", MaxKeyAge.s)
	rename("KEYGATE_IDLE_DAYS", IdleAfter.s)
	rename("KEYGATE_EXPIRED_RETENTION_DAYS", ExpiredRetention.s)
	rename("KEYGATE_ROTATOR_MAX_RUN_SECONDS", RotatorMaxRun.s)
	rename("KEYGATE_MAX_GRACE_SECONDS", MaxGrace.s)
	rename("logRetentionDays", LogRetention.s)
	rename("KEYGATE_IDEMPOTENCY_SECRET", CursorSecret.s)
}

// CORS reads the protected proxy's CORS policy (the four corsAllow*/
// corsMaxAge settings) from r, for the stack and the local gateway alike.
func CORS(r *Reader) gateway.CORS {
	return gateway.CORS{
		AllowOrigins: CORSAllowOrigins.From(r),
		AllowMethods: CORSAllowMethods.From(r),
		AllowHeaders: CORSAllowHeaders.From(r),
		MaxAge:       CORSMaxAge.From(r),
	}
}

func retentionList() string {
	s := make([]string, len(LogRetentionDays))
	for i, d := range LogRetentionDays {
		s[i] = fmt.Sprintf("%dd", d)
	}
	return strings.Join(s, ", ")
}

func mustFormat(prefix string) apikey.Format {
	f, err := apikey.NewFormat(prefix)
	if err != nil {
		panic(err)
	}
	return f
}

func httpURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http(s) URL such as http://127.0.0.1:8000")
	}
	return nil
}

func parseEnvironments(v string) ([]key.Environment, error) {
	var out []key.Environment
	for _, e := range strings.Split(v, ",") {
		switch env := key.Environment(strings.TrimSpace(e)); env {
		case key.Live, key.Test:
			out = append(out, env)
		default:
			return nil, fmt.Errorf("has unknown environment %q (want live, test or both, comma separated)", strings.TrimSpace(e))
		}
	}
	return out, nil
}

// Functions returns the name of every function some setting is read by:
// every function, as each reads KEYGATE_TABLE.
func Functions() []string { return slices.Clone(everyFunction) }

// parseFunctionEnv reads keygate:functionEnv: each variable must be one this
// registry lets a deployment set (ByFunctionEnv) for a function that reads
// it, and its value must parse.
func parseFunctionEnv(v string) (map[string]map[string]string, error) {
	var m map[string]map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, errors.New(`must be a JSON object such as {"authorizer":{"KEYGATE_SERVE_STALE":"5m"}}`)
	}
	for fn, vars := range m {
		if !slices.Contains(everyFunction, fn) {
			return nil, fmt.Errorf("names unknown function %q (want %s)", fn, strings.Join(everyFunction, ", "))
		}
		for name, value := range vars {
			s := lookupEnv(name)
			switch {
			case s == nil:
				if n, ok := Renamed(name); ok {
					return nil, fmt.Errorf("%s.%s is no longer read: set %s instead", fn, name, n)
				}
				return nil, fmt.Errorf("%s.%s is not a keygate setting", fn, name)
			case !s.ReadBy(fn):
				return nil, fmt.Errorf("%s.%s: the %s function does not read it", fn, name, fn)
			case s.Origin != ByFunctionEnv:
				return nil, fmt.Errorf("%s.%s: the stack sets it itself (see the configuration table)", fn, name)
			}
			if err := s.Check(value); err != nil {
				return nil, fmt.Errorf("%s.%s: %s", fn, name, fault.MessageOf(err))
			}
		}
	}
	return m, nil
}

func lookupEnv(name string) *Setting {
	for _, s := range registry {
		if s.Env == name {
			return s
		}
	}
	return nil
}
