package keygatecdk

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
)

// resource is one resource of a template, decoded from JSON.
type resource struct {
	Type           string
	Properties     map[string]interface{}
	Metadata       map[string]interface{}
	DeletionPolicy string
}

// resources returns the template's resources of type typ by logical id.
func resources(t *testing.T, tpl assertions.Template, typ string) map[string]resource {
	t.Helper()
	b, err := json.Marshal(tpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Resources map[string]resource }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]resource{}
	for id, r := range doc.Resources {
		if r.Type == typ {
			out[id] = r
		}
	}
	return out
}

// logicalID is the logical id of a construct's CloudFormation resource.
func logicalID(stack awscdk.Stack, c constructs.IConstruct) string {
	return *stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

// jsonOf renders v for comparisons and messages.
func jsonOf(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// strs reads a string or a list of strings (IAM's Action may be either).
func strs(v interface{}) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []interface{}:
		var out []string
		for _, e := range x {
			out = append(out, strs(e)...)
		}
		sort.Strings(out)
		return out
	}
	return nil
}

// statements returns the statements of every IAM policy attached to the
// role with logical id role.
func statements(t *testing.T, tpl assertions.Template, role string) []map[string]interface{} {
	t.Helper()
	var out []map[string]interface{}
	for _, p := range resources(t, tpl, "AWS::IAM::Policy") {
		if !strings.Contains(jsonOf(p.Properties["Roles"]), `"`+role+`"`) {
			continue
		}
		doc := p.Properties["PolicyDocument"].(map[string]interface{})
		for _, s := range doc["Statement"].([]interface{}) {
			out = append(out, s.(map[string]interface{}))
		}
	}
	return out
}

// num is jsii.Number for an int.
func num(n int) *float64 { f := float64(n); return &f }

// itoa formats a status code as CloudFormation holds it.
func itoa(n int) string { return strconv.Itoa(n) }
