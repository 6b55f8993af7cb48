package store

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/schema"
)

// change is an update of one item, built a piece at a time: attributes to
// set or remove and conditions, with generated placeholder names.
type change struct {
	names  map[string]string
	values map[string]ddb.AttributeValue
	set    []string
	remove []string
	cond   []string
	n      int
	err    error
}

func newChange() *change {
	return &change{names: map[string]string{}, values: map[string]ddb.AttributeValue{}}
}

// name returns the placeholder of an attribute name.
func (c *change) name(attr string) string {
	for p, a := range c.names {
		if a == attr {
			return p
		}
	}
	p := "#n" + strconv.Itoa(len(c.names))
	c.names[p] = attr
	return p
}

// value returns a placeholder for v.
func (c *change) value(v ddb.AttributeValue) string {
	p := ":v" + strconv.Itoa(c.n)
	c.n++
	c.values[p] = v
	return p
}

// put sets attr to v, or removes it when v encodes as empty (a zero
// number, an empty string, list or map, or nil).
func (c *change) put(attr string, v any) {
	av, err := attributevalue.Marshal(v)
	if err != nil {
		c.err = fault.Wrap(fault.Internal, err, "encode %s", attr)
		return
	}
	if isEmpty(av) {
		c.remove = append(c.remove, c.name(attr))
		return
	}
	c.set = append(c.set, c.name(attr)+" = "+c.value(av))
}

// putAll puts every attribute of m, in name order (stable expressions, for
// readable logs).
func (c *change) putAll(m map[string]any) {
	attrs := make([]string, 0, len(m))
	for a := range m {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	for _, a := range attrs {
		c.put(a, m[a])
	}
}

// bump increments the version.
func (c *change) bump() {
	v := c.name("version")
	c.set = append(c.set, v+" = "+v+" + "+c.value(num(1)))
}

// ttl sets the item's ttl to t, or removes it for the zero time. Every
// change of a key's ttl goes through keyChange.ttl, so that both of its
// items always carry the same one.
func (c *change) ttl(t time.Time) {
	if t.IsZero() {
		c.remove = append(c.remove, c.name(schema.TTL))
		return
	}
	c.set = append(c.set, c.name(schema.TTL)+" = "+c.value(num(t.Unix())))
}

// when adds a condition; in it, #attr stands for attribute attr's
// placeholder and each ? for the next of vs.
func (c *change) when(cond string, vs ...ddb.AttributeValue) {
	var b strings.Builder
	for i := 0; i < len(cond); i++ {
		switch ch := cond[i]; {
		case ch == '?':
			b.WriteString(c.value(vs[0]))
			vs = vs[1:]
		case ch == '#':
			j := i + 1
			for j < len(cond) && (isWord(cond[j])) {
				j++
			}
			b.WriteString(c.name(cond[i+1 : j]))
			i = j - 1
		default:
			b.WriteByte(ch)
		}
	}
	c.cond = append(c.cond, b.String())
}

func isWord(ch byte) bool {
	return ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
}

// expression returns the update expression.
func (c *change) expression() string {
	var parts []string
	if len(c.set) > 0 {
		parts = append(parts, "SET "+strings.Join(c.set, ", "))
	}
	if len(c.remove) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(c.remove, ", "))
	}
	return strings.Join(parts, " ")
}

// update returns the change as a transaction's update of the item at pk,
// sk, returning the old item when its condition fails.
func (c *change) update(table, pk, sk string) (*ddb.Update, error) {
	if c.err != nil {
		return nil, c.err
	}
	u := &ddb.Update{
		TableName: aws.String(table), Key: keyOf(pk, sk),
		UpdateExpression:                    aws.String(c.expression()),
		ExpressionAttributeNames:            c.names,
		ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(c.values) > 0 {
		u.ExpressionAttributeValues = c.values
	}
	if len(c.cond) > 0 {
		u.ConditionExpression = aws.String(strings.Join(c.cond, " AND "))
	}
	return u, nil
}

// check returns the change's conditions alone, as a transaction's
// condition check of the item at pk, sk.
func (c *change) check(table, pk, sk string) *ddb.ConditionCheck {
	cc := &ddb.ConditionCheck{
		TableName: aws.String(table), Key: keyOf(pk, sk),
		ConditionExpression:      aws.String(strings.Join(c.cond, " AND ")),
		ExpressionAttributeNames: c.names,
	}
	if len(c.values) > 0 {
		cc.ExpressionAttributeValues = c.values
	}
	return cc
}

// keyChange is an admin change of one key: its record item and its hot
// item, written together in one transaction so that they never disagree.
type keyChange struct {
	id   string
	hash apikey.Hash
	rec  *change
	hot  *change
}

func newKeyChange(id string, h apikey.Hash) *keyChange {
	return &keyChange{id: id, hash: h, rec: newChange(), hot: newChange()}
}

// both puts attr on both items.
func (k *keyChange) both(attr string, v any) {
	k.rec.put(attr, v)
	k.hot.put(attr, v)
}

// ttl sets (or, for the zero time, removes) the ttl of both of the key's
// items: DynamoDB deletes them together, never one without the other.
func (k *keyChange) ttl(t time.Time) {
	k.rec.ttl(t)
	k.hot.ttl(t)
}

// items returns the transaction's items: the record item's update first,
// then the hot item's (an update when it changes anything, a condition
// check when it only has conditions, nothing otherwise).
func (k *keyChange) items(table string) ([]ddb.TransactWriteItem, error) {
	ru, err := k.rec.update(table, RecordPK(k.id), idSK)
	if err != nil {
		return nil, err
	}
	out := []ddb.TransactWriteItem{{Update: ru}}
	switch {
	case len(k.hot.set)+len(k.hot.remove) > 0:
		hu, err := k.hot.update(table, KeyPK(k.hash), keySK)
		if err != nil {
			return nil, err
		}
		out = append(out, ddb.TransactWriteItem{Update: hu})
	case len(k.hot.cond) > 0:
		out = append(out, ddb.TransactWriteItem{ConditionCheck: k.hot.check(table, KeyPK(k.hash), keySK)})
	}
	return out, nil
}

func isEmpty(av ddb.AttributeValue) bool {
	switch v := av.(type) {
	case *ddb.AttributeValueMemberNULL:
		return true
	case *ddb.AttributeValueMemberS:
		return v.Value == ""
	case *ddb.AttributeValueMemberN:
		return v.Value == "0"
	case *ddb.AttributeValueMemberL:
		return len(v.Value) == 0
	case *ddb.AttributeValueMemberM:
		return len(v.Value) == 0
	}
	return false
}
