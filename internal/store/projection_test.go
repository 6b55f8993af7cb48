package store

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/schema"
)

// written by every verification, or keys of the table and its indexes: never
// projected into an index (see schema.Index).
var notListed = []string{"pk", "sk", "lastUsedAt", "usage", "rl", "q", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "ttl"}

// The owner listing (gsi1) must carry every setting of a key item, and none
// of what a verification rewrites, or listings would lose fields or every
// verification would also write the index.
func TestListingIndexProjectsEverySettingAndNoCounter(t *testing.T) {
	rt := reflect.TypeOf(keyItem{})
	var settings []string
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("dynamodbav"), ",")
		if !slices.Contains(notListed, name) {
			settings = append(settings, name)
		}
	}
	listed := schema.ListedAttributes
	for _, a := range settings {
		if !slices.Contains(listed, a) {
			t.Errorf("key item attribute %q is not in schema.ListedAttributes: listings would not show it", a)
		}
	}
	for _, a := range listed {
		if !slices.Contains(settings, a) {
			t.Errorf("schema.ListedAttributes names %q, which is not a key setting", a)
		}
	}
}
