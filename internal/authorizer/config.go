package authorizer

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/verify"
)

// The authorizer's own environment variables, read next to the shared
// ones (internal/config). docs/configuration.md lists them.
const (
	EnvCacheTTL         = "KEYGATE_CACHE_TTL"          // duration, default 5s
	EnvNegativeCacheTTL = "KEYGATE_NEGATIVE_CACHE_TTL" // duration, default 60s
	EnvCacheSize        = "KEYGATE_CACHE_SIZE"         // entries, default 10000
	EnvRoutes           = "KEYGATE_ROUTES"             // JSON route table, default none
	EnvKeyQueryParam    = "KEYGATE_KEY_QUERY_PARAM"    // query parameter name, default none
	EnvStoreTimeout     = "KEYGATE_STORE_TIMEOUT"      // duration, default 2s
	EnvServeStale       = "KEYGATE_SERVE_STALE"        // duration, default 0 (off)
)

// EnvLambdaLogLevel is set by Lambda from the function's application log
// level (advanced logging controls): DEBUG logs every allowed request too.
const EnvLambdaLogLevel = "AWS_LAMBDA_LOG_LEVEL"

// maxStoreTimeout keeps the DynamoDB deadline well under API Gateway's 10 s
// limit for an authorizer, so that a slow store is a clean 503 from us
// rather than a gateway timeout.
const maxStoreTimeout = 5 * time.Second

// maxServeStale bounds serve-stale: an outage longer than this fails closed.
const maxServeStale = 15 * time.Minute

// Settings are the authorizer's settings besides the shared ones.
type Settings struct {
	Verify     verify.Options
	QueryParam string
	// LogLevel is the lowest level logged (default info).
	LogLevel slog.Level
}

// LoadSettings reads the authorizer's settings through getenv and
// combines them with the shared configuration.
func LoadSettings(c config.Config, getenv func(string) string) (Settings, error) {
	s := Settings{QueryParam: getenv(EnvKeyQueryParam)}
	o := &s.Verify
	o.Format, o.Hasher, o.Environments = c.Format, c.Hasher(), c.Environments
	var err error
	durations := []struct {
		env     string
		dst     *time.Duration
		max     time.Duration
		allow0  bool
		without time.Duration
	}{
		{EnvCacheTTL, &o.CacheTTL, time.Hour, false, 5 * time.Second},
		{EnvNegativeCacheTTL, &o.NegativeTTL, time.Hour, false, time.Minute},
		{EnvStoreTimeout, &o.StoreTimeout, maxStoreTimeout, false, 2 * time.Second},
		{EnvServeStale, &o.ServeStale, maxServeStale, true, 0},
	}
	for _, d := range durations {
		v := getenv(d.env)
		if v == "" {
			*d.dst = d.without
			continue
		}
		x, perr := time.ParseDuration(v)
		if perr != nil || x < 0 || (x == 0 && !d.allow0) || x > d.max {
			return Settings{}, fault.Fieldf(d.env, "must be a Go duration such as 5s, above 0 and at most %s", d.max)
		}
		*d.dst = x
	}
	if v := getenv(EnvCacheSize); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 10_000_000 {
			return Settings{}, fault.Fieldf(EnvCacheSize, "must be a whole number from 1 to 10000000")
		}
		o.CacheSize = n
	}
	if v := getenv(EnvLambdaLogLevel); v != "" {
		if err := s.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return Settings{}, fault.Fieldf(EnvLambdaLogLevel, "must be DEBUG, INFO, WARN or ERROR")
		}
	}
	if o.Routes, err = verify.ParseRoutes(getenv(EnvRoutes)); err != nil {
		return Settings{}, fault.Fieldf(EnvRoutes, "%v", err)
	}
	return s, nil
}
