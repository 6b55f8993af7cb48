package key

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/fault"
)

// Limits on a key's settings. They keep items far below DynamoDB's 400 KB and
// the authorizer's context small enough for API Gateway.
const (
	MaxNameLen       = 128
	MaxOwnerLen      = 128
	MaxScopes        = 64
	MaxScopeLen      = 64
	MaxRateLimits    = 5
	MaxLimit         = 1_000_000_000
	MaxWindowSeconds = 31 * 24 * 3600
	MaxQuota         = 1_000_000_000_000
	MaxOrigins       = 32
	MaxCIDRs         = 64
	MaxStages        = 16
	MaxMetadataBytes = 4096
	MaxMetadataDepth = 4
	maxOriginLen     = 255
	// MaxPlanLen bounds metadata.plan, the one piece of metadata the
	// authorizer reads (and passes to the upstream).
	MaxPlanLen = 128
	// MaxVerifyBytes bounds what a verification has to carry of a key's
	// settings: its scopes, allowed origins, allowed CIDRs (as text),
	// stages and plan, added up. These live in the key's hot item, which
	// every verification writes and DynamoDB bills by size (1 write unit
	// per KB), so with the budget a verification of any key costs at most
	// 5 write units (docs/usage.md), and a typical key 1.
	MaxVerifyBytes = 3072
)

// The name rules. They are written out rather than as regular
// expressions: compiling four of those cost every cold start of the
// authorizer (which links this package) about a millisecond.
var (
	ownerRe = nameRule{`^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$`, alnum, alnum + "._:@/+=-", 0}
	scopeRe = nameRule{`^[A-Za-z0-9][A-Za-z0-9:._/*-]*$`, alnum, alnum + ":._/*-", 0}
	limitRe = nameRule{`^[a-z0-9][a-z0-9_-]{0,31}$`, lowerDigits, lowerDigits + "_-", 32}
	stageRe = nameRule{`^[A-Za-z0-9._-]{1,128}$`, alnum + "._-", alnum + "._-", 128}
)

const (
	lowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnum       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + lowerDigits
)

// nameRule is a name of at least one ASCII character: the first from
// first, the others from rest, at most max in all (0: no bound). pattern is
// the same rule as a regular expression, for messages.
type nameRule struct {
	pattern     string
	first, rest string
	max         int
}

// String returns the rule as a regular expression.
func (r nameRule) String() string { return r.pattern }

// MatchString reports whether s follows the rule.
func (r nameRule) MatchString(s string) bool {
	if s == "" || (r.max > 0 && len(s) > r.max) || strings.IndexByte(r.first, s[0]) < 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if strings.IndexByte(r.rest, s[i]) < 0 {
			return false
		}
	}
	return true
}

// Validate checks every setting of a key against keygate's rules and returns
// the first broken rule as a fault.Invalid error naming the field (in its
// wire name) and the rule. now is used for expiry checks: a key being issued
// or changed may not expire in the past.
func (k *Key) Validate(now time.Time) error {
	if k.Name == "" {
		return fault.Fieldf("name", "is required")
	}
	if utf8.RuneCountInString(k.Name) > MaxNameLen || !utf8.ValidString(k.Name) {
		return fault.Fieldf("name", "must be valid UTF-8 of at most %d characters", MaxNameLen)
	}
	if hasControl(k.Name) {
		return fault.Fieldf("name", "must not contain control characters")
	}
	if err := ValidateOwner(k.OwnerID); err != nil {
		return err
	}
	if k.Type != Secret && k.Type != Publishable {
		return fault.Fieldf("type", "must be %q or %q", Secret, Publishable)
	}
	if k.Environment != Live && k.Environment != Test {
		return fault.Fieldf("environment", "must be %q or %q", Live, Test)
	}
	if err := ValidateScopes(k.Scopes); err != nil {
		return err
	}
	if !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(now) {
		return fault.Fieldf("expiresAt", "must be in the future")
	}
	if !k.NotBefore.IsZero() && !k.ExpiresAt.IsZero() && !k.NotBefore.Before(k.ExpiresAt) {
		return fault.Fieldf("notBefore", "must be before expiresAt")
	}
	if err := ValidateRateLimits(k.RateLimits); err != nil {
		return err
	}
	if k.Quota != nil {
		if err := k.Quota.Validate(); err != nil {
			return err
		}
	}
	if err := ValidateOrigins(k.AllowedOrigins); err != nil {
		return err
	}
	if len(k.AllowedCIDRs) > MaxCIDRs {
		return fault.Fieldf("allowedCidrs", "at most %d entries", MaxCIDRs)
	}
	if len(k.Stages) > MaxStages {
		return fault.Fieldf("stages", "at most %d entries", MaxStages)
	}
	for _, s := range k.Stages {
		if !stageRe.MatchString(s) {
			return fault.Fieldf("stages", "each stage must match %s", stageRe)
		}
	}
	if err := ValidateMetadata(k.Metadata); err != nil {
		return err
	}
	if p, ok := k.Metadata[PlanField]; ok {
		if s, isString := p.(string); isString && utf8.RuneCountInString(s) > MaxPlanLen {
			return fault.Fieldf("metadata.plan", "at most %d characters", MaxPlanLen)
		}
	}
	if n, field := VerifyBytes(k); n > MaxVerifyBytes {
		return fault.Fieldf(field, "scopes, allowedOrigins, allowedCidrs, stages and metadata.plan take %d bytes together, at most %d: every verification writes them", n, MaxVerifyBytes)
	}
	return nil
}

// VerifyBytes returns how many bytes of a key's settings a verification
// carries (see MaxVerifyBytes), and the field that takes the most of them.
func VerifyBytes(k *Key) (n int, largest string) {
	sum := func(ss []string) int {
		t := 0
		for _, s := range ss {
			t += len(s)
		}
		return t
	}
	most := 0
	for _, f := range []struct {
		name  string
		bytes int
	}{
		{"scopes", sum(k.Scopes)},
		{"allowedOrigins", sum(k.AllowedOrigins)},
		{"allowedCidrs", sum(FormatCIDRs(k.AllowedCIDRs))},
		{"stages", sum(k.Stages)},
		{"metadata.plan", len(PlanOf(k))},
	} {
		n += f.bytes
		if f.bytes > most {
			most, largest = f.bytes, f.name
		}
	}
	return n, largest
}

// ValidateOwner checks an owner id: 1 to 128 characters of letters, digits
// and ._:@/+=- (so that it is safe in an index key and a log line).
func ValidateOwner(owner string) error {
	if owner == "" {
		return fault.Fieldf("ownerId", "is required")
	}
	if len(owner) > MaxOwnerLen || !ownerRe.MatchString(owner) {
		return fault.Fieldf("ownerId", "must be 1 to %d characters matching %s", MaxOwnerLen, ownerRe)
	}
	return nil
}

// ValidateScopes checks a list of scopes: at most 64, each 1 to 64 characters
// of letters, digits and :._/*- and no duplicates.
func ValidateScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return fault.Fieldf("scopes", "at most %d scopes", MaxScopes)
	}
	seen := make(map[string]bool, len(scopes))
	for _, s := range scopes {
		if len(s) > MaxScopeLen || !scopeRe.MatchString(s) {
			return fault.Fieldf("scopes", "each scope must be 1 to %d characters matching %s", MaxScopeLen, scopeRe)
		}
		if seen[s] {
			return fault.Fieldf("scopes", "duplicate scope %q", s)
		}
		seen[s] = true
	}
	return nil
}

// ValidateRateLimits checks a key's rate limits: at most 5, unique names, a
// limit from 1 to 1e9 and a window from 1 second to 31 days.
func ValidateRateLimits(limits []RateLimit) error {
	if len(limits) > MaxRateLimits {
		return fault.Fieldf("rateLimits", "at most %d rate limits", MaxRateLimits)
	}
	seen := map[string]bool{}
	for _, l := range limits {
		if !limitRe.MatchString(l.Name) {
			return fault.Fieldf("rateLimits.name", "must match %s", limitRe)
		}
		if seen[l.Name] {
			return fault.Fieldf("rateLimits.name", "duplicate rate limit name %q", l.Name)
		}
		seen[l.Name] = true
		if l.Limit < 1 || l.Limit > MaxLimit {
			return fault.Fieldf("rateLimits.limit", "must be from 1 to %d", MaxLimit)
		}
		if l.WindowSeconds < 1 || l.WindowSeconds > MaxWindowSeconds {
			return fault.Fieldf("rateLimits.windowSeconds", "must be from 1 to %d", MaxWindowSeconds)
		}
	}
	return nil
}

// Validate checks a quota: a limit from 1 to 1e12 and a known period.
func (q *Quota) Validate() error {
	if q.Limit < 1 || q.Limit > MaxQuota {
		return fault.Fieldf("quota.limit", "must be from 1 to %d", int64(MaxQuota))
	}
	switch q.Period {
	case Day, Month, Total:
		return nil
	}
	return fault.Fieldf("quota.period", "must be %q, %q or %q", Day, Month, Total)
}

// ValidateOrigins checks allowed origins: each is "scheme://host[:port]"
// (http or https, no path), and the host may start with "*." to allow any
// subdomain.
func ValidateOrigins(origins []string) error {
	if len(origins) > MaxOrigins {
		return fault.Fieldf("allowedOrigins", "at most %d origins", MaxOrigins)
	}
	for _, o := range origins {
		if len(o) > maxOriginLen {
			return fault.Fieldf("allowedOrigins", "each origin at most %d characters", maxOriginLen)
		}
		u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard.", 1))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ToLower(o) != o {
			return fault.Fieldf("allowedOrigins", "each origin must be a lowercase scheme://host[:port] with http or https, optionally *.host")
		}
	}
	return nil
}

// ParseCIDRs reads an allowlist of CIDRs or single addresses (IPv4 or IPv6);
// a single address becomes a /32 or /128.
func ParseCIDRs(in []string) ([]netip.Prefix, error) {
	if len(in) > MaxCIDRs {
		return nil, fault.Fieldf("allowedCidrs", "at most %d entries", MaxCIDRs)
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fault.Fieldf("allowedCidrs", "each entry must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32")
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		// An IPv4-mapped IPv6 prefix (::ffff:203.0.113.0/120) means the IPv4
		// prefix: source addresses are compared unmapped, so it would
		// otherwise never match.
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fault.Fieldf("allowedCidrs", "an IPv4-mapped prefix must be at least /96")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// FormatCIDRs writes an allowlist back as strings.
func FormatCIDRs(in []netip.Prefix) []string {
	out := make([]string, len(in))
	for i, p := range in {
		out[i] = p.String()
	}
	return out
}

// ValidateMetadata checks metadata: a JSON object of at most 4 KiB encoded
// and at most 4 levels deep. Metadata is passed to clients and events as is,
// so it must never hold a secret; keygate cannot check that, so say it in
// the docs.
func ValidateMetadata(m map[string]any) error {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fault.Fieldf("metadata", "must be a JSON object")
	}
	if len(b) > MaxMetadataBytes {
		return fault.Fieldf("metadata", "at most %d bytes when encoded", MaxMetadataBytes)
	}
	if depth(m) > MaxMetadataDepth {
		return fault.Fieldf("metadata", "at most %d levels deep", MaxMetadataDepth)
	}
	return nil
}

func depth(v any) int {
	switch x := v.(type) {
	case map[string]any:
		d := 0
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		d := 0
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
