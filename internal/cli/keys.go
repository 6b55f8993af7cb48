package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

// plaintextWarning goes to stderr after a new key is printed. It does not
// hold the key.
const plaintextWarning = "warning: this is the only time this key is shown; keygate keeps only a hash of it. Store it in a secret manager now."

func (a *app) keysCreate(ctx context.Context, args []string) error {
	c := a.command("keys create", "keys create --name NAME --owner OWNER [flags]")
	fs := c.fs
	name := fs.String("name", "", "the key's name, for people (required)")
	owner := fs.String("owner", "", "owner id: the customer, team or service the key belongs to (required)")
	typ := newEnum("secret", string(key.Secret), string(key.Publishable))
	fs.Var(typ, "type", "secret (servers) or publishable (browsers, apps: read-only)")
	envir := newEnum("test", string(key.Live), string(key.Test))
	fs.Var(envir, "environment", "live or test")
	var scopes, origins, cidrs listFlag
	fs.Var(&scopes, "scope", "a scope the key grants; repeat or comma-separate")
	fs.Var(&origins, "allowed-origin", "an origin a publishable key may be used from (https://app.example.com); repeatable")
	fs.Var(&cidrs, "allowed-cidr", "a CIDR the key may be used from (203.0.113.0/24); repeatable")
	var stages listFlag
	fs.Var(&stages, "stage", "an API stage the key may be used on (prod); repeatable; default: any")
	var notBefore timeFlag
	fs.Var(&notBefore, "not-before", "the key works from this time on, RFC 3339 (2027-01-01T00:00:00Z)")
	var expires timeFlag
	fs.Var(&expires, "expires-at", "expiry as RFC 3339 (2027-01-31T00:00:00Z)")
	var ttl secondsFlag
	fs.Var(&ttl, "ttl", "expire this long after issue: seconds, a duration (15m, 12h) or days (30d); a session key")
	var limits rateLimitsFlag
	fs.Var(&limits, "rate-limit", "NAME=LIMIT/WINDOW, e.g. second=10/1s or day=10000/1d; repeatable")
	var quota quotaFlag
	fs.Var(&quota, "quota", "LIMIT/PERIOD with PERIOD day, month or total, e.g. 100000/month")
	meta := metadataFlag{}
	fs.Var(meta, "metadata", "KEY=VALUE (string values); repeatable; never put a secret here")
	var metaJSON jsonObjectFlag
	fs.Var(&metaJSON, "metadata-json", "metadata as a JSON object, instead of --metadata")
	idem := fs.String("idempotency-key", "", "makes a retry return the same key instead of a second one (default: a new random one)")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if expires.set && ttl.set {
		return usagef("give --expires-at or --ttl, not both")
	}
	if ttl.set && ttl.n < 1 {
		return usagef("--ttl: at least 1 second")
	}
	metadata, err := metadataOf(meta, metaJSON)
	if err != nil {
		return err
	}
	prefixes, err := key.ParseCIDRs(cidrs)
	if err != nil {
		return invalid(err)
	}
	k := key.Key{
		Name: *name, OwnerID: *owner, Type: key.Type(typ.value), Environment: key.Environment(envir.value),
		Scopes: scopes, NotBefore: notBefore.t, ExpiresAt: expires.t, RateLimits: limits, Quota: quota.q,
		AllowedOrigins: origins, AllowedCIDRs: prefixes, Stages: stages, Metadata: metadata,
	}
	if err := k.Validate(a.deps.now()); err != nil {
		return invalid(err)
	}
	ik, err := idempotencyKey(*idem, isSet(fs, "idempotency-key"))
	if err != nil {
		return err
	}
	body := wire.IssueRequest{
		Name: *name, OwnerID: *owner, Type: key.Type(typ.value), Environment: key.Environment(envir.value),
		Scopes: scopes, RateLimits: limits, Quota: quota.q,
		AllowedOrigins: origins, AllowedCidrs: cidrs, Stages: stages, Metadata: metadata,
	}
	if notBefore.set {
		body.NotBefore = &wire.Timestamp{Time: notBefore.t.UTC()}
	}
	if ttl.set {
		body.TTLSeconds = &ttl.n
	}
	if expires.set {
		body.ExpiresAt = &wire.Timestamp{Time: expires.t.UTC()}
	}
	cl, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	resp, err := cl.do(ctx, request{method: http.MethodPost, path: "/v1/keys", body: body,
		header: http.Header{"Idempotency-Key": {ik}}})
	if err != nil {
		return err
	}
	return a.writeIssued(resp.body)
}

// writeIssued prints a response that may hold a new plaintext key (create,
// rotate), then the warning that it will not be shown again.
func (a *app) writeIssued(raw []byte) error {
	if err := a.writeKey(raw); err != nil {
		return err
	}
	var k struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(raw, &k) == nil && k.Key != "" {
		fmt.Fprintln(a.stderr, plaintextWarning)
	}
	return nil
}

func metadataOf(kv metadataFlag, obj jsonObjectFlag) (map[string]any, error) {
	switch {
	case len(kv) > 0 && obj.m != nil:
		return nil, usagef("give --metadata or --metadata-json, not both")
	case obj.m != nil:
		return obj.m, nil
	case len(kv) > 0:
		return kv, nil
	}
	return nil, nil
}

func idempotencyKey(given string, set bool) (string, error) {
	if !set {
		return newIdempotencyKey(), nil
	}
	if err := checkIdempotencyKey(given); err != nil {
		return "", err
	}
	return given, nil
}

// keyID checks a key id argument before it goes into a URL.
func keyID(id string) (string, error) {
	if !key.ValidID(id) {
		return "", usagef("%q is not a key id (want %s and 26 characters, as 'keygate keys list' shows)", fault.Clip(cell(id), 40), key.IDPrefix)
	}
	return id, nil
}

// onKey runs a command on one key: it parses args (the command's flags,
// which it defined on c, and the key id), checks the id, and sends the
// request build makes for it (build may still refuse the flags: nothing is
// sent then). Every flag is checked before the network is touched.
func (c *command) onKey(ctx context.Context, args []string, build func(id string) (request, error)) (*response, error) {
	var req request
	return c.onKeyClient(ctx, args, func(id string) (err error) {
		req, err = build(id)
		return err
	}, func(ctx context.Context, cl *client, _ string) (*response, error) {
		return cl.do(ctx, req)
	})
}

// onKeyClient is onKey for a command that makes its own requests: check
// (when not nil) refuses bad flags before anything is sent, and run gets
// the connected client and the checked key id.
func (c *command) onKeyClient(ctx context.Context, args []string, check func(id string) error,
	run func(ctx context.Context, cl *client, id string) (*response, error)) (*response, error) {
	pos, err := c.parse(args, "ID")
	if err != nil {
		return nil, err
	}
	id, err := keyID(pos[0])
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(id); err != nil {
			return nil, err
		}
	}
	cl, err := c.a.connect(ctx, true)
	if err != nil {
		return nil, err
	}
	return run(ctx, cl, id)
}

func (a *app) keysGet(ctx context.Context, args []string) error {
	resp, err := a.command("keys get", "keys get ID").onKey(ctx, args, func(id string) (request, error) {
		return request{method: http.MethodGet, path: wire.KeyPath(id, "")}, nil
	})
	if err != nil {
		return err
	}
	return a.writeKey(resp.body)
}

// maxListLimit is the largest page the CLI asks for.
const maxListLimit = 100

func (a *app) keysList(ctx context.Context, args []string) error {
	c := a.command("keys list", "keys list --owner OWNER [--status S] [--environment E] [--limit N] [--cursor C | --all]")
	fs := c.fs
	owner := fs.String("owner", "", "list this owner's keys (required)")
	status := newEnum("", string(key.Active), string(key.Disabled), string(key.Revoked), string(key.Expired))
	fs.Var(status, "status", "only keys in this state: active, disabled, revoked or expired")
	envir := newEnum("", string(key.Live), string(key.Test))
	fs.Var(envir, "environment", "only keys of this environment: live or test")
	limit := fs.Int("limit", 0, fmt.Sprintf("keys per page, 1 to %d (default: the API's)", maxListLimit))
	cursor := fs.String("cursor", "", "continue from the cursor a previous page returned")
	all := fs.Bool("all", false, "follow the cursor through every page")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if err := key.ValidateOwner(*owner); err != nil {
		return invalid(err)
	}
	if isSet(fs, "limit") && (*limit < 1 || *limit > maxListLimit) {
		return usagef("--limit: from 1 to %d", maxListLimit)
	}
	if isSet(fs, "cursor") && (*cursor == "" || len(*cursor) > 2048) {
		return usagef("--cursor: the value a previous page returned as nextCursor")
	}
	q := url.Values{"ownerId": {*owner}}
	if status.value != "" {
		q.Set("status", status.value)
	}
	if envir.value != "" {
		q.Set("environment", envir.value)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	cl, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	var items []json.RawMessage
	seen := map[string]bool{}
	next := *cursor
	for {
		if next != "" {
			q.Set("cursor", next)
		}
		resp, err := cl.do(ctx, request{method: http.MethodGet, path: "/v1/keys", query: q})
		if err != nil {
			return err
		}
		var page listView
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return errUnexpected
		}
		if !*all {
			if a.outputFormat() == "json" {
				return writeJSON(a.stdout, resp.body)
			}
			if err := a.writeKeyTable(page.Keys); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(a.stderr, "more keys: run again with --cursor %s (or --all)\n", cell(page.NextCursor))
			}
			return nil
		}
		items = append(items, page.Keys...)
		if page.NextCursor == "" {
			break
		}
		if seen[page.NextCursor] {
			return &exitError{code: ExitUnavailable, msg: "the API returned the same cursor twice; stopping"}
		}
		seen[page.NextCursor] = true
		next = page.NextCursor
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	if a.outputFormat() == "json" {
		b, err := json.Marshal(map[string]any{"keys": items})
		if err != nil {
			return err
		}
		return writeJSON(a.stdout, b)
	}
	return a.writeKeyTable(items)
}

func (a *app) keysUpdate(ctx context.Context, args []string) error {
	c := a.command("keys update", "keys update ID [flags]")
	fs := c.fs
	name := fs.String("name", "", "new name")
	var scopes listFlag
	fs.Var(&scopes, "scope", "replace the scopes with these; repeat or comma-separate")
	noScopes := fs.Bool("no-scopes", false, "remove every scope")
	var limits rateLimitsFlag
	fs.Var(&limits, "rate-limit", "replace the rate limits: NAME=LIMIT/WINDOW, e.g. second=10/1s; repeatable")
	noLimits := fs.Bool("no-rate-limits", false, "remove every rate limit")
	var quota quotaFlag
	fs.Var(&quota, "quota", "replace the quota: LIMIT/PERIOD, e.g. 100000/month")
	noQuota := fs.Bool("no-quota", false, "remove the quota")
	meta := metadataFlag{}
	fs.Var(meta, "metadata", "replace the metadata: KEY=VALUE (string values); repeatable")
	var metaJSON jsonObjectFlag
	fs.Var(&metaJSON, "metadata-json", "replace the metadata with this JSON object")
	var origins, cidrs, stages listFlag
	fs.Var(&origins, "allowed-origin", "replace the allowed origins (https://app.example.com); repeatable")
	noOrigins := fs.Bool("no-allowed-origins", false, "remove every allowed origin")
	fs.Var(&cidrs, "allowed-cidr", "replace the allowed CIDRs (203.0.113.0/24); repeatable")
	noCIDRs := fs.Bool("no-allowed-cidrs", false, "remove every allowed CIDR: any source address")
	fs.Var(&stages, "stage", "replace the API stages the key may be used on; repeatable")
	noStages := fs.Bool("no-stages", false, "remove every stage: any stage")
	var notBefore timeFlag
	fs.Var(&notBefore, "not-before", "the key works from this time on, RFC 3339 (2027-01-01T00:00:00Z)")
	noNotBefore := fs.Bool("no-not-before", false, "remove the start time: the key works at once")
	var expires timeFlag
	fs.Var(&expires, "expires-at", "new expiry, RFC 3339 (2027-01-31T00:00:00Z)")
	noExpiry := fs.Bool("no-expiry", false, "remove the expiry")
	enable := fs.Bool("enable", false, "enable a disabled key")
	disable := fs.Bool("disable", false, "disable the key (reversible with --enable)")
	ifMatch := fs.String("if-match", "", "apply only if the key is still at this version (default: apply to the key as it is)")
	pos, err := c.parse(args, "ID")
	if err != nil {
		return err
	}
	id, err := keyID(pos[0])
	if err != nil {
		return err
	}
	for _, pair := range [][2]string{{"scope", "no-scopes"}, {"rate-limit", "no-rate-limits"}, {"quota", "no-quota"},
		{"expires-at", "no-expiry"}, {"not-before", "no-not-before"}, {"allowed-origin", "no-allowed-origins"},
		{"allowed-cidr", "no-allowed-cidrs"}, {"stage", "no-stages"}, {"enable", "disable"}, {"metadata", "metadata-json"}} {
		if isSet(fs, pair[0]) && isSet(fs, pair[1]) {
			return usagef("give --%s or --%s, not both", pair[0], pair[1])
		}
	}
	metadata, err := metadataOf(meta, metaJSON)
	if err != nil {
		return err
	}
	// Check the changed settings with the admin API's rules: a key whose
	// other settings are placeholders that pass.
	prefixes, err := key.ParseCIDRs(cidrs)
	if err != nil {
		return invalid(err)
	}
	probe := key.Key{Name: "x", OwnerID: "x", Type: key.Secret, Environment: key.Live,
		Scopes: scopes, RateLimits: limits, Quota: quota.q, Metadata: metadata, ExpiresAt: expires.t,
		NotBefore: notBefore.t, AllowedOrigins: origins, AllowedCIDRs: prefixes, Stages: stages}
	patch := map[string]any{}
	if isSet(fs, "name") {
		probe.Name = *name
		patch["name"] = *name
	}
	if isSet(fs, "scope") {
		patch["scopes"] = scopes
	}
	if *noScopes {
		patch["scopes"] = []string{}
	}
	if isSet(fs, "rate-limit") {
		patch["rateLimits"] = limits
	}
	if *noLimits {
		patch["rateLimits"] = []key.RateLimit{}
	}
	if quota.q != nil {
		patch["quota"] = quota.q
	}
	if *noQuota {
		patch["quota"] = nil
	}
	if metadata != nil {
		patch["metadata"] = metadata
	}
	if expires.set {
		patch["expiresAt"] = wire.Time(expires.t)
	}
	if *noExpiry {
		patch["expiresAt"] = nil
	}
	if notBefore.set {
		patch["notBefore"] = wire.Time(notBefore.t)
	}
	if *noNotBefore {
		patch["notBefore"] = nil
	}
	for _, l := range []struct {
		field string
		set   bool
		none  *bool
		v     []string
	}{{"allowedOrigins", isSet(fs, "allowed-origin"), noOrigins, origins}, {"allowedCidrs", isSet(fs, "allowed-cidr"), noCIDRs, cidrs},
		{"stages", isSet(fs, "stage"), noStages, stages}} {
		if l.set {
			patch[l.field] = l.v
		}
		if *l.none {
			patch[l.field] = []string{}
		}
	}
	if *enable {
		patch["enabled"] = true
	}
	if *disable {
		patch["enabled"] = false
	}
	if len(patch) == 0 {
		return usagef("keys update: nothing to change; give at least one of --name, --scope, --rate-limit, --quota, --metadata, --allowed-origin, --allowed-cidr, --stage, --not-before, --expires-at, --enable, --disable (or a --no-... flag)")
	}
	if err := probe.Validate(a.deps.now()); err != nil {
		return invalid(err)
	}
	header := http.Header{}
	if isSet(fs, "if-match") {
		version, err := ifMatchValue(*ifMatch)
		if err != nil {
			return err
		}
		header.Set("If-Match", version)
	}
	cl, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	// Without --if-match the change applies to the key as it is (the
	// admin API's If-Match is optional); with it, only to that version.
	resp, err := cl.do(ctx, request{method: http.MethodPatch, path: wire.KeyPath(id, ""), body: patch, header: header})
	if err != nil {
		return err
	}
	return a.writeKey(resp.body)
}

// ifMatchValue turns --if-match (a version such as 3, as 'keys get' shows,
// or an entity tag such as "3") into the If-Match header value: a quoted
// entity tag, as HTTP writes it.
func ifMatchValue(v string) (string, error) {
	bare := strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	if !isDigits(bare) || len(bare) > 19 {
		return "", usagef("--if-match: want the key's version, a number as 'keygate keys get ID' shows")
	}
	return `"` + bare + `"`, nil
}

func (a *app) keysRevoke(ctx context.Context, args []string) error {
	c := a.command("keys revoke", "keys revoke ID [--yes]")
	yes := c.fs.Bool("yes", false, "revoke without asking (a terminal asks first; a script is never asked)")
	resp, err := c.onKeyClient(ctx, args, nil, func(ctx context.Context, cl *client, id string) (*response, error) {
		if !*yes && a.deps.stdinTerminal() {
			if err := a.confirmRevoke(ctx, cl, id); err != nil {
				return nil, err
			}
		}
		return cl.do(ctx, request{method: http.MethodDelete, path: wire.KeyPath(id, "")})
	})
	if err != nil {
		return err
	}
	return a.writeKey(resp.body)
}

// confirmRevoke shows the key about to be revoked and asks, on stderr,
// whether to go on; anything but y or yes (or the end of input) stops.
// Revocation cannot be undone, so a person at a terminal confirms it;
// scripts (standard input not a terminal) are never asked.
func (a *app) confirmRevoke(ctx context.Context, cl *client, id string) error {
	got, err := cl.do(ctx, request{method: http.MethodGet, path: wire.KeyPath(id, "")})
	if err != nil {
		return err
	}
	var k wire.Key
	if err := json.Unmarshal(got.body, &k); err != nil {
		return errUnexpected
	}
	if k.Status == key.Revoked {
		return nil // revoking again changes nothing: nothing to confirm
	}
	fmt.Fprintf(a.stderr, "Revoke %s %q (owner %s, %s, %s)? It stops working for good; this cannot be undone. [y/N] ",
		cell(k.ID), cell(k.Name), cell(k.OwnerID), cell(string(k.Environment)), cell(string(k.Status)))
	line, _ := bufio.NewReader(io.LimitReader(a.deps.stdin, 256)).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	fmt.Fprintln(a.stderr)
	return &exitError{code: ExitAPI, msg: "revoke cancelled: the key was not changed",
		hint: "answer y to revoke, or pass --yes to revoke without being asked"}
}

// maxAuditPage is the largest page of audit records the CLI asks for.
const maxAuditPage = 100

func (a *app) keysAudit(ctx context.Context, args []string) error {
	c := a.command("keys audit", "keys audit ID [--limit N] [--cursor C | --all]")
	fs := c.fs
	limit := fs.Int("limit", 0, fmt.Sprintf("records per page, 1 to %d (default: the API's)", maxAuditPage))
	cursor := fs.String("cursor", "", "continue from the cursor a previous page returned")
	all := fs.Bool("all", false, "follow the cursor through every page")
	var records []json.RawMessage
	check := func(string) error {
		if isSet(fs, "limit") && (*limit < 1 || *limit > maxAuditPage) {
			return usagef("--limit: from 1 to %d", maxAuditPage)
		}
		if isSet(fs, "cursor") && (*cursor == "" || len(*cursor) > 2048) {
			return usagef("--cursor: the value a previous page returned as nextCursor")
		}
		return nil
	}
	_, err := c.onKeyClient(ctx, args, check, func(ctx context.Context, cl *client, id string) (*response, error) {
		q := url.Values{}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		next, seen := *cursor, map[string]bool{}
		for {
			if next != "" {
				q.Set("cursor", next)
			}
			resp, err := cl.do(ctx, request{method: http.MethodGet, path: wire.KeyPath(id, "/audit"), query: q})
			if err != nil {
				return nil, err
			}
			var page struct {
				Records    []json.RawMessage `json:"records"`
				NextCursor string            `json:"nextCursor"`
			}
			if err := json.Unmarshal(resp.body, &page); err != nil {
				return nil, errUnexpected
			}
			if !*all {
				if a.outputFormat() == "json" {
					return nil, writeJSON(a.stdout, resp.body)
				}
				if err := a.writeAudit(page.Records); err != nil {
					return nil, err
				}
				if page.NextCursor != "" {
					fmt.Fprintf(a.stderr, "more records: run again with --cursor %s (or --all)\n", cell(page.NextCursor))
				}
				return nil, nil
			}
			records = append(records, page.Records...)
			if page.NextCursor == "" {
				break
			}
			if seen[page.NextCursor] {
				return nil, &exitError{code: ExitUnavailable, msg: "the API returned the same cursor twice; stopping"}
			}
			seen[page.NextCursor], next = true, page.NextCursor
		}
		if records == nil {
			records = []json.RawMessage{}
		}
		if a.outputFormat() == "json" {
			b, err := json.Marshal(map[string]any{"records": records})
			if err != nil {
				return nil, err
			}
			return nil, writeJSON(a.stdout, b)
		}
		return nil, a.writeAudit(records)
	})
	return err
}

func (a *app) keysRotate(ctx context.Context, args []string) error {
	c := a.command("keys rotate", "keys rotate ID [--grace-period D] [--idempotency-key K]")
	fs := c.fs
	var grace secondsFlag
	fs.Var(&grace, "grace-period", "how long the old key keeps working: seconds, a duration (24h) or days (7d); 0 ends it at once (default: the API's)")
	idem := fs.String("idempotency-key", "", "makes a retry return the same new key instead of rotating twice (default: a new random one)")
	resp, err := c.onKey(ctx, args, func(id string) (request, error) {
		ik, err := idempotencyKey(*idem, isSet(fs, "idempotency-key"))
		if err != nil {
			return request{}, err
		}
		body := map[string]any{}
		if grace.set {
			body["gracePeriodSeconds"] = grace.n
		}
		return request{method: http.MethodPost, path: wire.KeyPath(id, "/rotate"), body: body,
			header: http.Header{"Idempotency-Key": {ik}}}, nil
	})
	if err != nil {
		return err
	}
	return a.writeIssued(resp.body)
}
