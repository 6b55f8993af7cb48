package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// pages are the parsed templates: one set per page, each the layout around
// that page's content, sharing every fragment (htmx requests get a fragment
// alone).
type pages struct {
	sets map[string]*template.Template
}

// pageNames are the pages; templates/<name>.html defines "page-<name>".
var pageNames = []string{"owners", "new", "key", "usage"}

func loadPages() (*pages, error) {
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err == nil {
			_, err = t.New("content").Parse(`{{template "page-` + name + `" .}}`)
		}
		if err != nil {
			return nil, err
		}
		p.sets[name] = t
	}
	return p, nil
}

// view is what every template gets: the page's own data and what the
// layout needs.
type view struct {
	Title  string
	Nav    string
	CSRF   string
	Target string
	Data   any
}

// render writes a page, or only fragment for an htmx request. It renders
// into a buffer first, so a template error never sends half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, fragment string, v view) {
	v.CSRF, v.Target = csrfOf(r), c.o.Target
	name := "layout"
	if fragment != "" && r.Header.Get("HX-Request") == "true" {
		name = fragment
	}
	var buf bytes.Buffer
	if err := c.pages.sets[page].ExecuteTemplate(&buf, name, v); err != nil {
		plain(w, http.StatusInternalServerError, "the console could not render this page: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/owners", http.StatusSeeOther)
	})
	m.HandleFunc("GET /owners", c.owners)
	m.HandleFunc("GET /keys/new", c.newKey)
	m.HandleFunc("POST /keys", c.create)
	m.HandleFunc("GET /keys/{id}", c.keyPage)
	m.HandleFunc("GET /keys/{id}/usage", c.keyUsageFragment)
	m.HandleFunc("POST /keys/{id}/settings", c.update)
	m.HandleFunc("POST /keys/{id}/enabled", c.setEnabled)
	m.HandleFunc("POST /keys/{id}/rotate", c.rotate)
	m.HandleFunc("GET /keys/{id}/revoke", c.confirmRevoke)
	m.HandleFunc("POST /keys/{id}/revoke", c.revoke)
	m.HandleFunc("GET /usage", c.usagePage)
	m.HandleFunc("GET /usage.csv", c.usageCSV)
	assets, _ := fs.Sub(assetFS, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusNotFound, "no such page")
	})
	return m
}

// ownersView is the owners page: the lookup form and the owner's keys.
type ownersView struct {
	OwnerID string
	Status  string
	Cursor  string
	Keys    []Key
	Next    string
	Error   string
}

// statuses are the filters of the owners page (the list API's).
var statuses = []string{string(key.Active), string(key.Disabled), string(key.Expired), string(key.Revoked)}

func (c *Console) owners(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := &ownersView{OwnerID: strings.TrimSpace(q.Get("owner")), Status: q.Get("status"), Cursor: q.Get("cursor")}
	title := "Owners"
	if v.OwnerID != "" {
		title = "Keys of " + v.OwnerID
		page, p := c.listKeys(r.Context(), v.OwnerID, v.Status, v.Cursor, 50)
		if p != nil {
			v.Error = p.Detail
		} else {
			c.withLastUsed(r.Context(), page.Keys)
			v.Keys, v.Next = page.Keys, page.NextCursor
		}
	}
	c.render(w, r, http.StatusOK, "owners", "", view{Title: title, Nav: "owners", Data: v})
}

// newView is the create page: the form, or the issued key.
type newView struct {
	Form   *keyForm
	Issued *Key
}

func (c *Console) newKey(w http.ResponseWriter, r *http.Request) {
	f := newKeyForm(strings.TrimSpace(r.URL.Query().Get("owner")))
	c.render(w, r, http.StatusOK, "new", "", view{Title: "New key", Nav: "new", Data: &newView{Form: f}})
}

func (c *Console) create(w http.ResponseWriter, r *http.Request) {
	f := readKeyForm(r.PostForm, true)
	f.padLimits()
	s, ok := f.parse()
	if ok {
		body, _ := json.Marshal(f.issueBody(s))
		var k Key
		hdr := http.Header{}
		if f.Idem != "" {
			hdr.Set("Idempotency-Key", f.Idem)
		}
		_, p := c.call(r.Context(), Request{Method: http.MethodPost, Path: "/v1/keys", Body: body, Header: hdr}, &k)
		if p == nil {
			k.stateAt(c.o.Now())
			c.render(w, r, http.StatusCreated, "new", "issued", view{Title: "Key created", Nav: "new", Data: &newView{Issued: &k}})
			return
		}
		f.fail(p)
	}
	c.render(w, r, http.StatusUnprocessableEntity, "new", "keyform", view{Title: "New key", Nav: "new", Data: &newView{Form: f}})
}

// keyView is the key page.
type keyView struct {
	Key    *Key
	Form   *keyForm
	Usage  *usageView
	Audit  []AuditRecord
	More   bool
	Issued *Key   // a key a rotation just issued
	Flash  string // what the last action did
	Error  string // why the last action failed
	// Confirm shows the revocation's confirmation.
	Confirm bool
	Grace   string
}

// loadKey reads everything the key page shows.
func (c *Console) loadKey(r *http.Request, id string) (*keyView, *Problem) {
	ctx := r.Context()
	k, p := c.getKey(ctx, id)
	if p != nil {
		return nil, p
	}
	v := &keyView{Key: k, Form: editForm(k), Grace: "24"}
	v.Usage = c.keyUsageView(ctx, k, rangeDays(r.URL.Query()))
	recs, more, ap := c.audit(ctx, id)
	if ap != nil {
		v.Error = "audit trail: " + ap.Detail
	}
	v.Audit, v.More = recs, more
	return v, nil
}

func (c *Console) keyPage(w http.ResponseWriter, r *http.Request) {
	v, p := c.loadKey(r, r.PathValue("id"))
	if p != nil {
		c.keyProblem(w, r, p)
		return
	}
	c.render(w, r, http.StatusOK, "key", "", view{Title: v.Key.Name, Nav: "key", Data: v})
}

// keyProblem answers a key page the key of which could not be read.
func (c *Console) keyProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	status := http.StatusBadGateway
	if p.Status == http.StatusNotFound {
		status = http.StatusNotFound
	}
	c.render(w, r, status, "key", "key", view{Title: "Key", Nav: "key", Data: &keyView{Error: p.Detail}})
}

func (c *Console) keyUsageFragment(w http.ResponseWriter, r *http.Request) {
	k, p := c.getKey(r.Context(), r.PathValue("id"))
	if p != nil {
		c.keyProblem(w, r, p)
		return
	}
	if r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/keys/"+url.PathEscape(k.ID)+"?days="+strconv.Itoa(rangeDays(r.URL.Query()))+"#usage", http.StatusSeeOther)
		return
	}
	v := &keyView{Key: k, Usage: c.keyUsageView(r.Context(), k, rangeDays(r.URL.Query()))}
	c.render(w, r, http.StatusOK, "key", "usage", view{Data: v})
}

// afterAction renders the key page after an action on it, with what
// happened (flash) or what went wrong (p), and a rotation's new key.
func (c *Console) afterAction(w http.ResponseWriter, r *http.Request, id, flash string, p *Problem, issued *Key) {
	v, lp := c.loadKey(r, id)
	if lp != nil {
		c.keyProblem(w, r, lp)
		return
	}
	status := http.StatusOK
	if p != nil {
		v.Error, status = p.Detail, http.StatusUnprocessableEntity
	} else {
		v.Flash = flash
	}
	v.Issued = issued
	w.Header().Set("HX-Retarget", "#key")
	w.Header().Set("HX-Reswap", "outerHTML")
	c.render(w, r, status, "key", "key", view{Title: v.Key.Name, Nav: "key", Data: v})
}

func (c *Console) update(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := readKeyForm(r.PostForm, false)
	f.ID = id
	s, ok := f.parse()
	if ok {
		k, p := c.getKey(r.Context(), id)
		if p == nil {
			body := patchBody(k, s)
			if len(body) == 0 {
				f.Error = "Nothing to save: no setting was changed."
			} else {
				b, _ := json.Marshal(body)
				_, p = c.call(r.Context(), Request{Method: http.MethodPatch, Path: wire.KeyPath(id, ""), Body: b,
					Header: http.Header{"If-Match": {etag(f.Version)}}}, nil)
				if p == nil {
					c.afterAction(w, r, id, "Settings saved.", nil, nil)
					return
				}
			}
		}
		if p != nil {
			f.fail(p)
		}
	}
	f.padLimits()
	if r.Header.Get("HX-Request") == "true" {
		c.render(w, r, http.StatusUnprocessableEntity, "key", "keyform", view{Data: &keyView{Form: f}})
		return
	}
	v, p := c.loadKey(r, id)
	if p != nil {
		c.keyProblem(w, r, p)
		return
	}
	v.Form = f
	c.render(w, r, http.StatusUnprocessableEntity, "key", "", view{Title: v.Key.Name, Nav: "key", Data: v})
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func (c *Console) setEnabled(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	enabled := r.PostForm.Get("enabled") == "true"
	version, _ := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	b, _ := json.Marshal(map[string]any{"enabled": enabled})
	_, p := c.call(r.Context(), Request{Method: http.MethodPatch, Path: wire.KeyPath(id, ""), Body: b,
		Header: http.Header{"If-Match": {etag(version)}}}, nil)
	flash := "Key disabled: every request with it is refused (403 disabled) until it is enabled again."
	if enabled {
		flash = "Key enabled."
	}
	c.afterAction(w, r, id, flash, p, nil)
}

// maxGraceHours is the longest grace the form offers (the rotator's
// default cap is 7 days; the API has the last word).
const maxGraceHours = 7 * 24

func (c *Console) rotate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	hours, err := strconv.ParseFloat(strings.TrimSpace(r.PostForm.Get("graceHours")), 64)
	if err != nil || hours < 0 || hours > maxGraceHours {
		c.afterAction(w, r, id, "", &Problem{Field: "gracePeriodSeconds",
			Detail: fmt.Sprintf("the grace period must be a number of hours from 0 to %d", maxGraceHours)}, nil)
		return
	}
	b, _ := json.Marshal(map[string]any{"gracePeriodSeconds": int64(hours * 3600)})
	hdr := http.Header{}
	if ik := r.PostForm.Get("idem"); ik != "" {
		hdr.Set("Idempotency-Key", ik)
	}
	var k Key
	_, p := c.call(r.Context(), Request{Method: http.MethodPost, Path: wire.KeyPath(id, "/rotate"), Body: b, Header: hdr}, &k)
	if p != nil {
		c.afterAction(w, r, id, "", p, nil)
		return
	}
	k.stateAt(c.o.Now())
	flash := "Key rotated: this key keeps working until its new expiry; its successor is below."
	if hours == 0 {
		flash = "Key rotated: this key stopped working now; its successor is below."
	}
	c.afterAction(w, r, id, flash, nil, &k)
}

func (c *Console) confirmRevoke(w http.ResponseWriter, r *http.Request) {
	k, p := c.getKey(r.Context(), r.PathValue("id"))
	if p != nil {
		c.keyProblem(w, r, p)
		return
	}
	v := &keyView{Key: k, Confirm: r.URL.Query().Get("cancel") == ""}
	if r.Header.Get("HX-Request") != "true" {
		full, lp := c.loadKey(r, k.ID)
		if lp != nil {
			c.keyProblem(w, r, lp)
			return
		}
		full.Confirm = v.Confirm
		v = full
	}
	c.render(w, r, http.StatusOK, "key", "revoke", view{Title: k.Name, Nav: "key", Data: v})
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// The confirmation form names the key it revokes: a POST without it
	// (or for another key) revokes nothing.
	if r.PostForm.Get("confirm") != id {
		c.afterAction(w, r, id, "", &Problem{Detail: "not revoked: confirm the revocation first"}, nil)
		return
	}
	_, p := c.call(r.Context(), Request{Method: http.MethodDelete, Path: wire.KeyPath(id, "")}, nil)
	c.afterAction(w, r, id, "Key revoked: every request with it is refused (403 revoked). This cannot be undone.", p, nil)
}

// ownerUsageView is the owner usage page.
type ownerUsageView struct {
	OwnerID string
	Days    int
	Usage   *OwnerUsage
	Error   string
}

func (c *Console) usagePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := &ownerUsageView{OwnerID: strings.TrimSpace(q.Get("owner")), Days: rangeDays(q)}
	title := "Usage"
	if v.OwnerID != "" {
		title = "Usage of " + v.OwnerID
		from, to := c.span(v.Days)
		u, p := c.ownerUsage(r.Context(), v.OwnerID, from, to)
		if p != nil {
			v.Error = p.Detail
		}
		v.Usage = u
	}
	c.render(w, r, http.StatusOK, "usage", "", view{Title: title, Nav: "usage", Data: v})
}

func (c *Console) usageCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	owner := strings.TrimSpace(q.Get("owner"))
	if owner == "" {
		plain(w, http.StatusBadRequest, "usage.csv needs ?owner=")
		return
	}
	from, to := c.span(rangeDays(q))
	u, p := c.ownerUsage(r.Context(), owner, from, to)
	if p != nil {
		plain(w, http.StatusBadGateway, "no usage: "+p.Detail)
		return
	}
	var buf bytes.Buffer
	if err := u.WriteCSV(&buf); err != nil {
		plain(w, http.StatusInternalServerError, err.Error())
		return
	}
	name := fmt.Sprintf("usage-%s-%s-%s.csv", fileSafe(owner), from.Format(time.DateOnly), to.Format(time.DateOnly))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = w.Write(buf.Bytes())
}

// fileSafe keeps letters, digits, dot, dash and underscore of s, for a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when":     when,
	"date":     func(t time.Time) string { return t.Format(time.DateOnly) },
	"window":   windowText,
	"number":   number,
	"changes":  changesText,
	"badge":    func(state string) string { return strings.ReplaceAll(state, " ", "-") },
	"ranges":   func() []int { return Ranges },
	"statuses": func() []string { return statuses },
	"idem":     newIdempotencyKey,
	"inc":      func(i int) int { return i + 1 },
	"deref":    func(p *int64) int64 { return *p },
	"period": func(p key.Period) string {
		switch p {
		case key.Day:
			return "a day, refilled at 00:00 UTC"
		case key.Month:
			return "a month, refilled on the 1st (UTC)"
		}
		return "in total, never refilled"
	},
	"percent": func(used *int64, q *key.Quota) int64 {
		if used == nil || q == nil || q.Limit == 0 {
			return 0
		}
		return *used * 100 / q.Limit
	},
	// high is where the quota meter turns to a warning: 80%.
	"high": func(q *key.Quota) int64 { return q.Limit * 8 / 10 },
	"share": func(n, total int64) string {
		if total == 0 {
			return ""
		}
		return strconv.FormatFloat(float64(n)*100/float64(total), 'f', 1, 64) + "%"
	},
	"list": func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	},
	"json": func(v map[string]any) string {
		if len(v) == 0 {
			return ""
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	// dict passes several values to a template: dict "A" 1 "B" 2.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, fmt.Errorf("dict: odd number of arguments")
		}
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}

// when shows an RFC 3339 time as "2026-12-01 14:30 UTC"; empty as "never".
func when(v any) string {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case *string:
		if t != nil {
			s = *t
		}
	}
	if s == "" {
		return "never"
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// windowText names a rate limit's window: "second", "minute", "10 minutes".
func windowText(secs int64) string {
	for _, u := range []struct {
		n    int64
		name string
	}{{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}} {
		if secs%u.n == 0 {
			if secs == u.n {
				return u.name
			}
			return strconv.FormatInt(secs/u.n, 10) + " " + u.name + "s"
		}
	}
	return strconv.FormatInt(secs, 10) + " seconds"
}

// number writes an integer with thousands separators: 10,000.
func number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// changesText writes an audit record's changes, one "field: from → to" per
// line, sorted by field.
func changesText(m map[string]any) []string {
	var out []string
	for f, v := range m {
		if ft, ok := v.(map[string]any); ok {
			if to, has := ft["to"]; has {
				line := f + ": "
				if from, has := ft["from"]; has {
					line += short(from) + " → "
				}
				out = append(out, line+short(to))
				continue
			}
		}
		if !empty(v) { // a creation lists every setting: leave out the unset ones
			out = append(out, f+": "+short(v))
		}
	}
	sort.Strings(out)
	return out
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func short(v any) string {
	if v == nil {
		return "none"
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
