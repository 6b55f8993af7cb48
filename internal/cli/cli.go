// Package cli is the keygate command line: it manages keys through the admin
// API of a local stack (plain HTTP on loopback) or of a deployed stack
// (HTTPS, every request signed with AWS Signature Version 4).
//
// Run is the whole program; cmd/keygate only hands it os.Args, the standard
// streams and os.Getenv, so tests (unit tests here, the end-to-end test of
// the local stack) drive exactly what a user runs.
//
// Every flag is checked before any network call, with the admin API's own
// rules (internal/key): a usage error exits with ExitUsage and sends
// nothing. A plaintext key is written once, to stdout, by
// the command that issues it (keys create, keys rotate), and never to stderr
// or into an error message.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keygate/keygate/internal/apikey"
)

// Exit codes. Scripts can tell "fix the request" (1, 2) from "try again or
// fix the environment" (3).
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitAPI: the admin API refused the request (a 4xx other than
	// 401/403/429): invalid field, unknown key, stale If-Match, conflict.
	ExitAPI = 1
	// ExitUsage: bad command line, found before any network call.
	ExitUsage = 2
	// ExitUnavailable: no answer (connection refused, DNS, timeout), a 5xx,
	// throttling (429), or an authentication problem (401/403, missing AWS
	// credentials or region). The outcome of a create or rotate may be
	// unknown: retry it with the same --idempotency-key.
	ExitUnavailable = 3
)

// DefaultAPIURL is the local gateway `make dev` starts; it is used when no
// other API URL is given.
const DefaultAPIURL = "http://127.0.0.1:3000"

// Run runs the keygate command line args (without the program name), writing
// results to stdout and messages to stderr, reading settings through env (as
// os.Getenv), and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	return run(ctx, args, stdout, stderr, env, defaultDeps())
}

// deps are the parts of the outside world tests replace.
type deps struct {
	// transport sends HTTP requests (admin API); nil means the default.
	transport http.RoundTripper
	// awsConfig loads AWS settings and credentials (default chain).
	awsConfig func(ctx context.Context, env func(string) string, region, profile string) (aws.Config, error)
	// isTerminal reports whether w is a terminal, to choose table output.
	isTerminal func(w io.Writer) bool
	// sleep waits between retries.
	sleep func(ctx context.Context, d time.Duration) error
	// jitter returns a random duration in [0, d), spreading retries out.
	jitter func(d time.Duration) time.Duration
	// now is the clock used for signing.
	now func() time.Time
	// stdin is standard input (--key-file -, revoke's confirmation), and
	// stdinTerminal reports whether it is a terminal a person types at.
	stdin         io.Reader
	stdinTerminal func() bool
}

func defaultDeps() deps {
	return deps{
		awsConfig:  loadAWSConfig,
		isTerminal: isTerminal,
		sleep: func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		},
		jitter: func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		},
		now:           time.Now,
		stdin:         os.Stdin,
		stdinTerminal: func() bool { return isTerminalFile(os.Stdin) },
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminalFile(f)
}

func isTerminalFile(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// app is one invocation: streams, environment and the common options.
type app struct {
	stdout, stderr io.Writer
	env            func(string) string
	deps           deps
	opts           options
	// describing makes every command stop at parse, having defined its
	// flags, and leave its flag set in described (see describe).
	describing bool
	described  *command
}

// options are accepted before the command and by every command.
type options struct {
	apiURL      string
	stack       string
	stackOutput string
	region      string
	profile     string
	output      string
	timeout     time.Duration
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.apiURL, "api-url", o.apiURL, "admin API base URL (default: $KEYGATE_API_URL, the --stack output, or "+DefaultAPIURL+")")
	fs.StringVar(&o.stack, "stack", o.stack, "read the API URL from this CloudFormation stack's outputs (default: $KEYGATE_STACK)")
	fs.StringVar(&o.stackOutput, "stack-output", o.stackOutput, "the stack output that holds the API URL")
	fs.StringVar(&o.region, "region", o.region, "AWS region for signing and for --stack (default: from the URL, then AWS config)")
	fs.StringVar(&o.profile, "profile", o.profile, "AWS shared config profile; wins over keys in the environment (default: $AWS_PROFILE, after AWS_ACCESS_KEY_ID)")
	fs.StringVar(&o.output, "output", o.output, "json or table (default: table on a terminal, json otherwise); csv for the usage commands")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up on one HTTP request after this long")
}

// exitError is an error with an exit code and, optionally, what to do.
type exitError struct {
	code int
	msg  string
	hint string
}

func (e *exitError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// errHelp ends a command that printed its help on request.
var errHelp = errors.New("help")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string, d deps) int {
	a := &app{
		stdout: stdout, stderr: stderr, env: env, deps: d,
		opts: options{stackOutput: "ApiUrl", timeout: 30 * time.Second},
	}
	err := a.dispatch(ctx, args)
	if err == nil || errors.Is(err, errHelp) {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: ExitUnavailable, msg: err.Error()}
	}
	// The CLI never puts a key in a message; redacting holds against a
	// server or a user echoing one back.
	fmt.Fprintln(stderr, apikey.Redact("keygate: "+ee.msg))
	if ee.hint != "" {
		fmt.Fprintln(stderr, apikey.Redact("  "+ee.hint))
	}
	if ee.code == ExitUsage {
		fmt.Fprintln(stderr, "  run 'keygate help' for usage")
	}
	return ee.code
}

const usageText = `keygate manages API keys through keygate's admin API.

Usage:
  keygate [common flags] keys create --name NAME --owner OWNER [flags]
  keygate [common flags] keys get ID
  keygate [common flags] keys list --owner OWNER [--status S] [--environment E] [--limit N] [--cursor C | --all]
  keygate [common flags] keys update ID [--name ...] [--scope ...] [--rate-limit ...] [--quota ...]
                                        [--metadata ...] [--allowed-origin ...] [--allowed-cidr ...]
                                        [--stage ...] [--not-before T] [--expires-at T | --no-expiry]
                                        [--enable | --disable] [--if-match VERSION]
  keygate [common flags] keys revoke ID [--yes]
  keygate [common flags] keys rotate ID [--grace-period 24h]
  keygate [common flags] keys usage ID [--from DAY] [--to DAY]
  keygate [common flags] keys audit ID [--limit N] [--cursor C | --all]
  keygate [common flags] usage --owner OWNER [--from DAY] [--to DAY] [--by key]
  keygate [common flags] tokens create [--ttl 15m] [--scope S] [--key-file FILE | --key-file -]
  keygate [common flags] console [--port 4000] [--no-browser]
  keygate [common flags] smoke [--proxy-path /api] [--scope S] [--wait 1m]
  keygate completion bash|zsh|fish

Run 'keygate keys create -h' (or any command with -h) for its flags.

Common flags (before or after the command):
  --api-url URL      admin API base URL; loopback URLs are called unsigned,
                     any other must be https and is signed with SigV4
  --stack NAME       read the URL from the stack output --stack-output (ApiUrl)
  --region R         AWS region (default: from the URL, then AWS config)
  --profile P        AWS profile; wins over AWS_ACCESS_KEY_ID, which wins
                     over $AWS_PROFILE (the AWS SDK's order)
  --output FORMAT    json or table (default: table on a terminal, else json);
                     csv for the usage commands
  --timeout D        per request (default 30s)

The API URL is, in order: --api-url, --stack, $KEYGATE_API_URL,
$KEYGATE_STACK, then ` + DefaultAPIURL + ` (the local stack of 'make dev').

Exit codes: 0 ok; 1 the API refused the request (4xx), a revoke was not
confirmed, or a smoke test check failed; 2 bad usage (nothing was sent);
3 unreachable, 5xx, throttled or an authentication problem.
`

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("keygate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.opts.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, usageText)
			return errHelp
		}
		return usagef("%v", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return usagef("no command given")
	}
	name, rest := rest[0], rest[1:]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(a.stdout, usageText)
		return errHelp
	}
	if name == completeCommand {
		a.complete(rest)
		return nil
	}
	for _, g := range groups {
		if g.name == name && g.run != nil {
			return g.run(a, ctx, rest)
		}
		if g.name == name {
			return a.runGroup(ctx, g, rest)
		}
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.name
	}
	return usagef("unknown command %q; want %s", name, orList(names))
}

// group is a group of commands (keygate keys ..., keygate tokens ...), or,
// with run, a command of its own whose arguments are all flags (keygate
// console).
type group struct {
	name     string
	commands []subcommand
	run      func(a *app, ctx context.Context, args []string) error
}

// subcommand is one command of a group.
type subcommand struct {
	name string
	run  func(a *app, ctx context.Context, args []string) error
}

// groups are the command groups, in the order the usage lists them.
var groups = []group{
	{"keys", []subcommand{
		{"create", (*app).keysCreate}, {"get", (*app).keysGet}, {"list", (*app).keysList},
		{"update", (*app).keysUpdate}, {"revoke", (*app).keysRevoke}, {"rotate", (*app).keysRotate},
		{"usage", (*app).keysUsage}, {"audit", (*app).keysAudit},
	}, nil},
	{"usage", nil, (*app).ownerUsage},
	{"tokens", []subcommand{{"create", (*app).tokensCreate}}, nil},
	{"console", nil, (*app).console},
	{"smoke", nil, (*app).smoke},
	{"completion", nil, (*app).completion},
}

// runGroup runs the command of g that args name.
func (a *app) runGroup(ctx context.Context, g group, args []string) error {
	verb := ""
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	names := make([]string, len(g.commands))
	for i, c := range g.commands {
		if c.name == verb {
			return c.run(a, ctx, args)
		}
		names[i] = c.name
	}
	switch verb {
	case "":
		fmt.Fprint(a.stderr, usageText)
		return usagef("%s needs a command: %s", g.name, orList(names))
	case "help", "-h", "--help":
		fmt.Fprint(a.stdout, usageText)
		return errHelp
	}
	return usagef("unknown command '%s %s'; want %s", g.name, verb, orList(names))
}

// orList writes "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// command is one subcommand's flag set.
type command struct {
	name     string // "keys create"
	synopsis string // "keys create --name NAME --owner OWNER [flags]"
	fs       *flag.FlagSet
	a        *app
	// csv is set by the commands that write CSV (--output csv).
	csv bool
}

func (a *app) command(name, synopsis string) *command {
	fs := flag.NewFlagSet("keygate "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.opts.register(fs)
	return &command{name: name, synopsis: synopsis, fs: fs, a: a}
}

// parse reads the command's flags, which may come before and after its
// positional arguments, and checks the common options. want is the number of
// positional arguments the command takes (their names, for messages).
func (c *command) parse(args []string, want ...string) ([]string, error) {
	if c.a.describing {
		c.a.described = c
		return nil, errDescribed
	}
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printHelp()
				return nil, errHelp
			}
			return nil, usagef("%s: %s", c.name, strings.Replace(err.Error(), " -", " --", 1))
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != len(want) {
		if len(want) == 0 {
			return nil, usagef("%s takes no arguments (got %d); usage: keygate %s", c.name, len(pos), c.synopsis)
		}
		return nil, usagef("%s needs %s; usage: keygate %s", c.name, strings.Join(want, " "), c.synopsis)
	}
	if err := c.a.checkOptions(); err != nil {
		return nil, err
	}
	if c.a.opts.output == "csv" && !c.csv {
		return nil, usagef("--output csv: only 'keys usage' and 'usage' write CSV")
	}
	return pos, nil
}

// commonFlags are the flags options.register adds to every command.
var commonFlags = map[string]bool{"api-url": true, "stack": true, "stack-output": true,
	"region": true, "profile": true, "output": true, "timeout": true}

// printHelp writes the command's usage: its own flags, then the common ones.
func (c *command) printHelp() {
	w := c.a.stdout
	fmt.Fprintf(w, "Usage: keygate %s\n", c.synopsis)
	for _, common := range []bool{false, true} {
		if common {
			fmt.Fprintln(w, "\nCommon flags:")
		} else {
			fmt.Fprintln(w, "\nFlags:")
		}
		c.fs.VisitAll(func(f *flag.Flag) {
			if commonFlags[f.Name] != common {
				return
			}
			kind, usage := flag.UnquoteUsage(f)
			if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
				kind = ""
			} else if kind == "" || kind == "value" {
				kind = "VALUE"
			}
			fmt.Fprintf(w, "  %s\n        %s", strings.TrimSpace("--"+f.Name+" "+kind), usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
}

// outputFormat is the format chosen by --output or by whether stdout is a
// terminal.
func (a *app) outputFormat() string {
	if a.opts.output != "" {
		return a.opts.output
	}
	if a.deps.isTerminal(a.stdout) {
		return "table"
	}
	return "json"
}
