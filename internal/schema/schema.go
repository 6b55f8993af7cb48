// Package schema is the single definition of keygate's DynamoDB table: its
// keys, indexes and TTL attribute. The store creates the table from it in
// tests and in the local stack, and the CDK stack declares the same table from
// it, so the three can never disagree. It holds no AWS types on purpose: each
// user converts it to its own API.
package schema

// DefaultTableName is the table name used when none is configured.
const DefaultTableName = "keygate"

// Attribute names of the primary key, the index keys and the TTL attribute.
const (
	PK  = "pk"
	SK  = "sk"
	TTL = "ttl"

	// GSI1 lists a key owner's keys, newest first.
	GSI1   = "gsi1"
	GSI1PK = "gsi1pk"
	GSI1SK = "gsi1sk"

	// GSI2 finds keys with scheduled lifecycle work (expiry, idle checks) by
	// due time, so the rotator never scans the whole table.
	GSI2   = "gsi2"
	GSI2PK = "gsi2pk"
	GSI2SK = "gsi2sk"
)

// Index is a global secondary index with string keys. It projects its keys,
// the table's keys and the Include attributes, never all of them. Both
// indexes live on a key's record item, which a verification never writes
// (it writes only the key's hot item, which carries no index key), so no
// verification ever writes an index.
type Index struct {
	Name         string
	PartitionKey string
	SortKey      string
	// Include lists the non-key attributes the index carries; empty means
	// keys only.
	Include []string
}

// ListedAttributes are the record item's attributes that GSI1 carries:
// every setting a listing shows. A store test holds this list against the
// record item's fields.
var ListedAttributes = []string{
	"id", "name", "ownerId", "type", "env", "hash", "hint", "scopes", "enabled",
	"revokedAt", "createdAt", "updatedAt", "notBefore", "expiresAt",
	"rateLimits", "quota", "origins", "cidrs", "stages", "metadata",
	"version", "previousKeyId", "nextKeyId",
}

// Table describes the table: string partition and sort keys, on-demand
// billing, the attribute DynamoDB's TTL deletes items by, and its stream.
type Table struct {
	PartitionKey string
	SortKey      string
	TTLAttribute string
	Indexes      []Index
	// Stream is the table's stream view type. The usage consumer
	// (internal/usage) reads each change of a key's hot item from it, old
	// and new image, to keep usage history outside the item a
	// verification writes.
	Stream string
}

// NewAndOldImages is the stream view type that carries both images of a
// changed item.
const NewAndOldImages = "NEW_AND_OLD_IMAGES"

// Keygate is the table every part of keygate uses.
var Keygate = Table{
	PartitionKey: PK,
	SortKey:      SK,
	TTLAttribute: TTL,
	Stream:       NewAndOldImages,
	Indexes: []Index{
		{Name: GSI1, PartitionKey: GSI1PK, SortKey: GSI1SK, Include: ListedAttributes},
		// The rotator reads only keys from GSI2 and rereads the items.
		{Name: GSI2, PartitionKey: GSI2PK, SortKey: GSI2SK},
	},
}
