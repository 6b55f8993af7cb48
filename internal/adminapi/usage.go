package adminapi

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/wire"
)

// usageRange reads from and to (UTC days, both included): by default the
// 30 days to today, or to the given to; at most wire.MaxUsageDays.
func (a *API) usageRange(q url.Values) (from, to time.Time, err error) {
	today := a.o.Now().UTC().Truncate(24 * time.Hour)
	to, from = today, today.AddDate(0, 0, -29)
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.DateOnly, v); err != nil {
			return from, to, fault.Fieldf("to", "%s", "must be a date such as 2026-11-30")
		}
		if q.Get("from") == "" {
			from = to.AddDate(0, 0, -29)
		}
	}
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.DateOnly, v); err != nil {
			return from, to, fault.Fieldf("from", "%s", "must be a date such as 2026-11-01")
		}
	}
	if to.Before(from) {
		return from, to, fault.Fieldf("to", "%s", "must not be before from")
	}
	if to.Sub(from) >= wire.MaxUsageDays*24*time.Hour {
		return from, to, fault.Fieldf("from", "the range may cover at most %d days", wire.MaxUsageDays)
	}
	return from, to, nil
}

// wantsCSV reports whether the request's Accept header prefers text/csv to
// application/json (by quality; on a tie, the one listed first); without
// an Accept header, or when it names neither, the answer is JSON.
func wantsCSV(r *http.Request) bool {
	first, csvQ, jsonQ := "", -1.0, -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		switch mt {
		case "text/csv":
			csvQ = max(csvQ, q)
		case "application/json", "application/*", "*/*":
			jsonQ = max(jsonQ, q)
		default:
			continue
		}
		if first == "" && q > 0 {
			first = mt
		}
	}
	return csvQ > 0 && (csvQ > jsonQ || csvQ == jsonQ && first == "text/csv")
}

// writeCSV answers rows under header as text/csv.
func writeCSV(w http.ResponseWriter, header []string, rows [][]string) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return wire.WriteCSV(w, header, rows)
}

// wireDays converts a store's days and adds them up.
func wireDays(days []store.DayCount) (out []wire.UsageDay, total, credits int64) {
	out = make([]wire.UsageDay, 0, len(days))
	for _, d := range days {
		out = append(out, wire.UsageDay{Date: d.Day, Count: d.Count, Credits: d.Credits})
		total, credits = total+d.Count, credits+d.Credits
	}
	return out, total, credits
}

// usage answers GET /v1/keys/{id}/usage: the key's days, zero-filled; as
// CSV one row per day.
func (a *API) usage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to"); err != nil {
		return err
	}
	from, to, err := a.usageRange(q)
	if err != nil {
		return err
	}
	days, err := a.o.Store.Usage(r.Context(), pathID(r), from, to)
	if err != nil {
		return err
	}
	out := wire.Usage{KeyID: pathID(r), From: from.Format(time.DateOnly), To: to.Format(time.DateOnly)}
	out.Days, out.Total, out.Credits = wireDays(days)
	if wantsCSV(r) {
		rows := make([][]string, len(out.Days))
		for i, d := range out.Days {
			rows[i] = wire.CSVKeyDay(wire.KeyUsageDay{Date: d.Date, KeyID: out.KeyID, Count: d.Count, Credits: d.Credits})
		}
		return writeCSV(w, wire.CSVKeyDays, rows)
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
	return nil
}

// ownerUsage answers GET /v1/owners/{ownerId}/usage: the owner's days
// (zero-filled) and, with by=key, a page of its keys' days with usage. As
// CSV, one row per day, or per day and key with by=key; a CSV page links
// the next one (Link: <?...>; rel="next").
func (a *API) ownerUsage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to", "by", "limit", "cursor"); err != nil {
		return err
	}
	owner := r.PathValue("ownerId")
	if err := key.ValidateOwner(owner); err != nil {
		return err
	}
	from, to, err := a.usageRange(q)
	if err != nil {
		return err
	}
	byKey := false
	switch q.Get("by") {
	case "":
	case "key":
		byKey = true
	default:
		return fault.Fieldf("by", "%s", `must be "key"`)
	}
	if !byKey && (q.Has("limit") || q.Has("cursor")) {
		return fault.Fieldf("by", "%s", "limit and cursor page the per-key breakdown: give by=key")
	}
	limit := store.MaxUsageRows
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxUsageRows {
			return fault.Fieldf("limit", "must be a whole number from 1 to %d", store.MaxUsageRows)
		}
		limit = n
	}
	out := wire.OwnerUsage{OwnerID: owner, From: from.Format(time.DateOnly), To: to.Format(time.DateOnly)}
	csvOut := wantsCSV(r)
	if !byKey || !csvOut { // a per-key CSV page has no daily totals
		days, err := a.o.Store.OwnerUsage(r.Context(), owner, from, to)
		if err != nil {
			return err
		}
		out.Days, out.Total, out.Credits = wireDays(days)
	}
	if byKey {
		page, err := a.o.Store.OwnerKeyUsage(r.Context(), owner, from, to, limit, q.Get("cursor"))
		if err != nil {
			return err
		}
		out.Keys = make([]wire.KeyUsageDay, 0, len(page.Rows))
		for _, row := range page.Rows {
			out.Keys = append(out.Keys, wire.KeyUsageDay{Date: row.Day, KeyID: row.KeyID, Count: row.Count, Credits: row.Credits})
		}
		out.NextCursor = page.Next
	}
	switch {
	case !csvOut:
		httpedge.WriteJSON(w, http.StatusOK, out)
		return nil
	case !byKey:
		rows := make([][]string, len(out.Days))
		for i, d := range out.Days {
			rows[i] = wire.CSVDay(d)
		}
		return writeCSV(w, wire.CSVDays, rows)
	}
	if out.NextCursor != "" {
		next := url.Values{"from": {out.From}, "to": {out.To}, "by": {"key"}, "limit": {strconv.Itoa(limit)}, "cursor": {out.NextCursor}}
		w.Header().Set("Link", "<?"+next.Encode()+`>; rel="next"`)
	}
	rows := make([][]string, len(out.Keys))
	for i, k := range out.Keys {
		rows[i] = wire.CSVKeyDay(k)
	}
	return writeCSV(w, wire.CSVKeyDays, rows)
}
