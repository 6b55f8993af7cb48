// Package keygatecdk holds keygate's AWS CDK constructs: Keygate
// (NewKeygate), all of keygate as one construct that a team adds to its own
// Go CDK app's stack after `go get github.com/keygate/keygate`, built from
// small constructs that can each be tested alone; NewKeygateStack, the same
// in a stack of its own, which the app in infra/ deploys; and Authorizer,
// which puts the keygate authorizer in front of a team's REST or HTTP API.
// The construct builds the functions from source with the Go toolchain
// during synth (GoCode), so no prebuilt binaries are needed. Go only: the
// package is not published through jsii for other CDK languages.
package keygatecdk

import (
	"fmt"
	"reflect"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
)

// Settings are a deployment's choices. Every field tagged `context:"key"`
// is the setting of the registry (internal/config) with that context key
// (`cdk.json` or `cdk deploy -c keygate:<key>=<value>`), which holds its
// default, its parser and its doc, and renders the table in
// docs/configuration.md: ParseSettings fills the fields by their tags, so
// a stack setting is its registry entry and the field the stack uses.
// NewKeygate resolves them from its props, the context and the defaults
// (KeygateProps.settings); Keygate.Settings holds the result.
type Settings struct {
	// UpstreamURL is the API the protected proxy forwards to. Empty means no
	// proxy routes: the stack then serves only keygate's own API.
	UpstreamURL string `context:"upstreamUrl"`
	// ProxyBasePath is the path the proxy is mounted under.
	ProxyBasePath string `context:"proxyBasePath"`
	// GatewayCacheTTL is API Gateway's authorizer result cache. 0 (the
	// default) makes every request reach the authorizer, which rate
	// limits, quotas and usage counting need.
	GatewayCacheTTL time.Duration `context:"gatewayCacheTtl"`
	// LogRetention is how long function and access logs are kept (one of
	// CloudWatch's allowed values, config.LogRetentionDays).
	LogRetention time.Duration `context:"logRetention"`
	// AlarmEmail, when set, subscribes that address to the alarm topic.
	AlarmEmail string `context:"alarmEmail"`
	// RemovalPolicy is "retain" or "destroy".
	RemovalPolicy string `context:"removalPolicy"`
	// StageName is the API stage.
	StageName string `context:"stageName"`
	// ThrottleRateLimit and ThrottleBurstLimit are the stage's default
	// throttling.
	ThrottleRateLimit  float64 `context:"throttleRateLimit"`
	ThrottleBurstLimit float64 `context:"throttleBurstLimit"`
	// AdminThrottleRateLimit and AdminThrottleBurstLimit throttle the admin
	// API's methods, TokenThrottleRateLimit and TokenThrottleBurstLimit the
	// token routes', each apart from the proxy (the stage's default).
	AdminThrottleRateLimit  float64 `context:"adminThrottleRateLimit"`
	AdminThrottleBurstLimit float64 `context:"adminThrottleBurstLimit"`
	TokenThrottleRateLimit  float64 `context:"tokenThrottleRateLimit"`
	TokenThrottleBurstLimit float64 `context:"tokenThrottleBurstLimit"`
	// WAFRateLimit is the web ACL's per-IP limit per 5 minutes; 0 means no
	// web ACL.
	WAFRateLimit int `context:"wafRateLimit"`
	// CORSAllowOrigins and the next three are the protected proxy's CORS
	// policy (see CORS).
	CORSAllowOrigins []string      `context:"corsAllowOrigins"`
	CORSAllowMethods []string      `context:"corsAllowMethods"`
	CORSAllowHeaders []string      `context:"corsAllowHeaders"`
	CORSMaxAge       time.Duration `context:"corsMaxAge"`
	// RotatorSchedule is the EventBridge schedule expression of the
	// rotator's lifecycle run.
	RotatorSchedule string `context:"rotatorSchedule"`
	// Variables are the function variables the stack takes from its own
	// context keys (config.Origin ByContext: KEYGATE_KEY_PREFIX from
	// keygate:keyPrefix, KEYGATE_CACHE_TTL from keygate:keyCacheTtl, ...),
	// by variable name; each function gets those it reads.
	Variables map[string]string
	// FunctionEnv sets further variables of a function, by function name:
	// those the registry lets a deployment set (config.Origin
	// ByFunctionEnv) and the function reads, for example the authorizer's
	// KEYGATE_SERVE_STALE or the rotator's KEYGATE_IDLE_AFTER.
	FunctionEnv map[string]map[string]string `context:"functionEnv"`
}

// ContextPrefix starts every keygate context key.
const ContextPrefix = config.ContextPrefix

// SettingsFromContext reads the keygate:* context of node (cdk.json and -c
// flags) and checks it; an unknown keygate:* key is an error, so a typo
// cannot silently fall back to a default.
func SettingsFromContext(node constructs.Node) (Settings, error) {
	raw, err := contextValues(node)
	if err != nil {
		return Settings{}, err
	}
	return ParseSettings(raw)
}

// contextValues are the keygate:* context values of node by key without
// the prefix, as text.
func contextValues(node constructs.Node) (map[string]string, error) {
	all, _ := node.GetAllContext(nil).(map[string]interface{})
	return config.ContextValues(all)
}

// ParseSettings builds Settings from context values by key without the
// "keygate:" prefix, through the registry: each value checked by its
// setting's parser, each absent one at its default.
func ParseSettings(raw map[string]string) (Settings, error) {
	if err := config.CheckContextKeys(raw); err != nil {
		return Settings{}, err
	}
	r := config.FromContext(raw)
	s := Settings{Variables: map[string]string{}}
	fields := reflect.ValueOf(&s).Elem()
	for i, f := range reflect.VisibleFields(fields.Type()) {
		if key := f.Tag.Get("context"); key != "" {
			fields.Field(i).Set(reflect.ValueOf(config.ByContextKey(key).Value(r)))
		}
	}
	for _, st := range config.All() {
		if st.Origin == config.ByContext && !st.Gateway { // the API's own settings are fields, not variables
			if v := r.Text(st); v != "" {
				s.Variables[st.Env] = v
			} else if st.Default() != "" {
				s.Variables[st.Env] = st.Default()
			}
		}
	}
	if err := r.Err(); err != nil {
		return Settings{}, err
	}
	for _, fn := range config.Functions() {
		env := s.functionEnv(fn)
		if err := config.Check(fn, func(k string) string { return env[k] }); err != nil {
			return Settings{}, fmt.Errorf("the %s function's variables: %v", fn, err)
		}
	}
	return s, nil
}

// CORS is the protected proxy's CORS policy, as internal/gateway defines it
// for the stack and the local gateway alike.
func (s Settings) CORS() gateway.CORS {
	return gateway.CORS{AllowOrigins: s.CORSAllowOrigins, AllowMethods: s.CORSAllowMethods,
		AllowHeaders: s.CORSAllowHeaders, MaxAge: s.CORSMaxAge}
}

// retain reports whether stateful resources outlive the stack.
func (s Settings) retain() bool { return s.RemovalPolicy == "retain" }

// removal is the removal policy of the stateful resources.
func (s Settings) removal() awscdk.RemovalPolicy {
	if s.retain() {
		return awscdk.RemovalPolicy_RETAIN
	}
	return awscdk.RemovalPolicy_DESTROY
}

// newLogGroup creates a log group with the deployment's retention and
// removal policy.
func (s Settings) newLogGroup(scope constructs.Construct, id string) awslogs.LogGroup {
	return awslogs.NewLogGroup(scope, str(id), &awslogs.LogGroupProps{
		Retention:     retentionDays[int(s.LogRetention/(24*time.Hour))],
		RemovalPolicy: s.removal(),
	})
}

// retentionDays maps each of config.LogRetentionDays to CloudWatch's
// enumeration (TestEveryLogRetentionMaps holds the two together).
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

// functionEnv returns the variables of function name that the stack sets
// from its settings: those it takes from its context keys and those of
// keygate:functionEnv, each only if the function reads it. The variables
// set from the stack's resources (config.Origin ByStack) are newFunction's.
func (s Settings) functionEnv(name string) map[string]string {
	env := map[string]string{}
	for _, st := range config.All() {
		if !st.ReadBy(name) {
			continue
		}
		if v := s.Variables[st.Env]; v != "" && st.Origin == config.ByContext {
			env[st.Env] = v
		}
		if v := s.FunctionEnv[name][st.Env]; v != "" && st.Origin == config.ByFunctionEnv {
			env[st.Env] = v
		}
	}
	return env
}

// keyQueryParam is the query parameter the authorizer reads a key from, if
// functionEnv gives it one; the proxy integration blanks it.
func (s Settings) keyQueryParam() string {
	return s.functionEnv(gateway.FnAuthorizer)[config.KeyQueryParam.Setting().Env]
}
