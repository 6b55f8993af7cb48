package key

import (
	"maps"
	"slices"
	"time"
)

// Successor returns the key that replaces k in a rotation: a new id, created
// at now, with every setting of k (name, owner, type, environment, scopes,
// validity window, rate limits, quota, origins, CIDRs, stages, metadata) and
// PreviousKeyID linking back to k. Its Hash and Hint are left for the caller,
// who generates the new secret. The expiry is kept as it is: a rotation
// replaces the secret, it never extends how long an admin let the key live
// (PATCH expiresAt does that).
func (k *Key) Successor(id string, now time.Time) *Key {
	return &Key{
		ID: id, Name: k.Name, OwnerID: k.OwnerID, Type: k.Type, Environment: k.Environment,
		Scopes: slices.Clone(k.Scopes), Enabled: true, CreatedAt: now, UpdatedAt: now,
		NotBefore: k.NotBefore, ExpiresAt: k.ExpiresAt,
		RateLimits: slices.Clone(k.RateLimits), Quota: clonePtr(k.Quota),
		AllowedOrigins: slices.Clone(k.AllowedOrigins), AllowedCIDRs: slices.Clone(k.AllowedCIDRs),
		Stages: slices.Clone(k.Stages), Metadata: maps.Clone(k.Metadata),
		Version: 1, PreviousKeyID: k.ID,
	}
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
