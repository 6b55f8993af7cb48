package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/schema"
)

// ExchangePrefix starts the partition key of a key's token exchange
// counters (see TokenExchangePK): the stack limits the token function's
// writes to it.
const ExchangePrefix = "TOKENX#"

// ExchangeWindow is the window token exchanges are counted in: a fixed
// minute aligned to the Unix epoch, as rate limits are.
const ExchangeWindow = time.Minute

// exchangeKeep is how long a window's counter outlives its window before
// DynamoDB's TTL deletes it (TTL deletion is lazy, and the counter is
// never read once its window ended).
const exchangeKeep = time.Hour

// TokenExchangePK is the partition key of key id's token exchange
// counters: one item per window, sort key the window's start (Unix
// seconds).
func TokenExchangePK(keyID string) string { return ExchangePrefix + keyID }

// CountTokenExchange counts one token exchange of key keyID in the window
// of now if fewer than limit were counted in it, with one conditional
// UpdateItem (exact under any number of concurrent exchanges). It returns
// whether the exchange may go ahead, and otherwise when the window ends.
// An exchange refused counts nothing.
func (s *Store) CountTokenExchange(ctx context.Context, keyID string, now time.Time, limit int64) (bool, time.Time, error) {
	start := now.Truncate(ExchangeWindow)
	end := start.Add(ExchangeWindow)
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      keyOf(TokenExchangePK(keyID), strconv.FormatInt(start.Unix(), 10)),
		UpdateExpression:         aws.String("ADD #n :one SET #t = :ttl"),
		ConditionExpression:      aws.String("attribute_not_exists(#n) OR #n < :limit"),
		ExpressionAttributeNames: map[string]string{"#n": "n", "#t": schema.TTL},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":one": num(1), ":limit": num(limit), ":ttl": num(end.Add(exchangeKeep).Unix()),
		},
	})
	var ccf *ddb.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, end, nil
	}
	if err != nil {
		return false, time.Time{}, mapErr(err, "count token exchange")
	}
	return true, time.Time{}, nil
}
