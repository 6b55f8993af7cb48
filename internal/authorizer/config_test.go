package authorizer_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
)

func TestLoadSettings(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := authorizer.LoadSettings(cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	o := s.Verify
	if s.LogLevel != slog.LevelInfo || o.CacheTTL != 5*time.Second || o.NegativeTTL != time.Minute || o.StoreTimeout != 2*time.Second || o.ServeStale != 0 || s.QueryParam != "" || len(o.Routes) != 0 {
		t.Fatalf("defaults: %+v", s)
	}
	set := map[string]string{
		authorizer.EnvCacheTTL: "2s", authorizer.EnvServeStale: "30s", authorizer.EnvKeyQueryParam: "key",
		authorizer.EnvRoutes: `[{"method":"GET","path":"/x","scopes":["a"]}]`,
	}
	s, err = authorizer.LoadSettings(cfg, func(k string) string { return set[k] })
	if err != nil || s.Verify.CacheTTL != 2*time.Second || s.Verify.ServeStale != 30*time.Second || s.QueryParam != "key" || len(s.Verify.Routes) != 1 {
		t.Fatalf("set: %+v %v", s, err)
	}
	for env, bad := range map[string]string{
		authorizer.EnvCacheTTL:       "0s",
		authorizer.EnvStoreTimeout:   "9s", // too close to API Gateway's 10 s
		authorizer.EnvServeStale:     "-1s",
		authorizer.EnvCacheSize:      "many",
		authorizer.EnvRoutes:         `{"not":"a list"}`,
		authorizer.EnvLambdaLogLevel: "LOUD",
	} {
		_, err := authorizer.LoadSettings(cfg, func(k string) string {
			if k == env {
				return bad
			}
			return ""
		})
		if fault.FieldOf(err) != env {
			t.Errorf("%s=%s: err = %v, want an error naming %s", env, bad, err, env)
		}
	}
}
