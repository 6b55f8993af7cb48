package config_test

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

var update = flag.Bool("update", false, "rewrite the configuration table of the docs from the registry")

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const day = 24 * time.Hour

func TestDefaults(t *testing.T) {
	r := config.FromEnv(env(nil))
	if v := config.Table.From(r); v != "keygate" {
		t.Errorf("table %q", v)
	}
	if v := config.KeyPrefix.From(r); v.Prefix() != "kg" {
		t.Errorf("prefix %q", v.Prefix())
	}
	if v := config.Environments.From(r); !slices.Equal(v, []key.Environment{key.Live, key.Test}) {
		t.Errorf("environments %v", v)
	}
	if v := config.Pepper.From(r); len(v) != 0 {
		t.Errorf("pepper %q", v)
	}
	durations := map[*config.Var[time.Duration]]time.Duration{
		&config.CacheTTL: 5 * time.Second, &config.NegativeCacheTTL: time.Minute, &config.StoreTimeout: 2 * time.Second,
		&config.ServeStale: 0, &config.ExpiringNotice: 7 * day, &config.IdleAfter: 90 * day, &config.MaxKeyAge: 0,
		&config.MaxGrace: 7 * day, &config.ExpiredRetention: 90 * day, &config.RevokedRetention: 90 * day,
		&config.MaxKeyTTL: day, &config.RotatorMaxRun: 4 * time.Minute, &config.TokenTTL: 15 * time.Minute,
		&config.TokenMaxTTL: time.Hour, &config.SigningKeyRotation: 30 * day, &config.GatewayCacheTTL: 0,
		&config.LogRetention: 30 * day, &config.ReserveInterval: 200 * time.Millisecond, &config.ReportInterval: 2 * time.Second,
	}
	for v, want := range durations {
		if got := v.From(r); got != want {
			t.Errorf("%s defaults to %v, want %v", v.Setting().Env+v.Setting().Context, got, want)
		}
	}
	if config.LogLevel.From(r) != slog.LevelInfo || config.CacheSize.From(r) != 10000 || config.IdleAction.From(r) != "notify" {
		t.Error("log level, cache size or idle action defaults")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestValuesAreParsed(t *testing.T) {
	r := config.FromEnv(env(map[string]string{
		"KEYGATE_TABLE": "t", "KEYGATE_KEY_PREFIX": "acme", "KEYGATE_ENVIRONMENTS": "live", "KEYGATE_PEPPER": "p",
		"KEYGATE_CACHE_TTL": "2s", "KEYGATE_SERVE_STALE": "30s", "KEYGATE_MAX_KEY_AGE": "365d", "KEYGATE_EXPIRING_NOTICE": "0",
		"KEYGATE_SIGNING_KEY": " arn:a , arn:b,", "AWS_LAMBDA_LOG_LEVEL": "DEBUG", "KEYGATE_IDLE_ACTION": "disable",
		"KEYGATE_ROUTES": `[{"method":"GET","path":"/x","scopes":["a"]}]`,
	}))
	ok := config.Table.From(r) == "t" && config.KeyPrefix.From(r).Prefix() == "acme" &&
		slices.Equal(config.Environments.From(r), []key.Environment{key.Live}) && string(config.Pepper.From(r)) == "p" &&
		config.CacheTTL.From(r) == 2*time.Second && config.ServeStale.From(r) == 30*time.Second &&
		config.MaxKeyAge.From(r) == 365*day && config.ExpiringNotice.From(r) == 0 &&
		slices.Equal(config.SigningKey.From(r), []string{"arn:a", "arn:b"}) && config.LogLevel.From(r) == slog.LevelDebug &&
		config.IdleAction.From(r) == "disable" && len(config.Routes.From(r)) == 1
	if err := r.Err(); err != nil || !ok {
		t.Fatalf("values not read as set (%v)", err)
	}
}

// A bad value is an error naming its variable, and the reader keeps the
// first one.
func TestBadValuesNameTheirVariable(t *testing.T) {
	for name, bad := range map[string]string{
		"KEYGATE_KEY_PREFIX":           "Bad_Prefix",
		"KEYGATE_ENVIRONMENTS":         "live,prod",
		"KEYGATE_CACHE_TTL":            "0s",
		"KEYGATE_STORE_TIMEOUT":        "9s", // too close to API Gateway's 10 s
		"KEYGATE_SERVE_STALE":          "-1s",
		"KEYGATE_CACHE_SIZE":           "many",
		"KEYGATE_ROUTES":               `{"not":"a list"}`,
		"AWS_LAMBDA_LOG_LEVEL":         "LOUD",
		"KEYGATE_IDLE_AFTER":           "-1d",
		"KEYGATE_IDLE_ACTION":          "delete",
		"KEYGATE_MAX_GRACE":            "1.5s", // whole seconds
		"KEYGATE_TOKEN_MAX_TTL":        "25h",
		"KEYGATE_SIGNING_KEY_ROTATION": "10m",
		"KEYGATE_DYNAMODB_ENDPOINT":    "127.0.0.1:8000",
	} {
		s := settingOf(name)
		if s == nil {
			t.Errorf("%s is not in the registry", name)
			continue
		}
		err := config.Check(s.Functions[0], env(map[string]string{name: bad}))
		if fault.FieldOf(err) != name || !fault.Is(err, fault.Invalid) {
			t.Errorf("%s=%s: %v, want an invalid error naming %s", name, bad, err, name)
		}
	}
}

func TestDurationSyntax(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "90s": 90 * time.Second, "15m": 15 * time.Minute, "1h30m": 90 * time.Minute, "30d": 30 * day} {
		if got, err := config.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "1.5d", "-1s", "d", "forever"} {
		if _, err := config.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{0: "0", 30 * day: "30d", 12 * time.Hour: "12h", 15 * time.Minute: "15m", 90 * time.Second: "90s", 1500 * time.Millisecond: "1.5s"} {
		if got := config.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// A variable an earlier version read is refused with its new name, not
// silently ignored.
func TestRenamedVariablesSayTheirNewName(t *testing.T) {
	r := config.FromEnv(env(map[string]string{"KEYGATE_IDLE_DAYS": "30"}))
	_ = config.IdleAfter.From(r)
	if err := r.Err(); fault.FieldOf(err) != "KEYGATE_IDLE_DAYS" || !strings.Contains(err.Error(), "KEYGATE_IDLE_AFTER") {
		t.Errorf("KEYGATE_IDLE_DAYS: %v, want it pointing at KEYGATE_IDLE_AFTER", err)
	}
}

// Every setting says what it does, who reads it and who sets it; and a
// name is declared once.
func TestEverySettingIsDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range config.All() {
		name := s.Env + "|" + s.Context
		if seen[name] || (s.Env != "" && seen[s.Env]) || (s.Context != "" && seen["ctx:"+s.Context]) {
			t.Errorf("%s is declared twice", name)
		}
		seen[name], seen[s.Env], seen["ctx:"+s.Context] = true, true, true
		if s.Doc == "" || (s.Env != "" && len(s.Functions) == 0 && !s.Gateway) || (s.Env == "" && s.Context == "") {
			t.Errorf("%s: no doc, no reader or no name", name)
		}
		if s.Env != "" && !strings.HasPrefix(s.Env, "KEYGATE_") && s.Origin != config.ByLambda {
			t.Errorf("%s: a keygate variable starts with KEYGATE_", s.Env)
		}
		if err := s.Check(s.Default()); err != nil {
			t.Errorf("%s: its default %q does not parse: %v", name, s.Default(), err)
		}
	}
}

// docsFile holds the configuration table rendered from the registry,
// between the two markers.
var docsFile = filepath.Join("..", "..", "docs", "configuration.md")

const (
	beginTable = "<!-- settings table: generated from internal/config; `go test ./internal/config -run TestConfigurationTable -update` rewrites it -->\n"
	endTable   = "<!-- end of settings table -->\n"
)

// The configuration table of the docs is the registry's: a setting added,
// renamed or changed there fails this test until the docs say so too
// (-update rewrites the table).
func TestConfigurationTable(t *testing.T) {
	b, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, beginTable), strings.Index(doc, endTable)
	if i < 0 || j < i {
		t.Fatalf("%s has no settings table between the markers %q and %q", docsFile, beginTable, endTable)
	}
	got, want := doc[i+len(beginTable):j], config.Markdown()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(docsFile, []byte(doc[:i+len(beginTable)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the settings table in %s is not the registry's; run go test ./internal/config -run TestConfigurationTable -update\n got:\n%s\nwant:\n%s", docsFile, got, want)
}

// Every variable and context key the Markdown files name is a setting of
// the registry (or one of the CLI's own variables); the names earlier
// versions read appear only in the configuration page, which says what
// replaced them.
func TestDocsNameOnlyRegisteredSettings(t *testing.T) {
	known := map[string]bool{
		// The CLI's own variables (docs/cli.md), and keygate:* names that
		// are not context keys: the problem type URN and the rotator actor.
		"KEYGATE_API_URL": true, "KEYGATE_STACK": true, "KEYGATE_API_KEY": true,
		"keygate:problem": true, "keygate:rotator": true,
	}
	for _, s := range config.All() {
		known[s.Env] = true
		known[config.ContextPrefix+s.Context] = true
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	files = append(files, filepath.Join("..", "..", "README.md"), filepath.Join("..", "..", "CONTRIBUTING.md"))
	name := regexp.MustCompile(`KEYGATE_[A-Z0-9_]*[A-Z0-9]|keygate:[a-z][A-Za-z]*`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			_, old := config.Renamed(strings.TrimPrefix(n, config.ContextPrefix))
			if !known[n] && !(old && filepath.Base(f) == "configuration.md") {
				t.Errorf("%s names %s, which is not a setting", f, n)
			}
		}
	}
}

func settingOf(env string) *config.Setting {
	for _, s := range config.All() {
		if s.Env == env {
			return s
		}
	}
	return nil
}
