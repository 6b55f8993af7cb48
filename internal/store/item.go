package store

import (
	"encoding/json"
	"fmt"
	"strings"
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

// HotSK is the sort key of every hot item, and of no other item: the usage
// consumer's filter (on the stream) keeps the records that carry it.
const HotSK = keySK

// KeyPK is the partition key of the hot item of the key whose hash is h.
func KeyPK(h apikey.Hash) string { return keyPrefix + h.String() }

// RecordPK is the partition key of the record item of the key with the
// given id.
func RecordPK(id string) string { return idPrefix + id }

// GetPrefixes are the partition key prefixes Get reads (the record item,
// then the hot item), so that a function that only reads keys by id (the
// token function) can be limited to them.
func GetPrefixes() []string { return []string{idPrefix, keyPrefix} }

// Attribute names of the counters a verification writes on the hot item:
// rate-limit windows and quota periods (the counters that limit), and the
// day's admitted requests and credits spent (the counters that record
// usage). They are kept apart so that a write can count one without the
// other (a refund, or a report of admissions made elsewhere).
const (
	attrRL    = "rl"
	attrQ     = "q"
	attrUsage = "usage"
	attrSpent = "spent"
	// attrUseq numbers the changes of the usage counters (see countUsage).
	attrUseq = "useq"
)

// recordItem is a key's record item (ID#<id>): every setting of the key
// and what the admin side keeps about it, and nothing a verification
// writes. The admin API reads it first; listings and the schedule are its
// indexes.
type recordItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Hash string `dynamodbav:"hash"`
	Name string `dynamodbav:"name"`
	Hint string `dynamodbav:"hint"`
	keySettings
	CreatedAt     int64  `dynamodbav:"createdAt"`
	UpdatedAt     int64  `dynamodbav:"updatedAt"`
	Metadata      string `dynamodbav:"metadata,omitempty"`
	Version       int64  `dynamodbav:"version"`
	PreviousKeyID string `dynamodbav:"previousKeyId,omitempty"`
	NextKeyID     string `dynamodbav:"nextKeyId,omitempty"`
	GSI1PK        string `dynamodbav:"gsi1pk"`
	GSI1SK        string `dynamodbav:"gsi1sk"`
	GSI2PK        string `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK        string `dynamodbav:"gsi2sk,omitempty"`
	ExpiringFor   int64  `dynamodbav:"lcExpiringFor,omitempty"`
	ExpiredFor    int64  `dynamodbav:"lcExpiredFor,omitempty"`
	IdleFor       int64  `dynamodbav:"lcIdleFor,omitempty"`
	TTL           int64  `dynamodbav:"ttl,omitempty"`
}

// keySettings are the attributes both of a key's items hold: who it
// belongs to and every setting a verification checks.
type keySettings struct {
	ID         string          `dynamodbav:"id"`
	OwnerID    string          `dynamodbav:"ownerId"`
	Type       string          `dynamodbav:"type"`
	Env        string          `dynamodbav:"env"`
	Scopes     []string        `dynamodbav:"scopes,omitempty"`
	Enabled    bool            `dynamodbav:"enabled"`
	RevokedAt  int64           `dynamodbav:"revokedAt,omitempty"`
	NotBefore  int64           `dynamodbav:"notBefore,omitempty"`
	ExpiresAt  int64           `dynamodbav:"expiresAt,omitempty"`
	RateLimits []key.RateLimit `dynamodbav:"rateLimits,omitempty"`
	Quota      *key.Quota      `dynamodbav:"quota,omitempty"`
	Origins    []string        `dynamodbav:"origins,omitempty"`
	CIDRs      []string        `dynamodbav:"cidrs,omitempty"`
	Stages     []string        `dynamodbav:"stages,omitempty"`
}

func settingsOf(k *key.Key) keySettings {
	return keySettings{
		ID: k.ID, OwnerID: k.OwnerID, Type: string(k.Type), Env: string(k.Environment),
		Scopes: k.Scopes, Enabled: k.Enabled,
		RevokedAt: ms(k.RevokedAt), NotBefore: ms(k.NotBefore), ExpiresAt: ms(k.ExpiresAt),
		RateLimits: k.RateLimits, Quota: k.Quota, Origins: k.AllowedOrigins, CIDRs: cidrsOf(k), Stages: k.Stages,
	}
}

// key returns the key with the settings, and hash h.
func (st keySettings) key(h apikey.Hash) (*key.Key, error) {
	cidrs, err := key.ParseCIDRs(st.CIDRs)
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "key %s has bad CIDRs", st.ID)
	}
	if len(cidrs) == 0 {
		cidrs = nil
	}
	return &key.Key{
		ID: st.ID, OwnerID: st.OwnerID, Type: key.Type(st.Type), Environment: key.Environment(st.Env),
		Hash: h, Scopes: st.Scopes, Enabled: st.Enabled,
		RevokedAt: fromMS(st.RevokedAt), NotBefore: fromMS(st.NotBefore), ExpiresAt: fromMS(st.ExpiresAt),
		RateLimits: st.RateLimits, Quota: st.Quota, AllowedOrigins: st.Origins, AllowedCIDRs: cidrs, Stages: st.Stages,
	}, nil
}

// hotItem is a key's hot item (KEY#<hash>): what a verification reads and
// writes, and nothing else, so that it stays small whatever the key's age
// (see doc.go, "The hot item"). Its settings are copies of the record
// item's, written in the same transaction by every admin change.
type hotItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
	keySettings
	Plan       string           `dynamodbav:"plan,omitempty"`
	LastUsedAt int64            `dynamodbav:"lastUsedAt,omitempty"`
	RL         map[string]int64 `dynamodbav:"rl"`
	Q          map[string]int64 `dynamodbav:"q"`
	Usage      map[string]int64 `dynamodbav:"usage"`
	Spent      map[string]int64 `dynamodbav:"spent"`
	TTL        int64            `dynamodbav:"ttl,omitempty"`
	// Floor is the limit counters' floor (see Record.Floor).
	Floor int64 `dynamodbav:"lf,omitempty"`
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

// toRecord returns k's record item.
func toRecord(k *key.Key) (*recordItem, error) {
	it := &recordItem{
		PK: RecordPK(k.ID), SK: idSK, Hash: k.Hash.String(), Name: k.Name, Hint: k.Hint,
		keySettings: settingsOf(k),
		CreatedAt:   ms(k.CreatedAt), UpdatedAt: ms(k.UpdatedAt),
		Version: k.Version, PreviousKeyID: k.PreviousKeyID, NextKeyID: k.NextKeyID,
		GSI1PK: ownerPrefix + k.OwnerID, GSI1SK: ownerSK(ms(k.CreatedAt), k.ID),
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

// toHot returns k's hot item, with empty counters.
func toHot(k *key.Key) *hotItem {
	return &hotItem{
		PK: KeyPK(k.Hash), SK: keySK, keySettings: settingsOf(k), Plan: key.PlanOf(k),
		LastUsedAt: ms(k.LastUsedAt),
		RL:         map[string]int64{}, Q: map[string]int64{}, Usage: map[string]int64{}, Spent: map[string]int64{},
	}
}

func cidrsOf(k *key.Key) []string {
	if len(k.AllowedCIDRs) == 0 {
		return nil
	}
	return key.FormatCIDRs(k.AllowedCIDRs)
}

// hotSettings are the hot item's copies of the key's settings, as an admin
// change writes them (empty values are removed).
func hotSettings(k *key.Key) map[string]any {
	h := toHot(k)
	return map[string]any{
		"scopes": h.Scopes, "enabled": h.Enabled, "notBefore": h.NotBefore, "expiresAt": h.ExpiresAt,
		"rateLimits": h.RateLimits, "quota": h.Quota, "origins": h.Origins, "cidrs": h.CIDRs,
		"stages": h.Stages, "plan": h.Plan,
	}
}

func (it *recordItem) toKey() (*key.Key, error) {
	h, ok := apikey.ParseHash(it.Hash)
	if !ok {
		return nil, fault.Errorf(fault.Internal, "record item %s has a bad hash", it.ID)
	}
	k, err := it.key(h)
	if err != nil {
		return nil, err
	}
	k.Name, k.Hint, k.CreatedAt, k.UpdatedAt = it.Name, it.Hint, fromMS(it.CreatedAt), fromMS(it.UpdatedAt)
	k.Version, k.PreviousKeyID, k.NextKeyID = it.Version, it.PreviousKeyID, it.NextKeyID
	if it.Metadata != "" {
		if err := json.Unmarshal([]byte(it.Metadata), &k.Metadata); err != nil {
			return nil, fault.Errorf(fault.Internal, "record item %s has bad metadata", it.ID)
		}
	}
	return k, nil
}

// toKey returns the key as a verification sees it: its id, owner and
// every setting the verification checks, the plan as its only metadata,
// and when it was last used. Name, hint, times of the admin side, the
// rest of the metadata and the rotation links are on the record item.
func (it *hotItem) toKey() (*key.Key, error) {
	h, ok := apikey.ParseHash(strings.TrimPrefix(it.PK, keyPrefix))
	if !ok {
		return nil, fault.Errorf(fault.Internal, "hot item of key %s has a bad hash", it.ID)
	}
	k, err := it.key(h)
	if err != nil {
		return nil, err
	}
	k.LastUsedAt = fromMS(it.LastUsedAt)
	if it.Plan != "" {
		k.Metadata = map[string]any{key.PlanField: it.Plan}
	}
	return k, nil
}

// decodeRecordItem reads a record item returned by DynamoDB.
func decodeRecordItem(av map[string]ddb.AttributeValue) (*key.Key, *recordItem, error) {
	var it recordItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, nil, fault.Wrap(fault.Internal, err, "decode record item")
	}
	k, err := it.toKey()
	return k, &it, err
}

// decodeHot reads a hot item returned by DynamoDB.
func decodeHot(av map[string]ddb.AttributeValue) (*key.Key, *hotItem, error) {
	var it hotItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, nil, fault.Wrap(fault.Internal, err, "decode hot item")
	}
	k, err := it.toKey()
	return k, &it, err
}

// DecodeKey reads a key's hot item as returned by an UpdateItem or GetItem,
// for packages that issue their own requests through Store methods and
// receive raw items. The key holds what a verification sees (see
// hotItem.toKey).
func DecodeKey(av map[string]ddb.AttributeValue) (*key.Key, error) {
	k, _, err := decodeHot(av)
	return k, err
}
