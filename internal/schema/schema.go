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

// Index is a global secondary index with string keys and all attributes
// projected.
type Index struct {
	Name         string
	PartitionKey string
	SortKey      string
}

// Table describes the table: string partition and sort keys, on-demand
// billing, and the attribute DynamoDB's TTL deletes items by.
type Table struct {
	PartitionKey string
	SortKey      string
	TTLAttribute string
	Indexes      []Index
}

// Keygate is the table every part of keygate uses.
var Keygate = Table{
	PartitionKey: PK,
	SortKey:      SK,
	TTLAttribute: TTL,
	Indexes: []Index{
		{Name: GSI1, PartitionKey: GSI1PK, SortKey: GSI1SK},
		{Name: GSI2, PartitionKey: GSI2PK, SortKey: GSI2SK},
	},
}
