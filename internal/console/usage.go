package console

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

// Ranges are the usage ranges the pages offer, in days ending today (UTC).
var Ranges = []int{30, 90, 365}

// rangeDays reads ?days=, falling back to 30 for anything not offered.
func rangeDays(q url.Values) int {
	n, _ := strconv.Atoi(q.Get("days"))
	if slices.Contains(Ranges, n) {
		return n
	}
	return Ranges[0]
}

// span returns the first and last UTC day of the n days ending today.
func (c *Console) span(n int) (from, to time.Time) {
	to = c.o.Now().UTC().Truncate(24 * time.Hour)
	return to.AddDate(0, 0, -(n - 1)), to
}

// chart is what console.js draws: days on the x axis, one bar series per
// key (stacked), and an optional quota line.
type chart struct {
	Labels []string      `json:"labels"`
	Series []chartSeries `json:"series"`
	// Quota draws a horizontal line at this many requests a day (keys whose
	// quota refills daily); 0 draws none.
	Quota int64 `json:"quota,omitempty"`
	// QuotaLabel names the line in the legend.
	QuotaLabel string `json:"quotaLabel,omitempty"`
}

type chartSeries struct {
	Label string  `json:"label"`
	Data  []int64 `json:"data"`
}

// JSON is the chart for the canvas's data-chart attribute.
func (ch chart) JSON() string {
	b, _ := json.Marshal(ch)
	return string(b)
}

// Rows returns the chart as table rows, for the data table under each chart
// (what a screen reader reads, and anyone who wants the numbers).
func (ch chart) Rows() [][]int64 {
	rows := make([][]int64, len(ch.Labels))
	for i := range ch.Labels {
		for _, s := range ch.Series {
			rows[i] = append(rows[i], s.Data[i])
		}
	}
	return rows
}

// usageView is a key's usage chart section.
type usageView struct {
	KeyID string
	Days  int
	Total int64
	Chart chart
	// Quota is the key's quota, Used what its usage shows spent in the
	// current period (nil when the period cannot be read from per-day
	// usage: a total quota).
	Quota *key.Quota
	Used  *int64
	Error string
}

// keyUsageView reads a key's usage over the last days and, for a day or
// month quota, what the current period has used.
func (c *Console) keyUsageView(ctx context.Context, k *Key, days int) *usageView {
	v := &usageView{KeyID: k.ID, Days: days, Quota: k.Quota}
	from, to := c.span(days)
	u, p := c.keyUsage(ctx, k.ID, from, to)
	if p != nil {
		v.Error = p.Detail
		return v
	}
	s := chartSeries{Label: "requests"}
	for _, d := range u.Days {
		v.Chart.Labels = append(v.Chart.Labels, d.Date)
		s.Data = append(s.Data, d.Count)
	}
	v.Chart.Series = []chartSeries{s}
	v.Total = u.Total
	if k.Quota == nil {
		return v
	}
	var start time.Time
	switch k.Quota.Period {
	case key.Day:
		start = to
		v.Chart.Quota, v.Chart.QuotaLabel = k.Quota.Limit, "quota ("+strconv.FormatInt(k.Quota.Limit, 10)+"/day)"
	case key.Month:
		start = time.Date(to.Year(), to.Month(), 1, 0, 0, 0, 0, time.UTC)
	default:
		return v
	}
	var used int64
	if !start.Before(from) {
		for _, d := range u.Days {
			if d.Date >= start.Format(time.DateOnly) {
				used += d.Count
			}
		}
	} else if pu, p := c.keyUsage(ctx, k.ID, start, to); p == nil {
		used = pu.Total
	} else {
		return v
	}
	v.Used = &used
	return v
}

// OwnerUsage is an owner's daily usage, per key.
type OwnerUsage struct {
	OwnerID string
	From    time.Time
	To      time.Time
	Days    []string
	Keys    []KeyUsage
	Total   int64
	// Truncated is true when the owner has more keys than were named, or
	// more key-days than were read; Total is still the owner's whole total.
	Truncated bool
}

// KeyUsage is one key's part of an owner's usage.
type KeyUsage struct {
	ID, Name, State string
	Total           int64
	Counts          []int64
}

// maxOwnerKeys bounds the keys ownerUsage names; maxUsagePages bounds the
// pages of key-days it reads (1,000 rows each: 366 days of 1,000 keys).
const (
	maxOwnerKeys  = 1000
	maxUsagePages = 400
)

// ownerUsage returns an owner's daily usage per key for the UTC days
// from..to. The counts come from the owner usage API
// (GET /v1/owners/{ownerId}/usage?by=key, every page), which reads the
// owner's usage items, not each key's; the names and states come from the
// owner's key listing (every status: revoked keys were used too), so a key
// without usage in the range still gets its row.
func (c *Console) ownerUsage(ctx context.Context, owner string, from, to time.Time) (*OwnerUsage, *Problem) {
	out := &OwnerUsage{OwnerID: owner, From: from, To: to}
	index := map[string]int{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		index[d.Format(time.DateOnly)] = len(out.Days)
		out.Days = append(out.Days, d.Format(time.DateOnly))
	}
	counts := map[string][]int64{}
	q := url.Values{"from": {from.Format(time.DateOnly)}, "to": {to.Format(time.DateOnly)}, "by": {"key"}}
	for page := 0; ; page++ {
		var u wire.OwnerUsage
		if _, p := c.call(ctx, Request{Method: http.MethodGet, Path: "/v1/owners/" + url.PathEscape(owner) + "/usage", Query: q}, &u); p != nil {
			return nil, p
		}
		if page == 0 {
			out.Total = u.Total
		}
		for _, kd := range u.Keys {
			j, ok := index[kd.Date]
			if !ok {
				continue
			}
			if counts[kd.KeyID] == nil {
				counts[kd.KeyID] = make([]int64, len(out.Days))
			}
			counts[kd.KeyID][j] += kd.Count
		}
		if u.NextCursor == "" || u.NextCursor == q.Get("cursor") {
			break
		}
		if page+1 >= maxUsagePages {
			out.Truncated = true
			break
		}
		q.Set("cursor", u.NextCursor)
	}
	var keys []Key
	cursor := ""
	for {
		page, p := c.listKeys(ctx, owner, "", cursor, 100)
		if p != nil {
			return nil, p
		}
		keys = append(keys, page.Keys...)
		if page.NextCursor == "" || page.NextCursor == cursor {
			break
		}
		if len(keys) >= maxOwnerKeys {
			out.Truncated = true
			break
		}
		cursor = page.NextCursor
	}
	if len(keys) > maxOwnerKeys {
		keys, out.Truncated = keys[:maxOwnerKeys], true
	}
	row := func(ku KeyUsage) KeyUsage {
		ku.Counts = counts[ku.ID]
		if ku.Counts == nil {
			ku.Counts = make([]int64, len(out.Days))
		}
		for _, n := range ku.Counts {
			ku.Total += n
		}
		delete(counts, ku.ID)
		return ku
	}
	for _, k := range keys {
		out.Keys = append(out.Keys, row(KeyUsage{ID: k.ID, Name: k.Name, State: k.State}))
	}
	// Keys past the listing's bound still count: by id, without a name.
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		out.Keys = append(out.Keys, row(KeyUsage{ID: id}))
	}
	// The biggest users first; ties by name, then id, so the order is stable.
	slices.SortStableFunc(out.Keys, func(a, b KeyUsage) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// chartKeys is how many keys an owner's chart draws on their own; the rest
// are summed as one series.
const chartKeys = 8

// Chart is the owner's stacked chart: the keys with the most usage, one
// series each, and the others summed.
func (u *OwnerUsage) Chart() chart {
	ch := chart{Labels: u.Days}
	var other []int64
	others := 0
	for i, k := range u.Keys {
		if k.Total == 0 {
			continue
		}
		if i < chartKeys {
			ch.Series = append(ch.Series, chartSeries{Label: k.Name + " (" + k.ID + ")", Data: k.Counts})
			continue
		}
		if other == nil {
			other = make([]int64, len(u.Days))
		}
		others++
		for j, n := range k.Counts {
			other[j] += n
		}
	}
	if other != nil {
		ch.Series = append(ch.Series, chartSeries{Label: strconv.Itoa(others) + " other keys", Data: other})
	}
	return ch
}

// WriteCSV writes the usage as RFC 4180 CSV: a header row, then one row per
// day and key. A key name that a spreadsheet would read as a formula (=,
// +, -, @) is prefixed with an apostrophe, as OWASP advises for CSV
// exports; ids, days and counts never start with one.
func (u *OwnerUsage) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write([]string{"date", "ownerId", "keyId", "keyName", "requests"}); err != nil {
		return err
	}
	for j, day := range u.Days {
		for _, k := range u.Keys {
			if err := cw.Write([]string{day, spreadsheetSafe(u.OwnerID), k.ID, spreadsheetSafe(k.Name), strconv.FormatInt(k.Counts[j], 10)}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
