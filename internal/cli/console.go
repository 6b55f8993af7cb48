package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"

	"github.com/keygate/keygate/internal/apicall"
	"github.com/keygate/keygate/internal/console"
)

// console serves the admin web page on 127.0.0.1 (package console), calling
// the admin API through this client: the same URL resolution (--api-url,
// --stack, ...) and the same SigV4 signing as every other command.
func (a *app) console(ctx context.Context, args []string) error {
	c := a.command("console", "console [--port 4000] [--no-browser]")
	port := c.fs.Int("port", console.DefaultPort, "the console's port on 127.0.0.1 (0 picks a free one)")
	noBrowser := c.fs.Bool("no-browser", false, "only print the console's URL; do not open a browser")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return usagef("--port: from 0 to 65535")
	}
	cl, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	l, err := console.Listen(*port)
	if err != nil {
		return &exitError{code: ExitUnavailable, msg: err.Error()}
	}
	defer l.Close()
	target := cl.base.String() + " (" + cl.source + ", unsigned: loopback)"
	if cl.signer != nil {
		target = cl.base.String() + " (" + cl.source + ", SigV4 for " + cl.signer.region + ")"
	}
	con, err := console.New(console.Options{API: console.APIFunc(cl.call(false)), Target: target, Now: a.deps.now}, l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "keygate console: admin API %s\n  open %s\n  (the link signs in one browser, once; Ctrl-C stops the console)\n", target, con.LoginURL())
	if !*noBrowser {
		openBrowser(con.LoginURL(), a.env)
	}
	return con.Serve(ctx, l)
}

// call returns a function that sends one call through this client,
// answering whatever the status (the console shows problems itself, the
// smoke test judges them); once sends each call exactly once.
func (c *client) call(once bool) func(ctx context.Context, r apicall.Request) (*apicall.Response, error) {
	return func(ctx context.Context, r apicall.Request) (*apicall.Response, error) {
		req := request{method: r.Method, path: r.Path, query: r.Query, header: r.Header, once: once}
		if req.header == nil {
			req.header = http.Header{}
		}
		if r.Body != nil {
			req.body = json.RawMessage(r.Body)
		}
		resp, err := c.send(ctx, req)
		if err != nil {
			var ee *exitError
			if errors.As(err, &ee) && ee.hint != "" {
				return nil, errors.New(ee.msg + "; " + ee.hint)
			}
			return nil, err
		}
		return &apicall.Response{Status: resp.status, Header: resp.header, Body: resp.body}, nil
	}
}

// openBrowser opens url in the desktop's browser, if there is one: with
// xdg-open on a Linux desktop (DISPLAY or WAYLAND_DISPLAY set, so that a
// terminal browser never takes over the terminal), open on macOS. It never
// fails: the URL is printed either way.
func openBrowser(url string, env func(string) string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "linux", "freebsd", "openbsd", "netbsd":
		if env("DISPLAY") == "" && env("WAYLAND_DISPLAY") == "" {
			return
		}
		path, err := exec.LookPath("xdg-open")
		if err != nil {
			return
		}
		cmd = exec.Command(path, url)
	default:
		return
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if f, err := os.Open(os.DevNull); err == nil {
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if cmd.Start() == nil {
		go func() { _ = cmd.Wait() }()
	}
}
