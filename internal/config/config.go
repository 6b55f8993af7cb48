// Package config reads the settings every keygate function shares from the
// environment, once, at cold start. Each function's main.go reads its own
// extra settings next to these; the CDK stack and the local stack set the
// same variables, so a function cannot tell which one started it.
package config

import (
	"strings"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/schema"
)

// The environment variables read by Load.
const (
	EnvTable            = "KEYGATE_TABLE"
	EnvKeyPrefix        = "KEYGATE_KEY_PREFIX"
	EnvPepper           = "KEYGATE_PEPPER"
	EnvEnvironments     = "KEYGATE_ENVIRONMENTS"
	EnvEventBus         = "KEYGATE_EVENT_BUS"
	EnvDynamoDBEndpoint = "KEYGATE_DYNAMODB_ENDPOINT"
)

// Config holds the shared settings.
type Config struct {
	// Table is the DynamoDB table (default "keygate").
	Table string
	// Format is the key format for the deployment's prefix (default "kg").
	Format apikey.Format
	// Pepper keys the hash of every key. Empty means plain SHA-256; a
	// deployment should set one (the stack does), so that a copy of the
	// table alone cannot confirm a guessed key.
	Pepper []byte
	// Environments lists the key environments this deployment accepts
	// (default live and test).
	Environments []key.Environment
	// EventBus is the EventBridge bus for lifecycle events; empty means
	// events are not sent (the local stack logs them instead).
	EventBus string
	// DynamoDBEndpoint, when set, points the functions at DynamoDB Local
	// (the local stack and tests); empty means AWS.
	DynamoDBEndpoint string
}

// Load reads the shared settings through getenv (os.Getenv in main, a map in
// tests) and checks them.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		Table:            getenv(EnvTable),
		Pepper:           []byte(getenv(EnvPepper)),
		EventBus:         getenv(EnvEventBus),
		DynamoDBEndpoint: getenv(EnvDynamoDBEndpoint),
	}
	if c.Table == "" {
		c.Table = schema.DefaultTableName
	}
	f, err := apikey.NewFormat(getenv(EnvKeyPrefix))
	if err != nil {
		return Config{}, fault.Fieldf(EnvKeyPrefix, "%v", err)
	}
	c.Format = f
	envs := getenv(EnvEnvironments)
	if envs == "" {
		envs = "live,test"
	}
	for _, e := range strings.Split(envs, ",") {
		switch env := key.Environment(strings.TrimSpace(e)); env {
		case key.Live, key.Test:
			c.Environments = append(c.Environments, env)
		default:
			return Config{}, fault.Fieldf(EnvEnvironments, "unknown environment %q (want live, test or both, comma separated)", e)
		}
	}
	return c, nil
}

// Hasher returns the key hasher for the configured pepper.
func (c Config) Hasher() *apikey.Hasher { return apikey.NewHasher(c.Pepper) }

// Accepts reports whether the deployment accepts keys of environment e.
func (c Config) Accepts(e key.Environment) bool {
	for _, x := range c.Environments {
		if x == e {
			return true
		}
	}
	return false
}
