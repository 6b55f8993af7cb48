package keygatecdk

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

func TestSettingsDefaults(t *testing.T) {
	s, err := ParseSettings(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		AssetRoot: "bin", ProxyBasePath: "api", KeyPrefix: "kg", Environments: "live,test",
		GatewayCacheTTL: 0, KeyCacheTTL: 5, LogRetentionDays: 30, RemovalPolicy: "retain",
		StageName: "prod", ThrottleRateLimit: 1000, ThrottleBurstLimit: 2000, RotatorSchedule: "rate(1 hour)",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", s, want)
	}
}

func TestSettingsFromContextValues(t *testing.T) {
	s, err := ParseSettings(map[string]string{
		"upstreamUrl": "https://api.example.com/v2/", "proxyBasePath": "/shop/", "gatewayCacheTtl": "60",
		"keyCacheTtl": "1", "throttleRateLimit": "12.5",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.UpstreamURL != "https://api.example.com/v2" || s.ProxyBasePath != "shop" || s.GatewayCacheTTL != 60 || s.KeyCacheTTL != 1 || s.ThrottleRateLimit != 12.5 {
		t.Errorf("parsed %+v", s)
	}
}

func TestBadSettingsFailSynthNamingTheKey(t *testing.T) {
	for key, value := range map[string]string{
		"upstreamUrl":        "ftp://example.com",
		"proxyBasePath":      "v1",
		"keyPrefix":          "KG!",
		"environments":       "live,staging",
		"gatewayCacheTtl":    "3601",
		"keyCacheTtl":        "0",
		"logRetentionDays":   "10",
		"removalPolicy":      "snapshot",
		"throttleRateLimit":  "-1",
		"throttleBurstLimit": "many",
		"rotatorSchedule":    "hourly",
		"alarmEmail":         "ops",
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
		"keygate:upstreamUrl":      "https://api.example.com",
		"keygate:gatewayCacheTtl":  60, // a JSON number in cdk.json
		"keygate:logRetentionDays": "90",
		"aws:cdk:other":            true,
	}})
	s, err := SettingsFromContext(app.Node())
	if err != nil {
		t.Fatal(err)
	}
	if s.UpstreamURL != "https://api.example.com" || s.GatewayCacheTTL != 60 || s.LogRetentionDays != 90 {
		t.Errorf("read %+v", s)
	}
}

// A route table or function variable the deployed function would refuse at
// cold start fails the synth instead; so do variables the stack owns.
func TestFunctionSettingsAreCheckedAtSynth(t *testing.T) {
	good := map[string]string{
		"routes":      `[{"method":"GET","path":"/users/{id}","scopes":["read:users"]}]`,
		"functionEnv": `{"authorizer":{"KEYGATE_SERVE_STALE":"5m"},"rotator":{"KEYGATE_IDLE_DAYS":"30"}}`,
	}
	s, err := ParseSettings(good)
	if err != nil {
		t.Fatal(err)
	}
	if s.functionEnv("authorizer")["KEYGATE_ROUTES"] == "" || s.functionEnv("rotator")["KEYGATE_IDLE_DAYS"] != "30" {
		t.Fatalf("function variables not passed on: %+v", s.FunctionEnv)
	}
	for name, raw := range map[string]map[string]string{
		"bad route table":    {"routes": `[{"method":"GET"}]`},
		"bad duration":       {"functionEnv": `{"authorizer":{"KEYGATE_SERVE_STALE":"forever"}}`},
		"stack-owned":        {"functionEnv": `{"issuer":{"KEYGATE_TABLE":"other"}}`},
		"not a keygate name": {"functionEnv": `{"issuer":{"AWS_REGION":"eu-west-1"}}`},
		"unknown function":   {"functionEnv": `{"billing":{"KEYGATE_X":"1"}}`},
		"not an object":      {"functionEnv": `[1]`},
		"key cache over 1 h": {"keyCacheTtl": "3601"},
	} {
		if _, err := ParseSettings(raw); err == nil {
			t.Errorf("%s: accepted %v", name, raw)
		}
	}
}
