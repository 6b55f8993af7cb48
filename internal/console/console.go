// Package console is keygate's admin web page: `keygate console` serves it
// on 127.0.0.1 from the CLI binary, and every admin API call a page needs is
// made here, on the admin's machine, through the CLI's own client (which
// signs with SigV4 for a deployed stack), like `kubectl proxy`. AWS
// credentials never reach the browser.
//
// Pages are rendered on the server with html/template; htmx (for forms and
// partial updates) and Chart.js (for the usage charts) are pinned npm
// packages whose dist files are embedded (assets/vendor), so the page works
// offline and loads nothing from a CDN.
//
// The security model, for a server that holds an admin's credentials on a
// loopback port any local web page could try to reach:
//   - it listens on 127.0.0.1 only, and answers only requests whose Host is
//     127.0.0.1:PORT or localhost:PORT, so a hostile DNS name that resolves
//     to 127.0.0.1 (DNS rebinding) gets nothing;
//   - it serves nothing but the sign-in link without a session: the link
//     carries a random one-time token, printed on the terminal, that the
//     console exchanges for a session cookie (HttpOnly, SameSite=Strict);
//   - every write needs the session's CSRF token (a hidden form field) and a
//     same-origin request (Origin and Sec-Fetch-Site, when the browser sends
//     them);
//   - pages carry a strict Content-Security-Policy (scripts only from the
//     console itself), no caching, no framing, no referrer to other origins;
//   - a plaintext key appears only in the response to the create or rotate
//     that issued it: the console stores, logs and caches nothing of it, and
//     htmx's history cache (which would copy the page into localStorage) is
//     off.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/apicall"
)

// DefaultPort is the console's port on 127.0.0.1 unless --port says otherwise.
const DefaultPort = 4000

// Request is one admin API call the console makes for a page.
type Request = apicall.Request

// Response is the admin API's answer, whatever its status: the console shows
// problems (RFC 9457) to the admin next to the field they name.
type Response = apicall.Response

// API sends requests to the admin API. The CLI's client implements it, so
// the console reaches exactly the API every other command does (--api-url,
// --stack) and signs exactly as they do. An error means no answer at all
// (unreachable, no credentials); its message is shown to the admin.
type API = apicall.Client

// APIFunc makes a function an API.
type APIFunc = apicall.ClientFunc

// Options configure a console.
type Options struct {
	// API is the admin API the pages manage.
	API API
	// Target describes the API for the page header, e.g. its URL and how
	// requests are signed.
	Target string
	// Now is the clock (badges, default usage ranges); nil means time.Now.
	Now func() time.Time
}

// Console is the console's HTTP handler, bound to one loopback port.
type Console struct {
	o      Options
	port   int
	token  string // the one-time sign-in token
	cookie string // the session cookie's name (per port: cookies ignore ports)
	mux    *http.ServeMux
	pages  *pages

	mu        sync.Mutex
	tokenUsed bool
	sessions  map[[32]byte]*session
}

// session is one signed-in browser.
type session struct {
	csrf string
}

// Listen opens the console's listener on 127.0.0.1:port (0 picks a free
// port). The console never listens on another interface.
func Listen(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("cannot listen on 127.0.0.1:%d (pass --port with a free port): %w", port, err)
	}
	return l, nil
}

// New returns the console for requests to 127.0.0.1 or localhost at port,
// with a fresh one-time sign-in token (see LoginURL).
func New(o Options, port int) (*Console, error) {
	if o.API == nil {
		return nil, errors.New("console: no admin API")
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("console: port %d", port)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		o: o, port: port, token: randomToken(), cookie: "keygate_console_" + strconv.Itoa(port),
		pages: p, sessions: map[[32]byte]*session{},
	}
	c.mux = c.routes()
	return c, nil
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// LoginURL is the link to print: it signs one browser in, once.
func (c *Console) LoginURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(c.port) + "/login?token=" + c.token
}

// Serve serves the console on l until ctx ends, then lets requests in flight
// finish for a few seconds.
func (c *Console) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Owner usage calls the API once per key: allow for a slow stack.
		WriteTimeout: 5 * time.Minute,
		IdleTimeout:  2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done
	return nil
}

// contentSecurityPolicy allows the console's own scripts, styles and
// requests only: no inline script, no eval, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP checks the Host, the session and, for writes, the CSRF token
// before any page runs.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with a form it posts itself (the Fetch standard's
	// origin serialization), and sameOrigin would refuse every write made
	// without htmx. Another origin still gets no referrer.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if !c.hostAllowed(r.Host) {
		// DNS rebinding: a page on a hostile name that resolves to
		// 127.0.0.1 sends its own name as Host.
		plain(w, http.StatusMisdirectedRequest, "keygate console answers only at http://127.0.0.1:"+strconv.Itoa(c.port)+"/")
		return
	}
	if r.URL.Path == "/login" {
		c.login(w, r)
		return
	}
	s := c.session(r)
	if s == nil {
		plain(w, http.StatusUnauthorized, "Not signed in. Open the link that 'keygate console' printed in your terminal "+
			"(it holds a one-time token); to sign in again, restart 'keygate console'.")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if !c.sameOrigin(r) {
			plain(w, http.StatusForbidden, "refused: the request did not come from a console page")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil || !equal(r.PostForm.Get(csrfField), s.csrf) {
			plain(w, http.StatusForbidden, "refused: the form's CSRF token is missing or wrong; reload the page and try again")
			return
		}
	default:
		h.Set("Allow", "GET, HEAD, POST")
		plain(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	c.mux.ServeHTTP(w, r.WithContext(withSession(r.Context(), s)))
}

// maxFormBytes bounds a form the console reads.
const maxFormBytes = 256 << 10

// csrfField is the hidden form field that carries the session's CSRF token.
const csrfField = "csrf"

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// hostAllowed reports whether host is the console's own origin.
func (c *Console) hostAllowed(host string) bool {
	p := ":" + strconv.Itoa(c.port)
	return host == "127.0.0.1"+p || host == "localhost"+p
}

// sameOrigin refuses writes that a browser marks as coming from another
// site or origin. Browsers send Origin on every POST; a client that sends
// neither header is not a browser, and still needs the session and the
// CSRF token.
func (c *Console) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" || !c.hostAllowed(u.Host) || u.Host != r.Host {
			return false
		}
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	return true
}

// login exchanges the one-time token for a session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		plain(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	c.mu.Lock()
	ok := !c.tokenUsed && equal(r.URL.Query().Get("token"), c.token)
	if ok {
		c.tokenUsed = true
	}
	c.mu.Unlock()
	if !ok {
		if c.session(r) != nil { // this browser is signed in already
			http.Redirect(w, r, "/owners", http.StatusSeeOther)
			return
		}
		plain(w, http.StatusForbidden, "This sign-in link is wrong or was used already: each link signs in one browser, once. "+
			"Restart 'keygate console' for a new one.")
		return
	}
	id := randomToken()
	c.mu.Lock()
	c.sessions[sha256.Sum256([]byte(id))] = &session{csrf: randomToken()}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: c.cookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	// The redirect drops the token from the address bar.
	http.Redirect(w, r, "/owners", http.StatusSeeOther)
}

// session returns the request's session, or nil. Sessions are looked up by
// the hash of the cookie, so the lookup's timing says nothing about the
// value.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(c.cookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[sha256.Sum256([]byte(ck.Value))]
}

type sessionKey struct{}

func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// csrfOf returns the CSRF token of the request's session.
func csrfOf(r *http.Request) string {
	if s, ok := r.Context().Value(sessionKey{}).(*session); ok {
		return s.csrf
	}
	return ""
}
