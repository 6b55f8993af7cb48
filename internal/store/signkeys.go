package store

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/schema"
)

// SigningKeyPK is the partition of the token signing keys: one item per
// kid, plus the ring's head item (SigningHeadSK), so that one Query reads
// the whole published key set.
const SigningKeyPK = "SIGNKEY"

// SigningHeadSK is the sort key of the head item, which serialises
// rotations with its version. "~" never occurs in a kid (base64url).
const SigningHeadSK = "~head"

// SigningKey is the public half of one token signing key as published in
// the table. The private half never is: it stays in KMS (or, for the local
// stack, in a file under .local/); Source says where.
type SigningKey struct {
	// KID is the key id tokens name in their header.
	KID string
	// JWK is the public key as a JSON Web Key (RFC 7517), as published.
	JWK []byte
	// Source names the private half: "kms:<key id or ARN>" or "local".
	Source    string
	CreatedAt time.Time
	// NotBefore is when the key starts signing; it is published earlier, so
	// every verifier knows it before the first token it signs.
	NotBefore time.Time
	// NotAfter is when it stops signing (zero while it is the newest key).
	NotAfter time.Time
	// Expires is when it leaves the published set: NotAfter plus the
	// longest token lifetime and leeway (zero while it signs). DynamoDB's
	// TTL deletes the item some time later; readers drop it at Expires.
	Expires time.Time
}

// SigningRing is every published signing key, oldest NotBefore first, and
// the version of the ring for the next rotation's condition.
type SigningRing struct {
	Keys    []SigningKey
	Version int64
}

// SigningKeys reads the published signing keys with one strongly
// consistent Query (the key set is small: a handful of items).
func (s *Store) SigningKeys(ctx context.Context) (SigningRing, error) {
	var ring SigningRing
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": schema.PK},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":pk": str(SigningKeyPK)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return SigningRing{}, mapErr(err, "read signing keys")
		}
		for _, it := range out.Items {
			sk := attrS(it, schema.SK)
			if sk == SigningHeadSK {
				ring.Version = attrN(it, "version")
				continue
			}
			ring.Keys = append(ring.Keys, SigningKey{
				KID:       sk,
				JWK:       []byte(attrS(it, "jwk")),
				Source:    attrS(it, "source"),
				CreatedAt: fromMS(attrN(it, "createdAt")),
				NotBefore: fromMS(attrN(it, "notBefore")),
				NotAfter:  fromMS(attrN(it, "notAfter")),
				Expires:   fromUnix(attrN(it, schema.TTL)),
			})
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	sortSigningKeys(ring.Keys)
	return ring, nil
}

// AddSigningKey publishes next and, when prev is not "", ends prev's
// signing at next.NotBefore and schedules its removal at prevExpires, in
// one transaction conditional on the ring still being at version: of
// concurrent rotations exactly one wins, the others get fault.Conflict.
func (s *Store) AddSigningKey(ctx context.Context, version int64, next SigningKey, prev string, prevExpires time.Time) error {
	if next.KID == "" || next.KID == SigningHeadSK || len(next.JWK) == 0 {
		return fault.Errorf(fault.Invalid, "a signing key needs a kid and a public key")
	}
	item := keyOf(SigningKeyPK, next.KID)
	item["jwk"] = str(string(next.JWK))
	item["source"] = str(next.Source)
	item["createdAt"] = num(ms(next.CreatedAt))
	item["notBefore"] = num(ms(next.NotBefore))
	head := ddb.TransactWriteItem{Put: &ddb.Put{
		TableName: &s.table,
		Item:      map[string]ddb.AttributeValue{schema.PK: str(SigningKeyPK), schema.SK: str(SigningHeadSK), "version": num(version + 1)},
	}}
	if version == 0 {
		head.Put.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		head.Put.ConditionExpression = aws.String("version = :v")
		head.Put.ExpressionAttributeValues = map[string]ddb.AttributeValue{":v": num(version)}
	}
	items := []ddb.TransactWriteItem{
		head,
		{Put: &ddb.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
	}
	if prev != "" {
		items = append(items, ddb.TransactWriteItem{Update: &ddb.Update{
			TableName:           &s.table,
			Key:                 keyOf(SigningKeyPK, prev),
			UpdateExpression:    aws.String("SET notAfter = :na, #ttl = :ttl"),
			ConditionExpression: aws.String("attribute_exists(pk)"),
			ExpressionAttributeNames: map[string]string{
				"#ttl": schema.TTL,
			},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{
				":na":  num(ms(next.NotBefore)),
				":ttl": num(prevExpires.Unix()),
			},
		}})
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return mapErr(err, "publish signing key")
}

func sortSigningKeys(ks []SigningKey) {
	slices.SortStableFunc(ks, func(a, b SigningKey) int { return a.NotBefore.Compare(b.NotBefore) })
}

func attrS(it map[string]ddb.AttributeValue, name string) string {
	if v, ok := it[name].(*ddb.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func attrN(it map[string]ddb.AttributeValue, name string) int64 {
	if v, ok := it[name].(*ddb.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// fromUnix is fromMS for Unix seconds: zero stays the zero time.
func fromUnix(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(v, 0).UTC()
}
