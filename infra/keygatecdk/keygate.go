package keygatecdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
)

// KeygateProps configure NewKeygate. Every field is optional: nil (or the
// zero value) takes the keygate:* context value of the same name from the
// app's cdk.json or -c flags, and without one the registry's default (see
// docs/configuration.md). A field tagged `context:"key"` is that setting of
// the registry, checked by the same parser as the context value, so a bad
// value fails the synth with the setting's name.
type KeygateProps struct {
	// UpstreamUrl is the API the protected proxy forwards to; without it
	// keygate's REST API serves only its own routes.
	UpstreamUrl *string `context:"upstreamUrl"`
	// ProxyBasePath is the path the protected proxy is mounted under
	// (default "api").
	ProxyBasePath *string `context:"proxyBasePath"`
	// KeyPrefix names the deployment at the start of every key (default
	// "kg": kg_sk_live_...).
	KeyPrefix *string `context:"keyPrefix"`
	// Environments are the key environments the deployment issues and
	// accepts: "live", "test" or both (the default).
	Environments *[]*string `context:"environments"`
	// KeyCacheTtl is how long the authorizer trusts a key record it read:
	// the longest a revocation takes to bite (default 5 s).
	KeyCacheTtl awscdk.Duration `context:"keyCacheTtl"`
	// GatewayCacheTtl is API Gateway's authorizer result cache on keygate's
	// REST API and on every API given to Authorizer. Keep it off (the
	// default) when any key has rate limits or quotas: a cached allow
	// skips the authorizer, so those requests are neither limited nor
	// counted.
	GatewayCacheTtl awscdk.Duration `context:"gatewayCacheTtl"`
	// Routes is the authorizer's route table: the scopes and the cost of
	// each method and path (default: no scopes required, cost 1).
	Routes *[]*Route `context:"routes"`
	// Unmatched is what a request matching no route needs: "allow" (the
	// default: a valid key), "deny", or scopes separated by commas.
	Unmatched *string `context:"unmatched"`
	// RouteBasePath is stripped from request paths before route matching:
	// the base path of a custom domain's API mapping (default none).
	RouteBasePath *string `context:"routeBasePath"`
	// CorsAllowOrigins are the origins browsers may call the protected
	// proxy from ("*" for any): preflights are answered without the
	// authorizer and denials carry Access-Control-Allow-Origin (default:
	// CORS off). CorsAllowMethods, CorsAllowHeaders and CorsMaxAge shape
	// the preflight's answer.
	CorsAllowOrigins *[]*string      `context:"corsAllowOrigins"`
	CorsAllowMethods *[]*string      `context:"corsAllowMethods"`
	CorsAllowHeaders *[]*string      `context:"corsAllowHeaders"`
	CorsMaxAge       awscdk.Duration `context:"corsMaxAge"`
	// LogRetention is how long function and access logs are kept (default
	// one month).
	LogRetention awslogs.RetentionDays `context:"logRetention"`
	// AlarmEmail, when set, is subscribed to the alarm topic.
	AlarmEmail *string `context:"alarmEmail"`
	// RemovalPolicy is what happens to the table, the pepper, the signing
	// key, the environment and seal KMS keys, the usage function's failure
	// queue and the logs when the construct is removed: RETAIN (the
	// default, with the table's deletion protection on) or DESTROY.
	RemovalPolicy awscdk.RemovalPolicy `context:"removalPolicy"`
	// StageName is the REST API's stage (default "prod").
	StageName *string `context:"stageName"`
	// ThrottleRateLimit and ThrottleBurstLimit are the stage's default
	// throttling (default 1000 requests per second, bursts of 2000).
	ThrottleRateLimit  *float64 `context:"throttleRateLimit"`
	ThrottleBurstLimit *float64 `context:"throttleBurstLimit"`
	// AdminThrottleRateLimit and AdminThrottleBurstLimit throttle the admin
	// API (default 50 per second, bursts of 100), TokenThrottleRateLimit
	// and TokenThrottleBurstLimit the token exchange and the JWKS (default
	// 100, bursts of 200), apart from the proxy.
	AdminThrottleRateLimit  *float64 `context:"adminThrottleRateLimit"`
	AdminThrottleBurstLimit *float64 `context:"adminThrottleBurstLimit"`
	TokenThrottleRateLimit  *float64 `context:"tokenThrottleRateLimit"`
	TokenThrottleBurstLimit *float64 `context:"tokenThrottleBurstLimit"`
	// WafRateLimit is the WAF web ACL's limit on one source IP's requests in
	// 5 minutes (default 3000); 0 removes the web ACL.
	WafRateLimit *float64 `context:"wafRateLimit"`
	// RotatorSchedule is when the rotator's lifecycle run starts (default
	// every hour).
	RotatorSchedule awsevents.Schedule `context:"rotatorSchedule"`
	// FunctionEnv sets further variables of a function, by function name,
	// for example {"authorizer": {"KEYGATE_SERVE_STALE": "5m"}}: those the
	// registry lets a deployment set and that function reads.
	FunctionEnv map[string]map[string]string `context:"functionEnv"`

	// Functions is the function table (default Functions).
	Functions []Function
	// Source is the directory of keygate's Go module, whose functions/
	// folders the construct builds at synth. Default: the copy the app's
	// own module uses, found with `go list -m` from the directory cdk runs
	// the app in (the module cache after `go get`, or a replace directive's
	// directory).
	Source *string
}

// Route is one entry of the authorizer's route table (keygate:routes).
type Route struct {
	// Method is an HTTP method, or "*" (or nil) for any.
	Method *string `json:"method,omitempty"`
	// Path is matched on the canonical request path: {name} matches one
	// segment, a final * or {name+} the rest.
	Path *string `json:"path"`
	// Scopes are the scopes a key needs, all of them.
	Scopes *[]*string `json:"scopes,omitempty"`
	// Cost is the quota credits a request costs (default 1).
	Cost *float64 `json:"cost,omitempty"`
	// CaseSensitive makes the route's literal segments match only as
	// written (default: in any case).
	CaseSensitive *bool `json:"caseSensitive,omitempty"`
}

// Keygate is all of keygate inside a team's own stack: the table, the
// pepper, the event bus, the token signing key, the functions (built from
// source at synth), the REST API with the admin routes and the protected
// proxy, the rotator's schedule, the usage function's stream mapping, the
// dashboard and the alarms. Its fields
// are what a stack wires further; it adds no stack outputs (the stack
// chooses their names: NewKeygateStack adds keygate's).
type Keygate struct {
	constructs.Construct
	// Settings are the resolved settings: props, then context, then
	// defaults.
	Settings Settings
	Table    awsdynamodb.Table
	Pepper   awssecretsmanager.Secret
	Bus      awsevents.EventBus
	// SigningKey signs access tokens (Ed25519, in KMS).
	SigningKey awskms.Key
	// EnvironmentKey encrypts the functions' environment variables;
	// SealKey seals stored idempotent responses (see docs/security.md).
	EnvironmentKey, SealKey awskms.Key
	// WebACL limits each source IP on the stage (nil with
	// keygate:wafRateLimit=0).
	WebACL awswafv2.CfnWebACL
	// Functions are keygate's functions by name (gateway.FnAuthorizer, ...).
	Functions map[string]awslambda.Function
	// Api is keygate's REST API: the admin API under /v1 (IAM), the token
	// exchange, the JWKS and the protected proxy.
	Api awsapigateway.RestApi
	// Authorizer puts the keygate authorizer in front of the team's own
	// REST and HTTP APIs (ForRestApi, ForHttpApi), with the settings' gateway
	// cache.
	Authorizer *Authorizer
	// Usage is the usage function's stream mapping (nil when the function
	// table has no usage function).
	Usage      *UsagePipeline
	Monitoring Monitoring
}

// ApiUrl is the base URL of keygate's REST API (the stage's URL, ending in
// "/"): the admin API is under v1/, the proxy under the proxy base path.
// The keygate CLI takes it as KEYGATE_API_URL.
func (k *Keygate) ApiUrl() *string { return k.Api.Url() }

// AuthorizerFunction is the authorizer's Lambda function, for APIs that
// attach it by ARN (in another stack: see NewAuthorizer).
func (k *Keygate) AuthorizerFunction() awslambda.Function {
	return k.Functions[gateway.FnAuthorizer]
}

// NewKeygate adds keygate to scope, usually a team's own stack. It panics
// on an invalid setting (from props or context), naming it, as constructs
// do; SettingsFromContext checks the context alone first, for an app that
// prefers a clear error to a stack trace.
func NewKeygate(scope constructs.Construct, id string, props *KeygateProps) *Keygate {
	if props == nil {
		props = &KeygateProps{}
	}
	// The construct is the Keygate value itself (NewConstruct_Override), so
	// a *Keygate can be passed wherever CDK takes a construct (Tags_Of,
	// Stack_Of, a dependency, a cdk-nag suppression).
	k := &Keygate{}
	constructs.NewConstruct_Override(k, scope, str(id))
	s, err := props.settings(k.Node())
	if err != nil {
		panic("keygatecdk: " + err.Error())
	}
	specs := props.Functions
	if specs == nil {
		specs = Functions
	}
	source := ""
	if props.Source != nil {
		source = *props.Source
	}
	code, err := NewGoCode(source)
	if err != nil {
		panic("keygatecdk: " + err.Error())
	}
	removal := s.removal()

	table := NewTable(k, "Table", TableProps{Retain: s.retain()})
	pepper := NewPepper(k, "Pepper", removal)
	bus := awsevents.NewEventBus(k, str("Events"), &awsevents.EventBusProps{
		Description: str("keygate lifecycle events: key.created, key.rotated, key.revoked, ..."),
	})
	signing := awskms.NewKey(k, str("TokenSigningKey"), &awskms.KeyProps{
		Description:   str("keygate: signs access tokens (EdDSA, Ed25519); the private key never leaves KMS"),
		KeySpec:       awskms.KeySpec_ECC_NIST_EDWARDS25519,
		KeyUsage:      awskms.KeyUsage_SIGN_VERIFY,
		RemovalPolicy: removal,
	})
	envKey := NewEnvironmentKey(k, "EnvironmentKey", removal)
	sealKey := NewSealKey(k, "SealKey", removal)
	fns := NewFunctions(k, "Functions", FunctionsProps{
		Specs:          specs,
		Code:           code,
		Table:          table,
		Bus:            bus,
		SigningKey:     signing,
		EnvironmentKey: envKey,
		SealKey:        sealKey,
		Pepper:         *pepper.SecretValue().UnsafeUnwrap(),
		Settings:       s,
	})
	var sealers []awsiam.IRole
	for _, name := range sortedNames(fns) {
		if config.SealKey.Setting().ReadBy(name) {
			sealers = append(sealers, fns[name].Role())
		}
	}
	AllowSealing(sealKey, sealers)
	authorizer := NewAuthorizer("KeygateAuthorizer", AuthorizerProps{
		Function: fns[gateway.FnAuthorizer],
		CacheTtl: awscdk.Duration_Seconds(jsii.Number(s.GatewayCacheTTL.Seconds())),
	})
	api := NewApi(k, "Api", ApiProps{Settings: s, Functions: fns, Authorizer: authorizer})
	var waf awswafv2.CfnWebACL
	if s.WAFRateLimit > 0 {
		waf = NewWebACL(k, "Firewall", WebACLProps{Stage: api.DeploymentStage(), RateLimit: s.WAFRateLimit})
	}

	if rotator, ok := fns[gateway.FnRotator]; ok {
		awsevents.NewRule(k, str("RotatorSchedule"), &awsevents.RuleProps{
			Description: str("keygate: the rotator's lifecycle run (expiry, expiring and idle keys, cleanup)"),
			Schedule:    awsevents.Schedule_Expression(str(s.RotatorSchedule)),
			Targets:     &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(rotator, &awseventstargets.LambdaFunctionProps{RetryAttempts: jsii.Number(2)})},
		})
	}
	// The dashboard is named after the stack, and after the construct too
	// when it shares a team's stack (any id but NewKeygateStack's), so it
	// cannot take the name of the team's own dashboard.
	dashboard := ""
	if id != stackChildID {
		dashboard = *awscdk.Aws_STACK_NAME() + "-" + id
	}
	if fn, ok := fns[gateway.FnUsage]; ok {
		p := NewUsagePipeline(k, "Usage", UsagePipelineProps{Table: table, Function: fn, Removal: removal})
		k.Usage = &p
	}
	mon := NewMonitoring(k, "Monitoring", MonitoringProps{Api: api, Table: table, Functions: fns, Usage: k.Usage,
		AlarmEmail: s.AlarmEmail, DashboardName: dashboard})

	k.Settings, k.Table, k.Pepper, k.Bus, k.SigningKey = s, table, pepper, bus, signing
	k.EnvironmentKey, k.SealKey, k.WebACL = envKey, sealKey, waf
	k.Functions, k.Api, k.Authorizer, k.Monitoring = fns, api, authorizer, mon
	AddNagSuppressions(k)
	return k
}

// settings resolves the props over the keygate:* context of node, through
// the registry (ParseSettings): a prop wins over the context value of its
// key.
func (p *KeygateProps) settings(node constructs.Node) (Settings, error) {
	raw, err := contextValues(node)
	if err != nil {
		return Settings{}, err
	}
	fields := reflect.ValueOf(p).Elem()
	for i, f := range reflect.VisibleFields(fields.Type()) {
		key := f.Tag.Get("context")
		if key == "" || fields.Field(i).IsZero() {
			continue
		}
		v, err := contextText(fields.Field(i).Interface())
		if err != nil {
			return Settings{}, fmt.Errorf("KeygateProps.%s (%s%s): %v", f.Name, ContextPrefix, key, err)
		}
		raw[key] = v
	}
	return ParseSettings(raw)
}

// contextText writes a prop as the context value of its setting, which
// the registry then parses and checks like one from cdk.json.
func contextText(v any) (string, error) {
	switch v := v.(type) {
	case *string:
		return *v, nil
	case *float64:
		return strconv.FormatFloat(*v, 'f', -1, 64), nil
	case *[]*string:
		var s []string
		for _, e := range *v {
			s = append(s, *e)
		}
		return strings.Join(s, ","), nil
	case awscdk.Duration:
		return config.FormatDuration(time.Duration(*v.ToMilliseconds(nil)) * time.Millisecond), nil
	case awslogs.RetentionDays:
		for days, r := range retentionDays {
			if r == v {
				return strconv.Itoa(days) + "d", nil
			}
		}
		return "", fmt.Errorf("%s is not a retention in days", v)
	case awscdk.RemovalPolicy:
		switch v {
		case awscdk.RemovalPolicy_RETAIN:
			return "retain", nil
		case awscdk.RemovalPolicy_DESTROY:
			return "destroy", nil
		}
		return "", fmt.Errorf("%s: want RETAIN or DESTROY", v)
	case awsevents.Schedule:
		return *v.ExpressionString(), nil
	default: // the route table and the function variables: JSON
		b, err := json.Marshal(v)
		return string(b), err
	}
}
