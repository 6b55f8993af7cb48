package store

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/schema"
)

// attrs lists the DynamoDB attribute names of an item type, those of its
// embedded structs included (attributevalue inlines them).
func attrs(v any) []string {
	return fields(reflect.TypeOf(v))
}

func fields(rt reflect.Type) []string {
	var out []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Anonymous {
			out = append(out, fields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("dynamodbav"), ",")
		out = append(out, name)
	}
	return out
}

// Keys of the table and its indexes, and the scheduled run's bookkeeping:
// never projected into the listing (see schema.Index).
var notListed = []string{"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "ttl", "lcExpiringFor", "lcExpiredFor", "lcIdleFor"}

// The owner listing (gsi1) must carry every setting of a record item, or
// listings would lose fields.
func TestListingIndexProjectsEverySetting(t *testing.T) {
	var settings []string
	for _, a := range attrs(recordItem{}) {
		if !slices.Contains(notListed, a) {
			settings = append(settings, a)
		}
	}
	listed := schema.ListedAttributes
	for _, a := range settings {
		if !slices.Contains(listed, a) {
			t.Errorf("record item attribute %q is not in schema.ListedAttributes: listings would not show it", a)
		}
	}
	for _, a := range listed {
		if !slices.Contains(settings, a) {
			t.Errorf("schema.ListedAttributes names %q, which is not a key setting", a)
		}
	}
}

// The hot item, which every verification writes, carries no index key:
// a verification writes the table and never an index.
func TestHotItemIsInNoIndex(t *testing.T) {
	hot := attrs(hotItem{})
	for _, ix := range schema.Keygate.Indexes {
		for _, a := range []string{ix.PartitionKey, ix.SortKey} {
			if slices.Contains(hot, a) {
				t.Errorf("the hot item has %s, a key of index %s: every verification would write the index", a, ix.Name)
			}
		}
	}
}
