package localgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/gateway"
)

// authorization is API Gateway's reading of an authorizer's answer: allow
// (with the context), or the gateway response type that answers the client
// instead, with the context its template prints.
type authorization struct {
	allow     bool
	denial    gateway.ResponseType
	principal string
	// context holds the authorizer's context values as API Gateway hands
	// them on: as strings, the way templates print them and integrations
	// receive them.
	context map[string]string
}

// authorizerTimeout is API Gateway's limit on an authorizer's run.
const authorizerTimeout = 10 * time.Second

// authorize invokes the authorizer with the request's REQUEST event and
// judges its answer as API Gateway does:
//
//   - the error "Unauthorized": UNAUTHORIZED (401, no context);
//   - any other error, a timeout, a crash: AUTHORIZER_FAILURE;
//   - an answer that is not a policy response, or a context value that is
//     not a string, number or boolean: AUTHORIZER_CONFIGURATION_ERROR;
//   - a policy that denies the method ARN, or does not allow it:
//     ACCESS_DENIED, with the context;
//   - a policy that allows it: the request goes on, with the context.
func (g *Gateway) authorize(ctx context.Context, q *request) authorization {
	fn := g.functions[gateway.FnAuthorizer]
	if fn == nil {
		g.log.Error("no authorizer function in the local stack")
		return authorization{denial: gateway.AuthorizerConfigurationError}
	}
	payload, err := json.Marshal(q.authorizerEvent())
	if err != nil {
		return authorization{denial: gateway.AuthorizerConfigurationError}
	}
	out, err := fn.invoke(ctx, q.id, authorizerTimeout, payload)
	var ferr *errFunction
	switch {
	case errors.As(err, &ferr) && ferr.msg == "Unauthorized":
		return authorization{denial: gateway.Unauthorized}
	case err != nil:
		g.log.Warn("authorizer failed", "requestId", q.id, "error", err.Error())
		return authorization{denial: gateway.AuthorizerFailure}
	}
	var resp struct {
		PrincipalID    string         `json:"principalId"`
		PolicyDocument *policy        `json:"policyDocument"`
		Context        map[string]any `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil || resp.PolicyDocument == nil || resp.PrincipalID == "" {
		g.log.Warn("authorizer answer is not a policy response", "requestId", q.id)
		return authorization{denial: gateway.AuthorizerConfigurationError}
	}
	c, ok := contextStrings(resp.Context)
	if !ok {
		g.log.Warn("authorizer context holds a value that is not a string, number or boolean", "requestId", q.id)
		return authorization{denial: gateway.AuthorizerConfigurationError}
	}
	a := authorization{principal: resp.PrincipalID, context: c}
	if resp.PolicyDocument.allows(q.methodArn()) {
		a.allow = true
	} else {
		a.denial = gateway.AccessDenied
	}
	return a
}

// contextStrings turns an authorizer context into the strings API Gateway
// substitutes: strings as they are, numbers as written, booleans as
// true/false. Objects and arrays are refused, as API Gateway refuses them.
func contextStrings(m map[string]any) (map[string]string, bool) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		case nil:
			out[k] = ""
		default:
			return nil, false
		}
	}
	return out, true
}

// policy is an IAM policy document as an authorizer returns it. Action and
// Resource may each be a string or a list.
type policy struct {
	Statement []struct {
		Effect   string    `json:"Effect"`
		Action   stringSet `json:"Action"`
		Resource stringSet `json:"Resource"`
	} `json:"Statement"`
}

// stringSet decodes a string or a list of strings.
type stringSet []string

func (s *stringSet) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// allows evaluates the policy for execute-api:Invoke on arn as IAM does: an
// explicit Deny wins, then an Allow, and nothing matching is a denial.
func (p *policy) allows(arn string) bool {
	allowed := false
	for _, st := range p.Statement {
		if !anyMatch(st.Action, "execute-api:invoke") || !anyMatch(st.Resource, arn) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if strings.HasPrefix(s, "execute-api:") {
			p = strings.ToLower(p) // action names are case-insensitive
		}
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// wildcard matches s against an IAM pattern: * is any run of characters, ?
// is one character.
func wildcard(p, s string) bool {
	// Iterative matching with backtracking to the last star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
