package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

// listView is a page of keys (GET /v1/keys).
type listView struct {
	Keys       []json.RawMessage `json:"keys"`
	NextCursor string            `json:"nextCursor"`
}

var errUnexpected = &exitError{code: ExitUnavailable,
	msg:  "the API answered with something that is not the expected JSON",
	hint: "check that the API URL points at the keygate admin API"}

// writeJSON writes an API body as indented JSON.
func writeJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return errUnexpected
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// writeKey writes one key (wire.Key, the API's answer): its JSON as the
// API sent it (so fields added later reach scripts without a new CLI), or
// a two-column table. The plaintext,
// when the body holds one, is part of either, once.
func (a *app) writeKey(raw []byte) error {
	if a.outputFormat() == "json" {
		return writeJSON(a.stdout, raw)
	}
	var k wire.Key
	if err := json.Unmarshal(raw, &k); err != nil {
		return errUnexpected
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	row := func(name, value string) {
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\n", name, value)
	}
	row("id", cell(k.ID))
	row("name", cell(k.Name))
	row("owner", cell(k.OwnerID))
	row("type", cell(string(k.Type)))
	row("environment", cell(string(k.Environment)))
	row("status", cell(string(k.Status)))
	row("hint", cell(k.Hint))
	row("scopes", cell(strings.Join(k.Scopes, " ")))
	row("created", cell(k.CreatedAt))
	if k.UpdatedAt != "" {
		row("updated", cell(k.UpdatedAt))
	}
	row("expires", cell(deref(k.ExpiresAt)))
	row("rate limits", cell(rateLimitsText(k.RateLimits)))
	row("quota", cell(quotaText(k.Quota)))
	if len(k.AllowedOrigins) > 0 {
		row("origins", cell(strings.Join(k.AllowedOrigins, " ")))
	}
	if len(k.AllowedCidrs) > 0 {
		row("cidrs", cell(strings.Join(k.AllowedCidrs, " ")))
	}
	if len(k.Metadata) > 0 {
		b, _ := json.Marshal(k.Metadata)
		row("metadata", cell(string(b)))
	}
	if k.Version > 0 {
		row("version", strconv.FormatInt(k.Version, 10))
	}
	if k.PreviousKeyID != "" {
		row("previous key", cell(k.PreviousKeyID))
	}
	if k.NextKeyID != "" {
		row("next key", cell(k.NextKeyID))
	}
	if k.Key != "" {
		row("key", cell(k.Key))
	}
	return tw.Flush()
}

func rateLimitsText(ls []key.RateLimit) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = formatRateLimit(l)
	}
	return strings.Join(parts, " ")
}

func quotaText(q *key.Quota) string {
	if q == nil {
		return ""
	}
	return fmt.Sprintf("%d/%s", q.Limit, q.Period)
}

// writeKeyTable writes keys as a table, one row each.
func (a *app) writeKeyTable(items []json.RawMessage) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tENV\tSTATUS\tHINT\tCREATED\tEXPIRES")
	for _, raw := range items {
		var k wire.Key
		if err := json.Unmarshal(raw, &k); err != nil {
			return errUnexpected
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(k.ID), dash(k.Name), dash(string(k.Type)),
			dash(string(k.Environment)), dash(string(k.Status)), dash(k.Hint), dash(k.CreatedAt), dash(deref(k.ExpiresAt)))
	}
	return tw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return cell(s)
}

// cell makes a value from the API safe to print on a terminal: control
// characters (which could move the cursor or change colours) become '?'.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\t' {
			return '?'
		}
		return r
	}, s)
}

// writeAudit writes audit records (wire.AuditEntry) as a table, one row
// each, oldest first; a change is field=from->to, comma separated.
func (a *app) writeAudit(items []json.RawMessage) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tVERSION\tACTOR\tCHANGES")
	for _, raw := range items {
		var r wire.AuditEntry
		if err := json.Unmarshal(raw, &r); err != nil {
			return errUnexpected
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", dash(r.At), dash(r.Action), r.Version, dash(r.Actor), dash(changesText(r.Changes)))
	}
	return tw.Flush()
}

// changesText writes an audit record's changes in field order: a
// {"from", "to"} change as field=from->to, anything else (a creation's
// settings) as field=value, values in JSON.
func changesText(changes map[string]any) string {
	fields := make([]string, 0, len(changes))
	for f := range changes {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		v := changes[f]
		if m, ok := v.(map[string]any); ok && len(m) <= 2 {
			to, hasTo := m["to"]
			from, hasFrom := m["from"]
			if hasTo && (hasFrom || len(m) == 1) {
				parts = append(parts, f+"="+jsonText(from)+"->"+jsonText(to))
				continue
			}
		}
		parts = append(parts, f+"="+jsonText(v))
	}
	return strings.Join(parts, ", ")
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}
