package config

import (
	"testing"

	"github.com/keygate/keygate/internal/key"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "keygate" || c.Format.Prefix() != "kg" || !c.Accepts(key.Live) || !c.Accepts(key.Test) || len(c.Pepper) != 0 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestSettings(t *testing.T) {
	c, err := Load(env(map[string]string{EnvTable: "t", EnvKeyPrefix: "acme", EnvEnvironments: "live", EnvPepper: "p"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "t" || c.Format.Prefix() != "acme" || c.Accepts(key.Test) || string(c.Pepper) != "p" {
		t.Fatalf("settings: %+v", c)
	}
}

func TestBadSettingsAreRefused(t *testing.T) {
	for _, m := range []map[string]string{{EnvKeyPrefix: "Bad_Prefix"}, {EnvEnvironments: "live,prod"}} {
		if _, err := Load(env(m)); err == nil {
			t.Errorf("Load(%v) accepted a bad setting", m)
		}
	}
}
