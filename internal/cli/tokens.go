package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
)

// wholeKey matches a string that is exactly one keygate key.
var wholeKey = regexp.MustCompile(`^(?:` + apikey.Pattern + `)$`)

// tokenBody is the optional body of POST /v1/tokens.
type tokenBody struct {
	TTLSeconds int64    `json:"ttlSeconds,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
}

// tokensCreate exchanges an API key for a short-lived access token. The
// route sits behind the keygate authorizer, not IAM: the request carries the
// key in x-api-key and is never SigV4-signed. The key is read from
// $KEYGATE_API_KEY or a file, never from a flag, so that it stays out of
// shell history and process listings.
func (a *app) tokensCreate(ctx context.Context, args []string) error {
	c := a.command("tokens create", "tokens create [--ttl D] [--scope S] [--key-file FILE]")
	fs := c.fs
	var ttl secondsFlag
	fs.Var(&ttl, "ttl", "token lifetime: seconds or a duration (15m) (default: the API's)")
	var scopes listFlag
	fs.Var(&scopes, "scope", "ask for only these of the key's scopes; repeat or comma-separate")
	keyFile := fs.String("key-file", "", "read the API key from this file, or from standard input with - (default: $KEYGATE_API_KEY)")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if ttl.set && ttl.n < 1 {
		return usagef("--ttl: at least 1 second")
	}
	if err := key.ValidateScopes(scopes); err != nil {
		return invalid(err)
	}
	plaintext := a.env("KEYGATE_API_KEY")
	source := "KEYGATE_API_KEY"
	if *keyFile != "" {
		b, err := a.readKeyFile(*keyFile)
		if err != nil {
			return err
		}
		plaintext, source = strings.TrimSpace(string(b)), "--key-file"
	}
	if plaintext == "" {
		return usagef("tokens create needs the API key to exchange: set KEYGATE_API_KEY or pass --key-file")
	}
	if !wholeKey.MatchString(plaintext) {
		return usagef("%s does not hold a keygate key (kg_sk_live_... as 'keys create' printed it)", source)
	}
	cl, err := a.connect(ctx, false)
	if err != nil {
		return err
	}
	resp, err := cl.do(ctx, request{method: http.MethodPost, path: "/v1/tokens",
		body: tokenBody{TTLSeconds: ttl.n, Scopes: scopes}, header: http.Header{"X-Api-Key": {plaintext}}})
	if err != nil {
		return err
	}
	if a.outputFormat() == "json" {
		return writeJSON(a.stdout, resp.body)
	}
	var t struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expiresAt"`
	}
	if err := json.Unmarshal(resp.body, &t); err != nil {
		return errUnexpected
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "token\t%s\nexpires\t%s\n", cell(t.Token), dash(t.ExpiresAt))
	return tw.Flush()
}

// maxKeyFile bounds what --key-file reads: a key is under 100 bytes, and a
// file or pipe much longer than that is not one.
const maxKeyFile = 4096

// readKeyFile reads --key-file: a file, or standard input for "-" (so a
// key can come from a secret manager's command without touching disk:
// vault kv get -field=key ... | keygate tokens create --key-file -).
func (a *app) readKeyFile(name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = a.deps.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("--key-file: cannot read %s", name)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, usagef("--key-file: cannot read %s", name)
	}
	if len(b) > maxKeyFile {
		return nil, usagef("--key-file: %s holds more than a key", name)
	}
	return b, nil
}
