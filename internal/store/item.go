package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

// Sort keys and key prefixes of the item kinds (see doc.go).
const (
	keySK       = "KEY"
	idSK        = "ID"
	keyPrefix   = "KEY#"
	idPrefix    = "ID#"
	ownerPrefix = "OWNER#"
)

// KeyPK is the partition key of the key item for a hash.
func KeyPK(h apikey.Hash) string { return keyPrefix + h.String() }

func idPK(id string) string { return idPrefix + id }

// keyItem is the key item as DynamoDB holds it. Counters (rl, q, usage) are
// maps written by the authorizer's UpdateItem; they are read back only for
// usage reports and limit decisions.
type keyItem struct {
	PK            string           `dynamodbav:"pk"`
	SK            string           `dynamodbav:"sk"`
	ID            string           `dynamodbav:"id"`
	Name          string           `dynamodbav:"name"`
	OwnerID       string           `dynamodbav:"ownerId"`
	Type          string           `dynamodbav:"type"`
	Env           string           `dynamodbav:"env"`
	Hash          string           `dynamodbav:"hash"`
	Hint          string           `dynamodbav:"hint"`
	Scopes        []string         `dynamodbav:"scopes,omitempty"`
	Enabled       bool             `dynamodbav:"enabled"`
	RevokedAt     int64            `dynamodbav:"revokedAt,omitempty"`
	CreatedAt     int64            `dynamodbav:"createdAt"`
	UpdatedAt     int64            `dynamodbav:"updatedAt"`
	NotBefore     int64            `dynamodbav:"notBefore,omitempty"`
	ExpiresAt     int64            `dynamodbav:"expiresAt,omitempty"`
	RateLimits    []key.RateLimit  `dynamodbav:"rateLimits,omitempty"`
	Quota         *key.Quota       `dynamodbav:"quota,omitempty"`
	Origins       []string         `dynamodbav:"origins,omitempty"`
	CIDRs         []string         `dynamodbav:"cidrs,omitempty"`
	Stages        []string         `dynamodbav:"stages,omitempty"`
	Metadata      string           `dynamodbav:"metadata,omitempty"`
	Version       int64            `dynamodbav:"version"`
	PreviousKeyID string           `dynamodbav:"previousKeyId,omitempty"`
	NextKeyID     string           `dynamodbav:"nextKeyId,omitempty"`
	LastUsedAt    int64            `dynamodbav:"lastUsedAt,omitempty"`
	Usage         map[string]int64 `dynamodbav:"usage"`
	RL            map[string]int64 `dynamodbav:"rl"`
	Q             map[string]int64 `dynamodbav:"q"`
	GSI1PK        string           `dynamodbav:"gsi1pk"`
	GSI1SK        string           `dynamodbav:"gsi1sk"`
	GSI2PK        string           `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK        string           `dynamodbav:"gsi2sk,omitempty"`
	TTL           int64            `dynamodbav:"ttl,omitempty"`
}

// ms converts a time to Unix milliseconds, zero for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts Unix milliseconds to a UTC time, the zero time for 0.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func ownerSK(createdAt int64, id string) string { return fmt.Sprintf("%015d#%s", createdAt, id) }

func toItem(k *key.Key) (*keyItem, error) {
	it := &keyItem{
		PK: KeyPK(k.Hash), SK: keySK,
		ID: k.ID, Name: k.Name, OwnerID: k.OwnerID,
		Type: string(k.Type), Env: string(k.Environment),
		Hash: k.Hash.String(), Hint: k.Hint,
		Scopes: k.Scopes, Enabled: k.Enabled,
		RevokedAt: ms(k.RevokedAt), CreatedAt: ms(k.CreatedAt), UpdatedAt: ms(k.UpdatedAt),
		NotBefore: ms(k.NotBefore), ExpiresAt: ms(k.ExpiresAt),
		RateLimits: k.RateLimits, Quota: k.Quota,
		Origins: k.AllowedOrigins, CIDRs: key.FormatCIDRs(k.AllowedCIDRs), Stages: k.Stages,
		Version: k.Version, PreviousKeyID: k.PreviousKeyID, NextKeyID: k.NextKeyID,
		LastUsedAt: ms(k.LastUsedAt),
		Usage:      map[string]int64{}, RL: map[string]int64{}, Q: map[string]int64{},
		GSI1PK: ownerPrefix + k.OwnerID, GSI1SK: ownerSK(ms(k.CreatedAt), k.ID),
	}
	if len(it.CIDRs) == 0 {
		it.CIDRs = nil
	}
	if k.Metadata != nil {
		b, err := json.Marshal(k.Metadata)
		if err != nil {
			return nil, fault.Fieldf("metadata", "must be a JSON object")
		}
		it.Metadata = string(b)
	}
	return it, nil
}

func (it *keyItem) toKey() (*key.Key, error) {
	h, ok := apikey.ParseHash(it.Hash)
	if !ok {
		return nil, fault.Errorf(fault.Internal, "key item %s has a bad hash", it.ID)
	}
	cidrs, err := key.ParseCIDRs(it.CIDRs)
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "key item %s has bad CIDRs", it.ID)
	}
	k := &key.Key{
		ID: it.ID, Name: it.Name, OwnerID: it.OwnerID,
		Type: key.Type(it.Type), Environment: key.Environment(it.Env),
		Hash: h, Hint: it.Hint, Scopes: it.Scopes, Enabled: it.Enabled,
		RevokedAt: fromMS(it.RevokedAt), CreatedAt: fromMS(it.CreatedAt), UpdatedAt: fromMS(it.UpdatedAt),
		NotBefore: fromMS(it.NotBefore), ExpiresAt: fromMS(it.ExpiresAt),
		RateLimits: it.RateLimits, Quota: it.Quota,
		AllowedOrigins: it.Origins, AllowedCIDRs: cidrs, Stages: it.Stages,
		Version: it.Version, PreviousKeyID: it.PreviousKeyID, NextKeyID: it.NextKeyID,
		LastUsedAt: fromMS(it.LastUsedAt),
	}
	if len(k.AllowedCIDRs) == 0 {
		k.AllowedCIDRs = nil
	}
	if it.Metadata != "" {
		if err := json.Unmarshal([]byte(it.Metadata), &k.Metadata); err != nil {
			return nil, fault.Errorf(fault.Internal, "key item %s has bad metadata", it.ID)
		}
	}
	return k, nil
}

// decodeKey reads a key item returned by DynamoDB.
func decodeKey(av map[string]ddb.AttributeValue) (*key.Key, *keyItem, error) {
	var it keyItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, nil, fault.Wrap(fault.Internal, err, "decode key item")
	}
	k, err := it.toKey()
	return k, &it, err
}

// DecodeKey reads a key item as returned by an UpdateItem or GetItem, for
// packages (the authorizer's store path) that issue their own requests
// through Store methods and receive raw items.
func DecodeKey(av map[string]ddb.AttributeValue) (*key.Key, error) {
	k, _, err := decodeKey(av)
	return k, err
}
