package keygatecdk

import (
	"strings"
	"testing"
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
	if s != want {
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
