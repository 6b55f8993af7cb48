package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

// usageRange registers --from and --to on c, marks c as a command that
// writes CSV, and returns a function that checks the two (after parsing)
// and returns them as query parameters.
func usageRange(c *command) func() (url.Values, error) {
	var from, to dayFlag
	c.fs.Var(&from, "from", "first day (UTC), e.g. 2026-11-01 (default: 29 days before --to)")
	c.fs.Var(&to, "to", "last day (UTC), e.g. 2026-11-30 (default: today)")
	c.csv = true
	return func() (url.Values, error) {
		if from.day != "" && to.day != "" {
			if to.t.Before(from.t) {
				return nil, usagef("--to must not be before --from")
			}
			if to.t.Sub(from.t) >= wire.MaxUsageDays*24*time.Hour {
				return nil, usagef("--from, --to: at most %d days at once", wire.MaxUsageDays)
			}
		}
		q := url.Values{}
		if from.day != "" {
			q.Set("from", from.day)
		}
		if to.day != "" {
			q.Set("to", to.day)
		}
		return q, nil
	}
}

func (a *app) keysUsage(ctx context.Context, args []string) error {
	c := a.command("keys usage", "keys usage ID [--from DAY] [--to DAY]")
	rng := usageRange(c)
	resp, err := c.onKey(ctx, args, func(id string) (request, error) {
		q, err := rng()
		return request{method: http.MethodGet, path: wire.KeyPath(id, "/usage"), query: q}, err
	})
	if err != nil {
		return err
	}
	var u wire.Usage
	switch a.outputFormat() {
	case "json":
		return writeJSON(a.stdout, resp.body)
	case "csv":
		if err := json.Unmarshal(resp.body, &u); err != nil {
			return errUnexpected
		}
		rows := make([][]string, len(u.Days))
		for i, d := range u.Days {
			rows[i] = wire.CSVKeyDay(wire.KeyUsageDay{Date: d.Date, KeyID: u.KeyID, Count: d.Count, Credits: d.Credits})
		}
		return wire.WriteCSV(a.stdout, wire.CSVKeyDays, rows)
	}
	if err := json.Unmarshal(resp.body, &u); err != nil {
		return errUnexpected
	}
	return a.writeDays(u.From, u.To, u.Days, u.Total, u.Credits)
}

// ownerUsage is 'keygate usage': an owner's usage per day, or per key and
// day with --by key (every page, merged into one answer).
func (a *app) ownerUsage(ctx context.Context, args []string) error {
	c := a.command("usage", "usage --owner OWNER [--from DAY] [--to DAY] [--by key]")
	owner := c.fs.String("owner", "", "the owner whose usage to show (required)")
	by := c.fs.String("by", "", "key: one row per key and day (only key-days with usage)")
	rng := usageRange(c)
	if _, err := c.parse(args); err != nil {
		return err
	}
	if err := key.ValidateOwner(*owner); err != nil {
		return invalid(err)
	}
	if *by != "" && *by != "key" {
		return usagef("--by: must be key")
	}
	q, err := rng()
	if err != nil {
		return err
	}
	if *by == "key" {
		q.Set("by", "key")
	}
	cl, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	var all wire.OwnerUsage
	for page := 0; ; page++ {
		resp, err := cl.do(ctx, request{method: http.MethodGet, path: "/v1/owners/" + url.PathEscape(*owner) + "/usage", query: q})
		if err != nil {
			return err
		}
		var u wire.OwnerUsage
		if err := json.Unmarshal(resp.body, &u); err != nil {
			return errUnexpected
		}
		if page == 0 {
			all = u
		} else {
			all.Keys = append(all.Keys, u.Keys...)
		}
		if u.NextCursor == "" {
			break
		}
		q.Set("cursor", u.NextCursor)
	}
	all.NextCursor = ""
	if *by == "key" && all.Keys == nil {
		all.Keys = []wire.KeyUsageDay{}
	}
	switch f := a.outputFormat(); {
	case f == "json":
		b, err := json.Marshal(all)
		if err != nil {
			return err
		}
		return writeJSON(a.stdout, b)
	case f == "csv" && *by == "key":
		rows := make([][]string, len(all.Keys))
		for i, k := range all.Keys {
			rows[i] = wire.CSVKeyDay(k)
		}
		return wire.WriteCSV(a.stdout, wire.CSVKeyDays, rows)
	case f == "csv":
		rows := make([][]string, len(all.Days))
		for i, d := range all.Days {
			rows[i] = wire.CSVDay(d)
		}
		return wire.WriteCSV(a.stdout, wire.CSVDays, rows)
	case *by == "key":
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "DATE\tKEY\tREQUESTS\tCREDITS\t")
		for _, d := range all.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\n", cell(d.Date), cell(d.KeyID), d.Count, d.Credits)
		}
		fmt.Fprintf(tw, "total %s..%s\t\t%d\t%d\t\n", cell(all.From), cell(all.To), all.Total, all.Credits)
		return tw.Flush()
	}
	return a.writeDays(all.From, all.To, all.Days, all.Total, all.Credits)
}

// writeDays writes usage as a table of days and the range's totals.
func (a *app) writeDays(from, to string, days []wire.UsageDay, total, credits int64) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DATE\tREQUESTS\tCREDITS\t")
	for _, d := range days {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", cell(d.Date), d.Count, d.Credits)
	}
	fmt.Fprintf(tw, "total %s..%s\t%d\t%d\t\n", cell(from), cell(to), total, credits)
	return tw.Flush()
}
