package key

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/fault"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func valid() *Key {
	return &Key{
		ID: NewID(), Name: "billing service", OwnerID: "acme", Type: Secret, Environment: Live,
		Enabled: true, Scopes: []string{"read:users", "write:orders"},
		RateLimits:     []RateLimit{{Name: "second", Limit: 10, WindowSeconds: 1}, {Name: "day", Limit: 10000, WindowSeconds: 86400}},
		Quota:          &Quota{Limit: 100000, Period: Month},
		AllowedOrigins: []string{"https://app.example.com", "https://*.example.org:8443"},
		Metadata:       map[string]any{"plan": "pro"},
	}
}

func TestValidKeyPasses(t *testing.T) {
	if err := valid().Validate(now); err != nil {
		t.Fatal(err)
	}
}

func TestValidationNamesFieldAndRule(t *testing.T) {
	deep := map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": map[string]any{"e": 1}}}}}
	cases := []struct {
		field string
		mut   func(k *Key)
	}{
		{"name", func(k *Key) { k.Name = "" }},
		{"name", func(k *Key) { k.Name = strings.Repeat("x", 129) }},
		{"name", func(k *Key) { k.Name = "bad\nname" }},
		{"ownerId", func(k *Key) { k.OwnerID = "" }},
		{"ownerId", func(k *Key) { k.OwnerID = "has space" }},
		{"type", func(k *Key) { k.Type = "admin" }},
		{"environment", func(k *Key) { k.Environment = "prod" }},
		{"scopes", func(k *Key) { k.Scopes = []string{"ok", "ok"} }},
		{"scopes", func(k *Key) { k.Scopes = []string{"<script>"} }},
		{"expiresAt", func(k *Key) { k.ExpiresAt = now.Add(-time.Second) }},
		{"notBefore", func(k *Key) { k.ExpiresAt = now.Add(time.Hour); k.NotBefore = now.Add(2 * time.Hour) }},
		{"rateLimits.limit", func(k *Key) { k.RateLimits[0].Limit = -1 }},
		{"rateLimits.limit", func(k *Key) { k.RateLimits[0].Limit = 1 << 40 }},
		{"rateLimits.windowSeconds", func(k *Key) { k.RateLimits[0].WindowSeconds = 0 }},
		{"rateLimits.name", func(k *Key) { k.RateLimits[1].Name = "second" }},
		{"rateLimits", func(k *Key) { k.RateLimits = make([]RateLimit, 6) }},
		{"quota.limit", func(k *Key) { k.Quota.Limit = 0 }},
		{"quota.period", func(k *Key) { k.Quota.Period = "year" }},
		{"allowedOrigins", func(k *Key) { k.AllowedOrigins = []string{"ftp://x.example"} }},
		{"allowedOrigins", func(k *Key) { k.AllowedOrigins = []string{"https://x.example/path"} }},
		{"metadata", func(k *Key) { k.Metadata = map[string]any{"big": strings.Repeat("x", 5000)} }},
		{"metadata", func(k *Key) { k.Metadata = deep }},
		{"stages", func(k *Key) { k.Stages = []string{"bad stage"} }},
	}
	for _, c := range cases {
		k := valid()
		c.mut(k)
		err := k.Validate(now)
		if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != c.field {
			t.Errorf("want invalid %s, got %v", c.field, err)
		}
		if err != nil && fault.MessageOf(err) == "" {
			t.Errorf("%s: no message saying the rule", c.field)
		}
	}
}

func TestStatusOrder(t *testing.T) {
	k := valid()
	if k.StatusAt(now) != Active {
		t.Fatal("want active")
	}
	k.NotBefore = now.Add(time.Minute)
	if k.StatusAt(now) != NotYetValid || k.WireStatus(now) != Active {
		t.Fatal("want not_yet_valid (shown as active)")
	}
	k.ExpiresAt = now
	if k.StatusAt(now) != Expired {
		t.Fatal("expiry at now: want expired")
	}
	k.Enabled = false
	if k.StatusAt(now) != Disabled {
		t.Fatal("want disabled over expired")
	}
	k.RevokedAt = now
	if k.StatusAt(now) != Revoked {
		t.Fatal("want revoked over everything")
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs([]string{"203.0.113.7/24", "2001:db8::1", "198.51.100.1", "::ffff:192.0.2.0/120", "::ffff:192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"203.0.113.0/24", "2001:db8::1/128", "198.51.100.1/32", "192.0.2.0/24", "192.0.2.9/32"}
	for i, p := range FormatCIDRs(got) {
		if p != want[i] {
			t.Fatalf("got %v want %v", FormatCIDRs(got), want)
		}
	}
	if _, err := ParseCIDRs([]string{"10.0.0.0/33"}); fault.FieldOf(err) != "allowedCidrs" {
		t.Fatalf("bad CIDR: %v", err)
	}
}

func TestIDs(t *testing.T) {
	id := NewID()
	if !ValidID(id) || id == NewID() {
		t.Fatalf("NewID %q invalid or repeated", id)
	}
	for _, bad := range []string{"", "key_", "key_" + strings.Repeat("u", 26), "kg_sk_live_x", id + "0"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
