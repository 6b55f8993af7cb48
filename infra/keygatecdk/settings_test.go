package keygatecdk

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/keygate/keygate/internal/config"
)

func TestSettingsDefaults(t *testing.T) {
	s, err := ParseSettings(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		ProxyBasePath: "api", GatewayCacheTTL: 0, LogRetention: 30 * 24 * time.Hour,
		RemovalPolicy: "retain", StageName: "prod", ThrottleRateLimit: 1000, ThrottleBurstLimit: 2000,
		AdminThrottleRateLimit: 50, AdminThrottleBurstLimit: 100, TokenThrottleRateLimit: 100, TokenThrottleBurstLimit: 200,
		WAFRateLimit: 3000, CORSAllowMethods: []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"},
		CORSAllowHeaders: []string{"Content-Type", "x-api-key", "Authorization"}, CORSMaxAge: 10 * time.Minute,
		RotatorSchedule: "rate(1 hour)",
		Variables: map[string]string{"KEYGATE_KEY_PREFIX": "kg", "KEYGATE_ENVIRONMENTS": "live,test", "KEYGATE_CACHE_TTL": "5s",
			"KEYGATE_UNMATCHED": "allow"},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", s, want)
	}
}

func TestSettingsFromContextValues(t *testing.T) {
	s, err := ParseSettings(map[string]string{
		"upstreamUrl": "https://api.example.com/v2/", "proxyBasePath": "/shop/", "gatewayCacheTtl": "60s",
		"keyCacheTtl": "1s", "throttleRateLimit": "12.5", "logRetention": "400d",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.UpstreamURL != "https://api.example.com/v2" || s.ProxyBasePath != "shop" || s.GatewayCacheTTL != time.Minute ||
		s.Variables["KEYGATE_CACHE_TTL"] != "1s" || s.ThrottleRateLimit != 12.5 || s.LogRetention != 400*24*time.Hour {
		t.Errorf("parsed %+v", s)
	}
}

func TestBadSettingsFailSynthNamingTheKey(t *testing.T) {
	for key, value := range map[string]string{
		"upstreamUrl":            "ftp://example.com",
		"proxyBasePath":          "v1",
		"keyPrefix":              "KG!",
		"environments":           "live,staging",
		"gatewayCacheTtl":        "3601s",
		"keyCacheTtl":            "0",
		"logRetention":           "10d",
		"removalPolicy":          "snapshot",
		"throttleRateLimit":      "-1",
		"throttleBurstLimit":     "many",
		"rotatorSchedule":        "hourly",
		"alarmEmail":             "ops",
		"unmatched":              "maybe?",
		"routeBasePath":          "/a/../b",
		"corsAllowOrigins":       "https://*.example.com",
		"corsMaxAge":             "3h",
		"wafRateLimit":           "5",
		"adminThrottleRateLimit": "0",
	} {
		_, err := ParseSettings(map[string]string{key: value})
		if err == nil {
			t.Errorf("%s=%q accepted", key, value)
			continue
		}
		if !strings.Contains(err.Error(), ContextPrefix+key) {
			t.Errorf("%s=%q: error %q does not name the setting", key, value, err)
		}
	}
}

// Durations have one syntax: a bare number, the old seconds and days
// style, is refused, and a renamed key says its new name.
func TestDurationsNeedAUnitAndRenamedKeysSayTheirNewName(t *testing.T) {
	for key, value := range map[string]string{"gatewayCacheTtl": "60", "keyCacheTtl": "5"} {
		if _, err := ParseSettings(map[string]string{key: value}); err == nil || !strings.Contains(err.Error(), "90s, 15m, 12h or 30d") {
			t.Errorf("%s=%s: %v, want a refusal showing the duration syntax", key, value, err)
		}
	}
	_, err := ParseSettings(map[string]string{"logRetentionDays": "30"})
	if err == nil || !strings.Contains(err.Error(), ContextPrefix+"logRetention ") {
		t.Errorf("keygate:logRetentionDays: %v, want it pointing at keygate:logRetention", err)
	}
	_, err = ParseSettings(map[string]string{"functionEnv": `{"rotator":{"KEYGATE_IDLE_DAYS":"30"}}`})
	if err == nil || !strings.Contains(err.Error(), "KEYGATE_IDLE_AFTER") {
		t.Errorf("functionEnv KEYGATE_IDLE_DAYS: %v, want it pointing at KEYGATE_IDLE_AFTER", err)
	}
}

func TestSettingsFromContextRejectsUnknownKeys(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]interface{}{
		"keygate:upstreamURL": "https://api.example.com", // a typo of upstreamUrl
	}})
	if _, err := SettingsFromContext(app.Node()); err == nil || !strings.Contains(err.Error(), "keygate:upstreamURL") {
		t.Errorf("a misspelt setting gave %v, want an error naming it", err)
	}
}

func TestSettingsFromContextReadsCdkJSONTypes(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]interface{}{
		"keygate:upstreamUrl":       "https://api.example.com",
		"keygate:throttleRateLimit": 60, // a JSON number in cdk.json
		"keygate:logRetention":      "90d",
		"keygate:routes":            `[{"method":"GET","path":"/x","scopes":["read"]}]`,
		"aws:cdk:other":             true,
	}})
	s, err := SettingsFromContext(app.Node())
	if err != nil {
		t.Fatal(err)
	}
	if s.UpstreamURL != "https://api.example.com" || s.ThrottleRateLimit != 60 || s.LogRetention != 90*24*time.Hour ||
		s.Variables["KEYGATE_ROUTES"] != `[{"method":"GET","path":"/x","scopes":["read"]}]` {
		t.Errorf("read %+v", s)
	}
}

// A route table or function variable the deployed function would refuse at
// cold start fails the synth instead; so do variables the stack owns, and
// variables the named function does not read.
func TestFunctionSettingsAreCheckedAtSynth(t *testing.T) {
	good := map[string]string{
		"routes":      `[{"method":"GET","path":"/users/{id}","scopes":["read:users"]}]`,
		"functionEnv": `{"authorizer":{"KEYGATE_SERVE_STALE":"5m"},"rotator":{"KEYGATE_IDLE_AFTER":"30d"}}`,
	}
	s, err := ParseSettings(good)
	if err != nil {
		t.Fatal(err)
	}
	if s.functionEnv("authorizer")["KEYGATE_ROUTES"] == "" || s.functionEnv("rotator")["KEYGATE_IDLE_AFTER"] != "30d" ||
		s.functionEnv("issuer")["KEYGATE_ROUTES"] != "" {
		t.Fatalf("function variables not passed on to the functions that read them: %+v", s)
	}
	for name, raw := range map[string]map[string]string{
		"bad route table":    {"routes": `[{"method":"GET"}]`},
		"bad duration":       {"functionEnv": `{"authorizer":{"KEYGATE_SERVE_STALE":"forever"}}`},
		"stack-owned":        {"functionEnv": `{"issuer":{"KEYGATE_TABLE":"other"}}`},
		"from context":       {"functionEnv": `{"authorizer":{"KEYGATE_CACHE_TTL":"1s"}}`},
		"local only":         {"functionEnv": `{"issuer":{"KEYGATE_DYNAMODB_ENDPOINT":"http://127.0.0.1:8000"}}`},
		"not read by it":     {"functionEnv": `{"issuer":{"KEYGATE_SERVE_STALE":"5m"}}`},
		"not a keygate name": {"functionEnv": `{"issuer":{"AWS_REGION":"eu-west-1"}}`},
		"unknown function":   {"functionEnv": `{"billing":{"KEYGATE_X":"1"}}`},
		"not an object":      {"functionEnv": `[1]`},
		"key cache over 1 h": {"keyCacheTtl": "3601s"},
		"token ttl over max": {"functionEnv": `{"tokens":{"KEYGATE_TOKEN_TTL":"25h"}}`},
	} {
		if _, err := ParseSettings(raw); err == nil {
			t.Errorf("%s: accepted %v", name, raw)
		}
	}
}

// Every retention the registry accepts has CloudWatch's enumeration value.
func TestEveryLogRetentionMaps(t *testing.T) {
	for _, d := range config.LogRetentionDays {
		if _, ok := retentionDays[d]; !ok {
			t.Errorf("%d days: no awslogs.RetentionDays", d)
		}
	}
	if len(retentionDays) != len(config.LogRetentionDays) {
		t.Errorf("%d CloudWatch retentions mapped, %d accepted", len(retentionDays), len(config.LogRetentionDays))
	}
}

// Every setting of the stack alone in the registry is a field of Settings
// (by its context tag), and every tag names one: a setting added to the
// registry for the stack cannot go unread.
func TestEveryStackSettingIsAField(t *testing.T) {
	tags := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(Settings{})) {
		if key := f.Tag.Get("context"); key != "" {
			if s := config.ByContextKey(key); s == nil || (s.Env != "" && !s.Gateway) {
				t.Errorf("field %s: %q is not a stack setting of the registry", f.Name, key)
			}
			tags[key] = true
		}
	}
	for _, s := range config.All() {
		if (s.Env == "" || s.Gateway) && !tags[s.Context] {
			t.Errorf("%s%s has no field in Settings", ContextPrefix, s.Context)
		}
	}
}
