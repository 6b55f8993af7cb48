package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/cli"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/dynamolocal"
)

// The environment variables make dev reads besides the functions' KEYGATE_*.
const (
	EnvPort         = "PORT"          // the gateway's port, default 3000
	EnvDynamoDBPort = "DYNAMODB_PORT" // DynamoDB Local's port, default 8000
	EnvConsolePort  = "CONSOLE_PORT"  // the console's port, default 4000
)

// Settings are make dev's settings: flags first, then the environment, then
// the defaults.
type Settings struct {
	Port         int
	DynamoDBPort int
	// ConsolePort is the port of the console (keygate console, run against
	// the local gateway); 0 picks a free one.
	ConsolePort int
	// DataDir holds DynamoDB Local's files, the secrets and the logs
	// (default .local).
	DataDir string
	// Stage is the stage name the functions see (default: cdk.json's
	// keygate:stageName, else the stack's default, as deployed).
	Stage string
	// CDKJSON is the cdk.json whose keygate:* context make dev runs with
	// (default cdk.json, in the folder make dev runs in).
	CDKJSON string
	// Upstream, when set, replaces the echo upstream behind the proxy.
	Upstream *url.URL
	// Schedule is how often the rotator's scheduled sweep runs (default
	// 1 minute, so that grace periods and expiries show soon; the stack's
	// default is hourly).
	Schedule time.Duration
}

// ParseSettings reads make dev's command line. It returns flag.ErrHelp for
// -h, having printed the usage to stderr.
func ParseSettings(args []string, getenv func(string) string, stderr io.Writer) (Settings, error) {
	s := Settings{Port: 3000, DynamoDBPort: 8000, ConsolePort: 4000, DataDir: ".local", CDKJSON: "cdk.json", Schedule: time.Minute}
	for _, p := range []struct {
		env string
		dst *int
	}{{EnvPort, &s.Port}, {EnvDynamoDBPort, &s.DynamoDBPort}, {EnvConsolePort, &s.ConsolePort}} {
		if v := getenv(p.env); v != "" {
			n, err := parsePort(v)
			if p.env == EnvConsolePort && v == "0" {
				n, err = 0, nil
			}
			if err != nil {
				return Settings{}, fmt.Errorf("%s=%q: %w", p.env, v, err)
			}
			*p.dst = n
		}
	}
	fs := flag.NewFlagSet("keygate-dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.String("port", strconv.Itoa(s.Port), "the gateway's port on 127.0.0.1 ($"+EnvPort+")")
	ddbPort := fs.String("dynamodb-port", strconv.Itoa(s.DynamoDBPort), "DynamoDB Local's port ($"+EnvDynamoDBPort+")")
	fs.IntVar(&s.ConsolePort, "console-port", s.ConsolePort, "the console's port on 127.0.0.1, 0 for a free one ($"+EnvConsolePort+")")
	fs.StringVar(&s.DataDir, "data", s.DataDir, "folder for DynamoDB Local's files, the local secrets and the logs")
	fs.StringVar(&s.Stage, "stage", s.Stage, "the API stage name the authorizer sees (keys limited to other stages are refused) (default: cdk.json's keygate:stageName, else prod)")
	fs.StringVar(&s.CDKJSON, "cdk-json", s.CDKJSON, "the cdk.json whose keygate:* settings the local stack runs with, as the deployed stack does")
	fs.DurationVar(&s.Schedule, "schedule", s.Schedule, "how often the rotator's scheduled lifecycle sweep runs (0 never)")
	upstream := fs.String("upstream", "", "send the protected proxy's requests (/api/...) to this http(s) URL instead of the built-in echo upstream")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: keygate-dev [flags]   (make dev)\n\nRuns DynamoDB Local, the keygate functions and a local gateway on 127.0.0.1.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Settings{}, err
	}
	if fs.NArg() > 0 {
		return Settings{}, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	var err error
	if s.Port, err = parsePort(*port); err != nil {
		return Settings{}, fmt.Errorf("-port %q: %w", *port, err)
	}
	if s.DynamoDBPort, err = parsePort(*ddbPort); err != nil {
		return Settings{}, fmt.Errorf("-dynamodb-port %q: %w", *ddbPort, err)
	}
	if s.Port == s.DynamoDBPort {
		return Settings{}, fmt.Errorf("the gateway and DynamoDB Local cannot share port %d", s.Port)
	}
	if s.ConsolePort < 0 || s.ConsolePort > 65535 {
		return Settings{}, fmt.Errorf("-console-port %d: want 0 (a free port) or a port number up to 65535", s.ConsolePort)
	}
	if s.ConsolePort == s.Port || s.ConsolePort == s.DynamoDBPort {
		return Settings{}, fmt.Errorf("the console cannot share port %d with the gateway or DynamoDB Local", s.ConsolePort)
	}
	if s.DataDir == "" {
		return Settings{}, errors.New("-data must name a folder")
	}
	if s.Schedule < 0 || (s.Schedule > 0 && s.Schedule < time.Second) {
		return Settings{}, errors.New("-schedule must be 0 (never) or at least 1s")
	}
	if isSetFlag(fs, "stage") && s.Stage == "" {
		return Settings{}, errors.New("-stage must not be empty")
	}
	if s.CDKJSON == "" {
		return Settings{}, errors.New("-cdk-json must name a file")
	}
	if *upstream != "" {
		u, err := url.Parse(*upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Settings{}, fmt.Errorf("-upstream %q: want an http or https URL such as http://127.0.0.1:8080", *upstream)
		}
		s.Upstream = u
	}
	return s, nil
}

// isSetFlag reports whether the flag called name was given.
func isSetFlag(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("want a port number from 1 to 65535")
	}
	return n, nil
}

// secrets are the local stack's generated secrets, kept in
// <data>/secrets.json (mode 0600) so that keys issued in one run verify in
// the next, and idempotent retries are answered across runs.
type secrets struct {
	// Pepper keys the hash of every key (KEYGATE_PEPPER).
	Pepper string `json:"pepper"`
	// Seal seals the stored responses of idempotent requests
	// (KEYGATE_SEAL_LOCAL_KEY), in place of the deployed stack's KMS key:
	// hex, 32 bytes.
	Seal string `json:"seal"`
}

// loadSecrets reads <dir>/secrets.json, creating it with fresh random
// secrets the first time, and adding the ones a file from an earlier
// version lacks (the seal key) without touching the others.
func loadSecrets(dir string) (secrets, error) {
	path := filepath.Join(dir, "secrets.json")
	b, err := os.ReadFile(path)
	var s secrets
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s); err != nil || len(s.Pepper) < 32 || (s.Seal != "" && len(s.Seal) != 64) {
			return secrets{}, fmt.Errorf("%s is damaged: delete it (keys issued with it will stop working) or restore it", path)
		}
		if s.Seal != "" {
			return s, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return secrets{}, err
	}
	for _, f := range []*string{&s.Pepper, &s.Seal} {
		if *f != "" {
			continue
		}
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return secrets{}, err
		}
		*f = hex.EncodeToString(raw[:])
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return secrets{}, err
	}
	return s, os.Rename(tmp, path)
}

// overlay returns getenv with the values in set laid over it.
func overlay(getenv func(string) string, set map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := set[k]; ok {
			return v
		}
		return getenv(k)
	}
}

// Run is make dev: it parses args, starts DynamoDB Local, the table and the
// gateway, prints what to try, and serves until ctx ends; then it stops
// everything it started. It returns the process exit code: 0 after a clean
// stop, 1 when something could not start, 2 for a bad command line.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	s, err := ParseSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "keygate-dev: %v\n", err)
		return 2
	}
	if err := run(ctx, s, stdout, stderr, getenv); err != nil {
		fmt.Fprintf(stderr, "keygate-dev: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, s Settings, stdout, stderr io.Writer, getenv func(string) string) error {
	dataDir, err := filepath.Abs(s.DataDir)
	if err != nil {
		return err
	}
	logDir := filepath.Join(dataDir, "logs")
	for _, d := range []string{filepath.Join(dataDir, "dynamodb"), logDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	sec, err := loadSecrets(dataDir)
	if err != nil {
		return err
	}
	cdk, err := config.ReadCDKJSON(s.CDKJSON)
	if err != nil {
		return err
	}
	ddbLog, err := os.OpenFile(filepath.Join(logDir, "dynamodb.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer ddbLog.Close()
	fnLog, err := os.OpenFile(filepath.Join(logDir, "functions.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer fnLog.Close()
	log := slog.New(slog.NewTextHandler(stdout, nil))

	fmt.Fprintf(stdout, "starting DynamoDB Local on 127.0.0.1:%d (data in %s)\n", s.DynamoDBPort, filepath.Join(s.DataDir, "dynamodb"))
	// Its data persists under the data folder; CORS admits only the
	// gateway's origin, so a web page cannot call it; in a process group
	// of its own, Ctrl-C in the terminal reaches only make dev, which stops
	// the gateway first and then DynamoDB Local.
	ddb, err := dynamolocal.Start(ctx, dynamolocal.Options{
		Port: s.DynamoDBPort, Dir: filepath.Join(dataDir, "dynamodb"), Log: ddbLog,
		CORS: "http://127.0.0.1:" + strconv.Itoa(s.Port), OwnGroup: true,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "stopping DynamoDB Local")
		if err := ddb.Stop(15 * time.Second); err != nil {
			fmt.Fprintf(stderr, "keygate-dev: %v\n", err)
		}
	}()

	set := map[string]string{config.DynamoDBEndpoint.Setting().Env: ddb.URL}
	if dir := config.SigningDir.Setting().Env; getenv(dir) == "" {
		set[dir] = filepath.Join(dataDir, "signing")
	}
	for env, v := range map[string]string{config.Pepper.Setting().Env: sec.Pepper, config.SealLocalKey.Setting().Env: sec.Seal} {
		if getenv(env) == "" {
			set[env] = v
		}
	}
	stack, err := Start(ctx, Options{
		Getenv:      overlay(getenv, set),
		Context:     cdk,
		Port:        s.Port,
		Stage:       s.Stage,
		Upstream:    s.Upstream,
		Log:         log,
		FunctionLog: fnLog,
		Schedule:    s.Schedule,
	})
	if err != nil {
		return err
	}
	tryThis(stdout, stack, s, ddb.URL, cdk)
	consoleCtx, stopConsole := context.WithCancel(ctx)
	defer stopConsole()
	consoleDone := runConsole(consoleCtx, stack.URL, s.ConsolePort, stdout, stderr, getenv)
	var failed error
	select {
	case <-ctx.Done():
	case <-ddb.Exited():
		failed = errors.New("DynamoDB Local stopped unexpectedly; see " + filepath.Join(s.DataDir, "logs", "dynamodb.log"))
	}
	fmt.Fprintln(stdout, "\nstopping the console and the gateway")
	stopConsole()
	<-consoleDone
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stack.Close(sctx)
	return failed
}

// runConsole runs `keygate console` against the local gateway at apiURL, as
// a user would in another terminal (without opening a browser: make dev is
// restarted often). It prints the console's sign-in link, and stops when
// ctx ends; the returned channel is closed then. A console that cannot
// start (its port is taken) says why and leaves the rest running.
func runConsole(ctx context.Context, apiURL string, port int, stdout, stderr io.Writer, getenv func(string) string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		args := []string{"console", "--api-url", apiURL, "--port", strconv.Itoa(port), "--no-browser"}
		if cli.Run(ctx, args, stdout, stderr, getenv) != cli.ExitOK && ctx.Err() == nil {
			fmt.Fprintf(stderr, "keygate-dev: the console did not start (set %s to a free port); the rest keeps running\n", EnvConsolePort)
		}
	}()
	return done
}

// tryThis prints where everything runs and the ready-to-paste commands.
func tryThis(w io.Writer, st *Stack, s Settings, ddbURL string, cdk map[string]string) {
	upstream := "the echo upstream"
	if s.Upstream != nil {
		upstream = s.Upstream.String()
	}
	settings := "defaults"
	if len(cdk) > 0 {
		keys := make([]string, 0, len(cdk))
		for k := range cdk {
			keys = append(keys, config.ContextPrefix+k)
		}
		sort.Strings(keys)
		settings = strings.Join(keys, ", ")
	}
	fmt.Fprintf(w, `
keygate is running locally (Ctrl-C stops it):
  gateway        %s   admin API /v1 (no signature; loopback only), %s/... -> %s
  stage          %s
  settings       %s (%s)
  DynamoDB Local %s   data in %s
  logs           %s

Try this in another terminal:

`, st.URL, st.ProxyPath, upstream, st.Stage, s.CDKJSON, settings, ddbURL, filepath.Join(s.DataDir, "dynamodb"), filepath.Join(s.DataDir, "logs"))
	for _, line := range strings.SplitAfter(TryCommands(st.URL, st.ProxyPath, st.Format.Prefix()), "\n") {
		if strings.TrimSpace(line) != "" {
			line = "  " + line
		}
		fmt.Fprint(w, line)
	}
	fmt.Fprintln(w)
}

// TryCommands are the commands make dev prints for a gateway at url with
// the protected proxy at proxy (/api) and keys with prefix; the README's
// quickstart shows them for the defaults (a test holds the two together).
func TryCommands(url, proxy, prefix string) string {
	export := ""
	if url != cli.DefaultAPIURL {
		export = "export KEYGATE_API_URL=" + url + "\n"
	}
	return fmt.Sprintf(`%[2]s# issue a key (shown once) and keep it and its id in the shell
OUT=$(go run ./cmd/keygate keys create --name demo --owner demo --scope read --rate-limit minute=5/1m --output json)
KEY=$(echo "$OUT" | grep -oE '\b%[3]s_(sk|pk)_(live|test)_[0-9A-Za-z]{49}\b'); ID=$(echo "$OUT" | grep -oE 'key_[0-9a-z]+' | head -1)

# call the protected API: the echo upstream shows what it receives
curl -s -w '\n' %[1]s%[4]s/hello -H "x-api-key: $KEY"

# 5 requests a minute, the call above included: the loop prints 200 200 200 200 403,
# and the next call shows the 403 rate_limited body with retryAfterSeconds
for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%%{http_code} ' %[1]s%[4]s/hello -H "x-api-key: $KEY"; done; echo
curl -s -w '\n' %[1]s%[4]s/hello -H "x-api-key: $KEY"

# no key: 401
curl -s -w '\n' %[1]s%[4]s/hello

# disable the key without If-Match (optional), then revoke it: refused with 403 revoked
# (once this minute's limit resets)
go run ./cmd/keygate keys update "$ID" --disable
go run ./cmd/keygate keys revoke "$ID" --yes
curl -s -w '\n' %[1]s%[4]s/hello -H "x-api-key: $KEY"

# run the smoke test against the local stack, as against a deployed one after cdk deploy
go run ./cmd/keygate smoke
`, url, export, prefix, proxy)
}
