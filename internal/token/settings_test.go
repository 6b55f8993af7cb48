package token_test

import (
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/token"
)

func TestSettingsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := token.SettingsFromEnv(env(nil))
	if err != nil || s.Issuer != "keygate" || s.Audience != "keygate" || s.TTL != 15*time.Minute ||
		s.MaxTTL != time.Hour || s.Rotation != 30*24*time.Hour || s.KMSKeys != nil || s.Dir != "" {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	if _, err := token.NewBackend(s, nil); fault.FieldOf(err) != token.EnvSigningKey {
		t.Errorf("no signing backend configured: %v", err)
	}
	s, err = token.SettingsFromEnv(env(map[string]string{
		token.EnvSigningKey: " arn:a , arn:b,", token.EnvIssuer: "https://api.example.com",
		token.EnvTTL: "5m", token.EnvMaxTTL: "2h", token.EnvRotation: "168h",
	}))
	if err != nil || !slices.Equal(s.KMSKeys, []string{"arn:a", "arn:b"}) || s.Issuer != "https://api.example.com" ||
		s.TTL != 5*time.Minute || s.MaxTTL != 2*time.Hour || s.Rotation != 168*time.Hour {
		t.Fatalf("set: %+v, %v", s, err)
	}
	for name, m := range map[string]map[string]string{
		token.EnvTTL:      {token.EnvTTL: "2h"}, // above the default maximum
		token.EnvMaxTTL:   {token.EnvMaxTTL: "25h"},
		token.EnvRotation: {token.EnvRotation: "10m"},
	} {
		if _, err := token.SettingsFromEnv(env(m)); fault.FieldOf(err) != name {
			t.Errorf("%v: %v, want an error naming %s", m, err, name)
		}
	}
}
