// Package keygatecdk holds keygate's AWS CDK constructs: the whole stack
// (NewKeygateStack) built from small constructs that can each be tested
// alone, and Authorizer, which a team imports to put the keygate authorizer
// in front of its own REST or HTTP API. The app in infra/ only reads the
// settings and calls NewKeygateStack.
package keygatecdk

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
)

// Settings are a deployment's choices. Every field has a context key
// (`cdk.json` or `cdk deploy -c keygate:<name>=<value>`) documented in the
// table in docs/configuration.md; the zero value of a field means its default.
type Settings struct {
	// AssetRoot is the folder holding <function>/bootstrap (default "bin",
	// what `make build` writes). Tests point it at placeholder files.
	AssetRoot string
	// UpstreamURL is the API the protected proxy forwards to. Empty means no
	// proxy routes: the stack then serves only keygate's own API.
	UpstreamURL string // keygate:upstreamUrl
	// ProxyBasePath is the path the proxy is mounted under (default "api").
	ProxyBasePath string // keygate:proxyBasePath
	// KeyPrefix names the deployment in every key (default "kg").
	KeyPrefix string // keygate:keyPrefix
	// Environments are the key environments accepted (default "live,test").
	Environments string // keygate:environments
	// GatewayCacheTTL is API Gateway's authorizer result cache in seconds.
	// 0 (the default) makes every request reach the authorizer, which rate
	// limits, quotas and usage counting need; see docs/verification.md.
	GatewayCacheTTL int // keygate:gatewayCacheTtl
	// KeyCacheTTL is the authorizer's in-process key cache in seconds
	// (default 5, minimum 1): how long a revocation can take to bite.
	KeyCacheTTL int // keygate:keyCacheTtl
	// LogRetentionDays is how long function and access logs are kept
	// (default 30; one of CloudWatch's allowed values).
	LogRetentionDays int // keygate:logRetentionDays
	// AlarmEmail, when set, subscribes that address to the alarm topic.
	AlarmEmail string // keygate:alarmEmail
	// RemovalPolicy is "retain" (default: the table, its pepper and the logs
	// outlive the stack, and the table has deletion protection) or "destroy"
	// (for throwaway stacks).
	RemovalPolicy string // keygate:removalPolicy
	// StageName is the API stage (default "prod").
	StageName string // keygate:stageName
	// ThrottleRateLimit and ThrottleBurstLimit are the stage's default
	// throttling in requests per second (defaults 1000 and 2000).
	ThrottleRateLimit  float64 // keygate:throttleRateLimit
	ThrottleBurstLimit float64 // keygate:throttleBurstLimit
	// RotatorSchedule is the EventBridge schedule expression of the
	// rotator's lifecycle run (default "rate(1 hour)").
	RotatorSchedule string // keygate:rotatorSchedule
	// Routes is the authorizer's route table (KEYGATE_ROUTES: JSON, method
	// and path to required scopes and cost); empty means no scope is
	// required and every request costs 1.
	Routes string // keygate:routes
	// FunctionEnv sets further KEYGATE_* variables of a function, by
	// function name, for every setting that has no context key of its own
	// (for example the authorizer's KEYGATE_SERVE_STALE or the rotator's
	// KEYGATE_IDLE_DAYS). The variables the stack sets itself cannot be
	// overridden.
	FunctionEnv map[string]map[string]string // keygate:functionEnv
}

// ContextPrefix starts every keygate context key.
const ContextPrefix = "keygate:"

// SettingsFromContext reads the keygate:* context of node (cdk.json and -c
// flags) and checks it; an unknown keygate:* key is an error, so a typo
// cannot silently fall back to a default.
func SettingsFromContext(node constructs.Node) (Settings, error) {
	all, _ := node.GetAllContext(nil).(map[string]interface{})
	raw := map[string]string{}
	for k, v := range all {
		name, ok := strings.CutPrefix(k, ContextPrefix)
		if !ok || v == nil {
			continue
		}
		if !slices.Contains(contextKeys, name) {
			return Settings{}, fmt.Errorf("%s: unknown setting (known: %s%s)", k, ContextPrefix, strings.Join(contextKeys, ", "+ContextPrefix))
		}
		if s, ok := v.(string); ok {
			raw[name] = s
		} else {
			// A JSON value in cdk.json (a list or an object) arrives
			// decoded; settings read it back as JSON.
			b, err := json.Marshal(v)
			if err != nil {
				return Settings{}, fmt.Errorf("%s: %v", k, err)
			}
			raw[name] = string(b)
		}
	}
	return ParseSettings(raw)
}

var contextKeys = []string{
	"upstreamUrl", "proxyBasePath", "keyPrefix", "environments", "gatewayCacheTtl",
	"keyCacheTtl", "logRetentionDays", "alarmEmail", "removalPolicy", "stageName",
	"throttleRateLimit", "throttleBurstLimit", "rotatorSchedule", "routes", "functionEnv",
}

// ParseSettings builds Settings from context values by key without the
// "keygate:" prefix, then applies defaults and checks them.
func ParseSettings(raw map[string]string) (Settings, error) {
	var s Settings
	var err error
	num := func(k string, dst *int) {
		if v, ok := raw[k]; ok && err == nil {
			n, e := strconv.Atoi(strings.TrimSpace(v))
			if e != nil || n < 0 {
				err = fmt.Errorf("%s%s: %q is not a whole number of seconds or days >= 0", ContextPrefix, k, v)
			}
			*dst = n
		}
	}
	rate := func(k string, dst *float64) {
		if v, ok := raw[k]; ok && err == nil {
			f, e := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if e != nil || f <= 0 {
				err = fmt.Errorf("%s%s: %q is not a positive number of requests per second", ContextPrefix, k, v)
			}
			*dst = f
		}
	}
	s.UpstreamURL = raw["upstreamUrl"]
	s.ProxyBasePath = raw["proxyBasePath"]
	s.KeyPrefix = raw["keyPrefix"]
	s.Environments = raw["environments"]
	s.AlarmEmail = raw["alarmEmail"]
	s.RemovalPolicy = raw["removalPolicy"]
	s.StageName = raw["stageName"]
	s.RotatorSchedule = raw["rotatorSchedule"]
	s.Routes = raw["routes"]
	if v, ok := raw["functionEnv"]; ok {
		if e := json.Unmarshal([]byte(v), &s.FunctionEnv); e != nil {
			return Settings{}, fmt.Errorf(`%sfunctionEnv: %q is not a JSON object such as {"authorizer":{"KEYGATE_SERVE_STALE":"5m"}}`, ContextPrefix, v)
		}
	}
	num("gatewayCacheTtl", &s.GatewayCacheTTL)
	num("keyCacheTtl", &s.KeyCacheTTL)
	num("logRetentionDays", &s.LogRetentionDays)
	rate("throttleRateLimit", &s.ThrottleRateLimit)
	rate("throttleBurstLimit", &s.ThrottleBurstLimit)
	if err != nil {
		return Settings{}, err
	}
	if v, ok := raw["keyCacheTtl"]; ok && s.KeyCacheTTL == 0 {
		return Settings{}, fmt.Errorf("%skeyCacheTtl: %q: the in-process key cache lasts at least 1 second", ContextPrefix, v)
	}
	return s.withDefaults()
}

// withDefaults fills in every unset field and checks the result.
func (s Settings) withDefaults() (Settings, error) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&s.AssetRoot, "bin")
	def(&s.ProxyBasePath, gateway.DefaultProxyBase)
	def(&s.KeyPrefix, "kg")
	def(&s.Environments, "live,test")
	def(&s.RemovalPolicy, "retain")
	def(&s.StageName, "prod")
	def(&s.RotatorSchedule, "rate(1 hour)")
	if s.KeyCacheTTL == 0 {
		s.KeyCacheTTL = 5
	}
	if s.LogRetentionDays == 0 {
		s.LogRetentionDays = 30
	}
	if s.ThrottleRateLimit == 0 {
		s.ThrottleRateLimit = 1000
	}
	if s.ThrottleBurstLimit == 0 {
		s.ThrottleBurstLimit = 2000
	}
	s.ProxyBasePath = strings.Trim(s.ProxyBasePath, "/")

	// The functions check prefix and environments the same way at cold
	// start; checking here makes a bad value fail `cdk synth`, not the
	// deployed functions.
	if _, err := config.Load(func(k string) string {
		return map[string]string{config.EnvKeyPrefix: s.KeyPrefix, config.EnvEnvironments: s.Environments}[k]
	}); err != nil {
		return Settings{}, fmt.Errorf("%skeyPrefix / %senvironments: %v", ContextPrefix, ContextPrefix, err)
	}
	if s.UpstreamURL != "" {
		u, err := url.Parse(s.UpstreamURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			return Settings{}, fmt.Errorf("%supstreamUrl: %q is not an absolute http(s) URL without a query", ContextPrefix, s.UpstreamURL)
		}
		s.UpstreamURL = strings.TrimRight(s.UpstreamURL, "/")
	}
	if s.ProxyBasePath == "" || strings.ContainsAny(s.ProxyBasePath, "/{}") || s.ProxyBasePath == "v1" || s.ProxyBasePath == ".well-known" {
		return Settings{}, fmt.Errorf("%sproxyBasePath: %q must be one path segment other than v1 and .well-known", ContextPrefix, s.ProxyBasePath)
	}
	if s.GatewayCacheTTL > 3600 {
		return Settings{}, fmt.Errorf("%sgatewayCacheTtl: %d is above API Gateway's maximum of 3600 seconds", ContextPrefix, s.GatewayCacheTTL)
	}
	if s.KeyCacheTTL > 3600 {
		return Settings{}, fmt.Errorf("%skeyCacheTtl: %d is above the authorizer's maximum of 3600 seconds", ContextPrefix, s.KeyCacheTTL)
	}
	if err := s.checkFunctionEnv(); err != nil {
		return Settings{}, err
	}
	if _, ok := retentionDays[s.LogRetentionDays]; !ok {
		return Settings{}, fmt.Errorf("%slogRetentionDays: %d is not a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)", ContextPrefix, s.LogRetentionDays)
	}
	if s.RemovalPolicy != "retain" && s.RemovalPolicy != "destroy" {
		return Settings{}, fmt.Errorf("%sremovalPolicy: %q must be retain or destroy", ContextPrefix, s.RemovalPolicy)
	}
	if !strings.HasPrefix(s.RotatorSchedule, "rate(") && !strings.HasPrefix(s.RotatorSchedule, "cron(") {
		return Settings{}, fmt.Errorf("%srotatorSchedule: %q must be an EventBridge rate(...) or cron(...) expression", ContextPrefix, s.RotatorSchedule)
	}
	if s.AlarmEmail != "" && !strings.Contains(s.AlarmEmail, "@") {
		return Settings{}, fmt.Errorf("%salarmEmail: %q is not an e-mail address", ContextPrefix, s.AlarmEmail)
	}
	return s, nil
}

// retain reports whether stateful resources outlive the stack.
func (s Settings) retain() bool { return s.RemovalPolicy == "retain" }

var retentionDays = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

var envName = regexp.MustCompile(`^KEYGATE_[A-Z0-9_]+$`)

// stackOwned are the variables the stack sets from its own resources and
// settings; functionEnv cannot override them.
var stackOwned = []string{
	config.EnvTable, config.EnvKeyPrefix, config.EnvPepper, config.EnvEnvironments,
	config.EnvEventBus, config.EnvDynamoDBEndpoint, authorizer.EnvCacheTTL, authorizer.EnvRoutes, EnvSigningKey,
}

// functionEnv returns the variables a function gets beyond the stack's own.
func (s Settings) functionEnv(name string) map[string]string {
	env := map[string]string{}
	for k, v := range s.FunctionEnv[name] {
		env[k] = v
	}
	if name == gateway.FnAuthorizer && s.Routes != "" {
		env[authorizer.EnvRoutes] = s.Routes
	}
	return env
}

// checkFunctionEnv refuses unknown functions, names outside KEYGATE_* and
// stack-owned variables, and runs the authorizer's own settings check, so
// that a bad route table or duration fails `cdk synth`, not the deployed
// authorizer's cold start.
func (s Settings) checkFunctionEnv() error {
	for fn, vars := range s.FunctionEnv {
		if !slices.Contains([]string{gateway.FnAuthorizer, gateway.FnIssuer, gateway.FnRotator, gateway.FnTokens}, fn) {
			return fmt.Errorf("%sfunctionEnv: unknown function %q", ContextPrefix, fn)
		}
		for k := range vars {
			if !envName.MatchString(k) || slices.Contains(stackOwned, k) {
				return fmt.Errorf("%sfunctionEnv: %s.%s: only KEYGATE_* variables the stack does not set itself", ContextPrefix, fn, k)
			}
		}
	}
	env := s.functionEnv(gateway.FnAuthorizer)
	env[config.EnvKeyPrefix], env[config.EnvEnvironments] = s.KeyPrefix, s.Environments
	env[authorizer.EnvCacheTTL] = strconv.Itoa(s.KeyCacheTTL) + "s"
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load(getenv)
	if err == nil {
		_, err = authorizer.LoadSettings(cfg, getenv)
	}
	if err != nil {
		return fmt.Errorf("%sroutes / %sfunctionEnv (authorizer): %v", ContextPrefix, ContextPrefix, err)
	}
	return nil
}

// keyQueryParam is the query parameter the authorizer reads a key from, if
// functionEnv gives it one; the proxy integration blanks it.
func (s Settings) keyQueryParam() string {
	return s.functionEnv(gateway.FnAuthorizer)[authorizer.EnvKeyQueryParam]
}
