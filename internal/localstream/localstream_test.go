package localstream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/localstream"
	"github.com/keygate/keygate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func put(t *testing.T, db *dynamodb.Client, table, pk string, item map[string]ddb.AttributeValue) {
	t.Helper()
	for k, v := range store.ItemKey(pk, "X") {
		item[k] = v
	}
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
		t.Fatal(err)
	}
}

// The poller delivers every change of the table, in order, as the events
// Lambda delivers, with every attribute type as DynamoDB has it, empty
// maps included (DynamoDB Local writes those in a form the SDK misreads);
// a batch the handler fails is delivered again, and nothing after it is
// delivered before it succeeds; a filtered record is passed over.
func TestDeliversTheStreamInOrderUntilTaken(t *testing.T) {
	db, table := dynamotest.Table(t)
	ctx := context.Background()
	put(t, db, table, "a", map[string]ddb.AttributeValue{
		"empty": &ddb.AttributeValueMemberM{Value: map[string]ddb.AttributeValue{}},
		"flag":  &ddb.AttributeValueMemberBOOL{Value: true},
		"n":     &ddb.AttributeValueMemberN{Value: "1"},
		"m":     &ddb.AttributeValueMemberM{Value: map[string]ddb.AttributeValue{"inner": &ddb.AttributeValueMemberM{Value: map[string]ddb.AttributeValue{}}}},
		"l":     &ddb.AttributeValueMemberL{Value: []ddb.AttributeValue{&ddb.AttributeValueMemberS{Value: "x"}}},
		"ss":    &ddb.AttributeValueMemberSS{Value: []string{"p", "q"}},
	})
	put(t, db, table, "skip", map[string]ddb.AttributeValue{})
	put(t, db, table, "b", map[string]ddb.AttributeValue{"n": &ddb.AttributeValueMemberN{Value: "2"}})
	arn, err := localstream.StreamARN(ctx, db, table)
	if err != nil {
		t.Fatal(err)
	}
	var got []events.DynamoDBEventRecord
	fail := true
	p := localstream.New(localstream.Client(dynamotest.Endpoint(t)), arn, func(ctx context.Context, ev events.DynamoDBEvent) error {
		if fail {
			fail = false
			return errors.New("injected failure")
		}
		got = append(got, ev.Records...)
		return nil
	}, localstream.Options{BatchSize: 1, Filter: func(r events.DynamoDBEventRecord) bool {
		return r.Change.Keys["pk"].String() != "skip"
	}})
	if err := p.Drain(ctx); err == nil {
		t.Fatal("the failed batch was not reported")
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Change.Keys["pk"].String() != "a" || got[1].Change.Keys["pk"].String() != "b" {
		t.Fatalf("delivered %d records: %+v", len(got), got)
	}
	img := got[0].Change.NewImage
	if got[0].EventName != "INSERT" || got[0].EventSourceArn != arn || got[0].Change.SequenceNumber == "" {
		t.Fatalf("record: %+v", got[0])
	}
	if e := img["empty"]; e.DataType() != events.DataTypeMap || len(e.Map()) != 0 {
		t.Fatalf("an empty map came through as %v", e.DataType())
	}
	if inner := img["m"].Map()["inner"]; inner.DataType() != events.DataTypeMap || len(inner.Map()) != 0 {
		t.Fatalf("a nested empty map came through as %v", inner.DataType())
	}
	if !img["flag"].Boolean() || img["n"].Number() != "1" || img["l"].List()[0].String() != "x" || len(img["ss"].StringSet()) != 2 {
		t.Fatalf("image: %+v", img)
	}
}
