package cli

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

// 'keygate usage --by key' follows every page of the owner's per-key
// breakdown and prints it as one answer: JSON with no cursor, CSV with
// the admin API's columns, or a table with the range's totals.
func TestOwnerUsageFollowsEveryPage(t *testing.T) {
	pages := []string{
		`{"ownerId":"acme","from":"2026-11-01","to":"2026-11-02","total":9,"credits":13,
		  "days":[{"date":"2026-11-01","count":5,"credits":9},{"date":"2026-11-02","count":4,"credits":4}],
		  "keys":[{"date":"2026-11-01","keyId":"key_a","count":3,"credits":3},{"date":"2026-11-01","keyId":"key_b","count":2,"credits":6}],
		  "nextCursor":"c1"}`,
		`{"ownerId":"acme","from":"2026-11-01","to":"2026-11-02","total":9,"credits":13,
		  "days":[{"date":"2026-11-01","count":5,"credits":9},{"date":"2026-11-02","count":4,"credits":4}],
		  "keys":[{"date":"2026-11-02","keyId":"key_a","count":4,"credits":4}]}`,
	}
	api := newLocalAPI(t, func(n int, r seen) reply { return reply{status: 200, body: pages[n%2]} })
	res := runCLI(t, local(api), "usage", "--owner", "acme", "--from", "2026-11-01", "--to", "2026-11-02", "--by", "key", "--output", "csv")
	if res.code != 0 {
		t.Fatal(res)
	}
	rows, err := csv.NewReader(strings.NewReader(res.stdout)).ReadAll()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != "date,keyId,count,credits" ||
		strings.Join(rows[2], ",") != "2026-11-01,key_b,2,6" || strings.Join(rows[3], ",") != "2026-11-02,key_a,4,4" {
		t.Fatalf("CSV: %v %v\n%s", rows, err, res.stdout)
	}
	if !strings.Contains(res.stdout, "\r\n") {
		t.Fatal("CSV lines must end in CRLF (RFC 4180)")
	}
	reqs := api.requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1/owners/acme/usage" || reqs[0].RawQuery != "by=key&from=2026-11-01&to=2026-11-02" ||
		reqs[1].RawQuery != "by=key&cursor=c1&from=2026-11-01&to=2026-11-02" {
		t.Fatalf("requests: %+v", reqs)
	}

	res = runCLI(t, local(api), "usage", "--owner", "acme", "--by", "key", "--output", "json")
	var all struct {
		Keys       []map[string]any `json:"keys"`
		NextCursor *string          `json:"nextCursor"`
		Total      int64            `json:"total"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &all); err != nil || len(all.Keys) != 3 || all.NextCursor != nil || all.Total != 9 {
		t.Fatalf("JSON: %v %s", err, res.stdout)
	}
	res = runCLI(t, local(api), "usage", "--owner", "acme", "--output", "table")
	mustContain(t, "table", res.stdout, "DATE", "REQUESTS", "CREDITS", "2026-11-01", "5", "9", "total", "13")
}

// Bad usage flags are refused before any request.
func TestUsageBadFlags(t *testing.T) {
	api := newLocalAPI(t, func(int, seen) reply { return reply{status: 500} })
	for args, want := range map[string]string{
		"usage":                       "--owner: is required",
		"usage --owner a%20b":         "--owner: must be",
		"usage --owner acme --by day": "--by: must be key",
		"usage --owner acme --from 2026-11-02 --to 2026-11-01": "--to must not be before --from",
		"usage --owner acme --from 2025-01-01 --to 2026-11-01": "at most 366 days",
		"keys list --owner acme --output csv":                  "only 'keys usage' and 'usage' write CSV",
		"usage --owner acme --output yaml":                     "--output: must be json or table",
	} {
		res := runCLI(t, local(api), strings.Fields(args)...)
		if res.code != ExitUsage || !strings.Contains(res.stderr, want) {
			t.Errorf("%s: %v, want exit %d and %q", args, res, ExitUsage, want)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Fatalf("%d requests sent for bad flags", n)
	}
}
