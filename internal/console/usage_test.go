package console

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ownerAPI is an owner with n keys, listed two to a page; key i was used
// i+1 times on each of the last three days, which the owner usage API
// answers five key-days to a page.
func ownerAPI(n int) *fakeAPI {
	return &fakeAPI{answer: func(r Request) (int, any) {
		start := 0
		fmt.Sscan(r.Query.Get("cursor"), &start)
		switch r.Path {
		case "/v1/keys":
			var keys []any
			for i := start; i < min(start+2, n); i++ {
				keys = append(keys, wireKey(map[string]any{"id": fmt.Sprintf("key_%026d", i), "name": fmt.Sprintf("k%d", i)}))
			}
			page := map[string]any{"keys": keys}
			if start+2 < n {
				page["nextCursor"] = fmt.Sprint(start + 2)
			}
			return 200, page
		case "/v1/owners/acme/usage":
		default:
			return 404, map[string]any{"code": "not_found", "detail": "no such route " + r.Path}
		}
		if r.Query.Get("by") != "key" {
			return 400, map[string]any{"code": "invalid_request", "field": "by", "detail": "the console wants by=key"}
		}
		from, _ := time.Parse(time.DateOnly, r.Query.Get("from"))
		to, _ := time.Parse(time.DateOnly, r.Query.Get("to"))
		var days, keyDays []any
		total := 0
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			c := 0
			if to.Sub(d) < 3*24*time.Hour {
				for i := range n {
					c += i + 1
					keyDays = append(keyDays, map[string]any{"date": d.Format(time.DateOnly), "keyId": fmt.Sprintf("key_%026d", i), "count": i + 1})
				}
			}
			total += c
			days = append(days, map[string]any{"date": d.Format(time.DateOnly), "count": c})
		}
		page := map[string]any{"ownerId": "acme", "from": r.Query.Get("from"), "to": r.Query.Get("to"), "total": total, "days": days,
			"keys": keyDays[start:min(start+5, len(keyDays))]}
		if start+5 < len(keyDays) {
			page["nextCursor"] = fmt.Sprint(start + 5)
		}
		return 200, page
	}}
}

func TestOwnerUsageAddsUpEveryKeyOnEveryPage(t *testing.T) {
	api := ownerAPI(11)
	c, err := New(Options{API: api, Now: func() time.Time { return now }}, 4000)
	if err != nil {
		t.Fatal(err)
	}
	from, to := c.span(30)
	u, p := c.ownerUsage(t.Context(), "acme", from, to)
	if p != nil {
		t.Fatal(p)
	}
	// 11 keys: 3 days each of 1..11 requests.
	if len(u.Keys) != 11 || u.Total != 3*66 || len(u.Days) != 30 || u.Days[29] != "2026-11-30" {
		t.Fatalf("owner usage: %d keys, total %d, %d days ending %s", len(u.Keys), u.Total, len(u.Days), u.Days[len(u.Days)-1])
	}
	if u.Keys[0].Name != "k10" || u.Keys[0].Total != 33 || u.Keys[10].Total != 3 {
		t.Errorf("keys are not ordered by usage: %+v", u.Keys[0])
	}
	// 11 keys in 6 listing pages, 33 key-days in 7 usage pages: the
	// console reads the owner's usage, never each key's.
	if calls := len(api.requests()); calls != 6+7 {
		t.Errorf("the owner's usage took %d admin API calls, want 13 (6 listing pages, 7 usage pages)", calls)
	}
	ch := u.Chart()
	if len(ch.Series) != chartKeys+1 || ch.Series[chartKeys].Label != "3 other keys" {
		t.Errorf("the chart draws %d series, want the top %d and one for the rest", len(ch.Series), chartKeys)
	}
	var sum int64
	for _, s := range ch.Series {
		for _, n := range s.Data {
			sum += n
		}
	}
	if sum != u.Total {
		t.Errorf("the chart adds up to %d, the total is %d", sum, u.Total)
	}

	var buf bytes.Buffer
	if err := u.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	if len(rows) != 1+30*11 || strings.Join(rows[0], ",") != "date,ownerId,keyId,keyName,requests" {
		t.Fatalf("CSV: %d rows, header %v", len(rows), rows[0])
	}
	if got := strings.Join(rows[len(rows)-1], ","); got != "2026-11-30,acme,key_00000000000000000000000000,k0,1" {
		t.Errorf("last row %q", got)
	}
}

func TestTheCSVIsSafeToOpenInASpreadsheet(t *testing.T) {
	u := &OwnerUsage{OwnerID: "acme", Days: []string{"2026-11-30"}, Keys: []KeyUsage{
		{ID: "key_1", Name: `=HYPERLINK("http://evil.example")`, Counts: []int64{1}},
		{ID: "key_2", Name: "a, \"quoted\"\nname", Counts: []int64{2}},
	}}
	var buf bytes.Buffer
	if err := u.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\r\n") {
		t.Error("rows do not end with CRLF (RFC 4180)")
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rows[1][3] != `'=HYPERLINK("http://evil.example")` || rows[2][3] != "a, \"quoted\"\nname" {
		t.Errorf("names: %q, %q", rows[1][3], rows[2][3])
	}
}

func TestTheUsagePagesDownloadTheCSV(t *testing.T) {
	s := serve(t, ownerAPI(3))
	s.signIn(t)
	resp, body := s.get(t, "/usage.csv?owner=acme&days=90")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="usage-acme-2026-09-02-2026-11-30.csv"` {
		t.Fatalf("CSV download: %d %v", resp.StatusCode, resp.Header)
	}
	if n := strings.Count(body, "\r\n"); n != 1+90*3 {
		t.Errorf("the 90-day CSV of 3 keys has %d lines", n)
	}
	_, page := s.get(t, "/usage?owner=acme&days=90")
	for _, want := range []string{`href="/usage.csv?owner=acme&amp;days=90"`, "<strong>18</strong> requests", `id="owner-chart"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the usage page lacks %s", want)
		}
	}
}
