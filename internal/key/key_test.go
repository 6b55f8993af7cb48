package key

import (
	"encoding/json"
	"fmt"
	"net/netip"
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

// Every documented limit on a key's settings admits its maximum exactly and
// refuses one more (and, for the lower bounds, admits 1 and refuses 0), so
// that an admin who sets a value at the documented bound is never refused
// and one who goes past it always is, naming the field.
func TestValidateAcceptsEachBoundAndRefusesOnePast(t *testing.T) {
	n := func(count int, f func(i int) string) []string {
		out := make([]string, count)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	limits := func(count int) []RateLimit {
		out := make([]RateLimit, count)
		for i := range out {
			out[i] = RateLimit{Name: fmt.Sprintf("l%d", i), Limit: 1, WindowSeconds: 1}
		}
		return out
	}
	origins := func(count int) []string {
		return n(count, func(i int) string { return fmt.Sprintf("https://o%d.example", i) })
	}
	longOrigin := func(size int) string { return "https://" + strings.Repeat("h", size-len("https://")) }
	cidrs := func(count int) []netip.Prefix {
		out := make([]netip.Prefix, count)
		for i := range out {
			out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)
		}
		return out
	}
	// metadata of exactly size bytes when encoded: {"k":"xxx..."} is 8 bytes
	// plus the value.
	sized := func(size int) map[string]any { return map[string]any{"k": strings.Repeat("x", size-8)} }
	nested := func(levels int) map[string]any {
		m := map[string]any{"leaf": 1}
		for range levels - 1 {
			m = map[string]any{"n": m}
		}
		return m
	}
	cases := []struct {
		field     string
		ok, wrong func(k *Key)
	}{
		{"name", func(k *Key) { k.Name = strings.Repeat("é", MaxNameLen) }, func(k *Key) { k.Name = strings.Repeat("é", MaxNameLen+1) }},
		{"ownerId", func(k *Key) { k.OwnerID = strings.Repeat("o", MaxOwnerLen) }, func(k *Key) { k.OwnerID = strings.Repeat("o", MaxOwnerLen+1) }},
		{"scopes", func(k *Key) { k.Scopes = n(MaxScopes, func(i int) string { return fmt.Sprint("s", i) }) },
			func(k *Key) { k.Scopes = n(MaxScopes+1, func(i int) string { return fmt.Sprint("s", i) }) }},
		{"scopes", func(k *Key) { k.Scopes = []string{strings.Repeat("s", MaxScopeLen)} }, func(k *Key) { k.Scopes = []string{strings.Repeat("s", MaxScopeLen+1)} }},
		{"rateLimits", func(k *Key) { k.RateLimits = limits(MaxRateLimits) }, func(k *Key) { k.RateLimits = limits(MaxRateLimits + 1) }},
		{"rateLimits.limit", func(k *Key) { k.RateLimits[0].Limit = 1 }, func(k *Key) { k.RateLimits[0].Limit = 0 }},
		{"rateLimits.limit", func(k *Key) { k.RateLimits[0].Limit = MaxLimit }, func(k *Key) { k.RateLimits[0].Limit = MaxLimit + 1 }},
		{"rateLimits.windowSeconds", func(k *Key) { k.RateLimits[0].WindowSeconds = 1 }, func(k *Key) { k.RateLimits[0].WindowSeconds = 0 }},
		{"rateLimits.windowSeconds", func(k *Key) { k.RateLimits[0].WindowSeconds = MaxWindowSeconds }, func(k *Key) { k.RateLimits[0].WindowSeconds = MaxWindowSeconds + 1 }},
		{"quota.limit", func(k *Key) { k.Quota.Limit = 1 }, func(k *Key) { k.Quota.Limit = 0 }},
		{"quota.limit", func(k *Key) { k.Quota.Limit = MaxQuota }, func(k *Key) { k.Quota.Limit = MaxQuota + 1 }},
		{"allowedOrigins", func(k *Key) { k.AllowedOrigins = origins(MaxOrigins) }, func(k *Key) { k.AllowedOrigins = origins(MaxOrigins + 1) }},
		{"allowedOrigins", func(k *Key) { k.AllowedOrigins = []string{longOrigin(maxOriginLen)} }, func(k *Key) { k.AllowedOrigins = []string{longOrigin(maxOriginLen + 1)} }},
		{"allowedCidrs", func(k *Key) { k.AllowedCIDRs = cidrs(MaxCIDRs) }, func(k *Key) { k.AllowedCIDRs = cidrs(MaxCIDRs + 1) }},
		{"stages", func(k *Key) { k.Stages = n(MaxStages, func(i int) string { return fmt.Sprint("v", i) }) },
			func(k *Key) { k.Stages = n(MaxStages+1, func(i int) string { return fmt.Sprint("v", i) }) }},
		{"metadata", func(k *Key) { k.Metadata = sized(MaxMetadataBytes) }, func(k *Key) { k.Metadata = sized(MaxMetadataBytes + 1) }},
		{"metadata", func(k *Key) { k.Metadata = nested(MaxMetadataDepth) }, func(k *Key) { k.Metadata = nested(MaxMetadataDepth + 1) }},
	}
	for _, c := range cases {
		k := valid()
		c.ok(k)
		if err := k.Validate(now); err != nil {
			t.Errorf("%s at its bound: refused: %v", c.field, err)
		}
		k = valid()
		c.wrong(k)
		if err := k.Validate(now); fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != c.field {
			t.Errorf("%s one past its bound: got %v, want invalid %s", c.field, err, c.field)
		}
	}
	if b, _ := json.Marshal(sized(MaxMetadataBytes)); len(b) != MaxMetadataBytes {
		t.Fatalf("the metadata case is %d bytes, not the bound %d: fix the test", len(b), MaxMetadataBytes)
	}
}

// The CIDR allowlist takes at most MaxCIDRs entries as strings too, and an
// IPv4-mapped prefix from /96 (all of IPv4) up.
func TestParseCIDRsBounds(t *testing.T) {
	many := make([]string, MaxCIDRs+1)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.0/24", i)
	}
	if got, err := ParseCIDRs(many[:MaxCIDRs]); err != nil || len(got) != MaxCIDRs {
		t.Fatalf("%d entries: %v", MaxCIDRs, err)
	}
	if _, err := ParseCIDRs(many); fault.FieldOf(err) != "allowedCidrs" {
		t.Fatalf("%d entries: err = %v, want invalid allowedCidrs", MaxCIDRs+1, err)
	}
	got, err := ParseCIDRs([]string{"::ffff:0.0.0.0/96"})
	if err != nil || FormatCIDRs(got)[0] != "0.0.0.0/0" {
		t.Fatalf("::ffff:0.0.0.0/96: %v %v, want 0.0.0.0/0", FormatCIDRs(got), err)
	}
	if _, err := ParseCIDRs([]string{"::ffff:0.0.0.0/95"}); fault.FieldOf(err) != "allowedCidrs" {
		t.Fatalf("::ffff:0.0.0.0/95: err = %v, want invalid allowedCidrs", err)
	}
}

// What a verification carries of a key (scopes, origins, CIDRs as text,
// stages and the plan) is bounded as a whole, and a key over the budget is
// refused on the field that takes the most of it.
func TestVerifyBudgetBoundsWhatAVerificationCarries(t *testing.T) {
	k := valid()
	k.Scopes, k.AllowedOrigins, k.Stages = []string{"read:users"}, []string{"https://a.example"}, []string{"v1"}
	k.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	k.Metadata = map[string]any{"plan": "pro", "team": strings.Repeat("t", 1000)}
	if n, field := VerifyBytes(k); n != len("read:users")+len("https://a.example")+len("10.0.0.0/8")+len("v1")+len("pro") || field != "allowedOrigins" {
		t.Fatalf("VerifyBytes = %d, %q: want every listed setting and the plan counted, no other metadata", n, field)
	}
	// On a tie the field named is the first of scopes, allowedOrigins,
	// allowedCidrs, stages and metadata.plan.
	k.Scopes, k.AllowedOrigins, k.AllowedCIDRs, k.Stages, k.Metadata = []string{"abcdefghijkl"}, []string{"https://a.bc"}, nil, nil, nil
	if _, field := VerifyBytes(k); field != "scopes" {
		t.Fatalf("a tie between scopes and origins names %s, want scopes", field)
	}
	// Each case fills the budget exactly with its field taking the most;
	// one more byte (a 1-character scope, or origin, longer) is refused.
	repeat := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	scope := func(i int) string { return fmt.Sprintf("s%02d", i) + strings.Repeat("x", MaxScopeLen-3) }
	origin := func(i int) string { return fmt.Sprintf("https://o%02d.", i) + strings.Repeat("h", maxOriginLen-12) }
	for _, c := range []struct {
		field     string
		fill, one func(k *Key)
	}{
		{"scopes", func(k *Key) { k.Scopes = repeat(MaxVerifyBytes/MaxScopeLen, scope) },
			func(k *Key) { k.Scopes = append(k.Scopes, "z") }},
		{"allowedOrigins", func(k *Key) {
			k.AllowedOrigins = append(repeat(MaxVerifyBytes/maxOriginLen, origin), "https://"+strings.Repeat("a", MaxVerifyBytes%maxOriginLen-8))
		}, func(k *Key) { k.AllowedOrigins[len(k.AllowedOrigins)-1] += "a" }},
		{"stages", func(k *Key) {
			k.Stages = repeat(MaxStages, func(i int) string { return fmt.Sprintf("v%02d", i) + strings.Repeat("x", 125) })
			k.Scopes = repeat((MaxVerifyBytes-MaxStages*128)/MaxScopeLen, scope)
		}, func(k *Key) { k.Scopes = append(k.Scopes, "z") }},
	} {
		k := valid()
		k.Scopes, k.AllowedOrigins, k.Stages, k.AllowedCIDRs, k.Metadata = nil, nil, nil, nil, nil
		c.fill(k)
		if n, field := VerifyBytes(k); n != MaxVerifyBytes || field != c.field {
			t.Fatalf("%s: the case carries %d bytes, most in %s: fix the test", c.field, n, field)
		}
		if err := k.Validate(now); err != nil {
			t.Errorf("%s filling the budget: refused: %v", c.field, err)
		}
		c.one(k)
		if err := k.Validate(now); fault.FieldOf(err) != c.field || !strings.Contains(fault.MessageOf(err), "3073 bytes") {
			t.Errorf("%s one byte over the budget: %v, want invalid %s naming the size", c.field, err, c.field)
		}
	}
	// The plan: a string of at most MaxPlanLen characters, counted in the
	// budget; a plan that is not a string is no plan (metadata like any other).
	k = valid()
	k.Metadata = map[string]any{"plan": strings.Repeat("é", MaxPlanLen)}
	if err := k.Validate(now); err != nil || PlanOf(k) != strings.Repeat("é", MaxPlanLen) {
		t.Fatalf("a plan at its bound: %v", err)
	}
	k.Metadata = map[string]any{"plan": strings.Repeat("é", MaxPlanLen+1)}
	if err := k.Validate(now); fault.FieldOf(err) != "metadata.plan" {
		t.Fatalf("a plan one past its bound: %v", err)
	}
	k.Metadata = map[string]any{"plan": map[string]any{"tier": strings.Repeat("x", 3000)}}
	if n, _ := VerifyBytes(k); k.Validate(now) != nil || PlanOf(k) != "" || n > 200 {
		t.Fatalf("a plan that is not a string: plan %q, %d bytes, %v", PlanOf(k), n, k.Validate(now))
	}
}
