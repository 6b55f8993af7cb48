package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
)

// cursorSigner seals DynamoDB's LastEvaluatedKey into an opaque cursor: the
// key as JSON, bound to the owner being listed and signed with HMAC-SHA-256,
// so a client can neither forge a cursor nor reuse one for another owner.
type cursorSigner struct{ secret []byte }

type cursorBody struct {
	Owner string            `json:"o"`
	Key   map[string]string `json:"k"`
}

func (c cursorSigner) mac(b []byte) []byte {
	m := hmac.New(sha256.New, append([]byte("keygate-cursor:"), c.secret...))
	m.Write(b)
	return m.Sum(nil)
}

func (c cursorSigner) seal(last map[string]ddb.AttributeValue, owner string) (string, error) {
	var k map[string]string
	if err := attributevalue.UnmarshalMap(last, &k); err != nil {
		return "", fault.Wrap(fault.Internal, err, "encode cursor")
	}
	b, err := json.Marshal(cursorBody{Owner: owner, Key: k})
	if err != nil {
		return "", fault.Wrap(fault.Internal, err, "encode cursor")
	}
	return base64.RawURLEncoding.EncodeToString(append(c.mac(b), b...)), nil
}

func (c cursorSigner) open(cursor, owner string) (map[string]ddb.AttributeValue, error) {
	bad := fault.Fieldf("cursor", "is not a cursor this listing returned")
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) <= sha256.Size {
		return nil, bad
	}
	sig, b := raw[:sha256.Size], raw[sha256.Size:]
	if !hmac.Equal(sig, c.mac(b)) {
		return nil, bad
	}
	var body cursorBody
	if err := json.Unmarshal(b, &body); err != nil || body.Owner != owner {
		return nil, bad
	}
	av, err := attributevalue.MarshalMap(body.Key)
	if err != nil {
		return nil, bad
	}
	return av, nil
}
