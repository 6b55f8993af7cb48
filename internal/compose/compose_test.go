package compose_test

import (
	"context"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/tokens"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/localstack"
)

// Each function reads exactly the settings the registry says it reads, so
// that the stack sets each function's variables (and the docs list its
// readers) truthfully: a composition that starts reading a setting, or
// stops, fails this test until the registry says so.
func TestFunctionsReadWhatTheRegistrySays(t *testing.T) {
	if len(localstack.Functions) != len(config.Functions()) {
		t.Fatalf("%d compositions, %d functions in the registry", len(localstack.Functions), len(config.Functions()))
	}
	registered := map[string]bool{}
	for _, s := range config.All() {
		if s.Env != "" {
			registered[s.Env] = true
		}
	}
	for _, fn := range config.Functions() {
		c := localstack.Functions[fn]
		if c == nil {
			t.Errorf("%s has no composition", fn)
			continue
		}
		var mu sync.Mutex
		read := map[string]bool{}
		set := map[string]string{"KEYGATE_DYNAMODB_ENDPOINT": "http://127.0.0.1:1", "KEYGATE_SIGNING_DIR": t.TempDir()}
		getenv := func(k string) string {
			mu.Lock()
			defer mu.Unlock()
			if registered[k] {
				read[k] = true
			}
			return set[k]
		}
		if _, err := c(context.Background(), compose.Env{Getenv: getenv, Stdout: io.Discard}); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		var got, want []string
		for k := range read {
			got = append(got, k)
		}
		for _, s := range config.All() {
			if s.ReadBy(fn) {
				want = append(want, s.Env)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s reads %s;\nthe registry says %s", fn, strings.Join(got, " "), strings.Join(want, " "))
		}
	}
}

// Deployed, the AWS configuration comes from the variables Lambda sets:
// the region and the execution role's credentials, as static credentials
// (as the SDK's default chain reads them there).
func TestAWSConfigComesFromLambdasVariables(t *testing.T) {
	env := map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "token", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
	}
	e := compose.Env{Getenv: func(k string) string { return env[k] }}
	cfg, err := e.AWS()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || cfg.Region != "eu-west-1" || creds.AccessKeyID != "AKIDEXAMPLE" || creds.SecretAccessKey != "secret" ||
		creds.SessionToken != "token" || cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != "http://127.0.0.1:9" {
		t.Fatalf("config %+v, credentials %+v, %v", cfg, creds, err)
	}
	delete(env, "AWS_ACCESS_KEY_ID")
	if _, err := e.AWS(); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("without credentials: %v, want an error naming the variable", err)
	}
}

// A default token lifetime above the longest one is refused at cold start,
// naming the variable to fix.
func TestTokenLifetimeCannotExceedItsMaximum(t *testing.T) {
	env := map[string]string{"KEYGATE_TOKEN_TTL": "2h"} // the maximum stays at its default, 1h
	_, err := tokens.LoadSettings(func(k string) string { return env[k] })
	if fault.FieldOf(err) != "KEYGATE_TOKEN_TTL" {
		t.Errorf("TTL above the maximum: %v", err)
	}
}
