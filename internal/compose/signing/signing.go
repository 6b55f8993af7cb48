// Package signing composes the token signing backend that the tokens
// function and the rotator share: KMS when KEYGATE_SIGNING_KEY names keys
// (the deployed stack), local Ed25519 keys under KEYGATE_SIGNING_DIR
// otherwise (the local stack).
package signing

import (
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/token/kmssign"
)

// Backend returns the signing backend the environment names; with
// neither variable set, an error naming both.
func Backend(e compose.Env) (token.Backend, error) {
	r := config.FromEnv(e.Getenv)
	keys, dir := config.SigningKey.From(r), config.SigningDir.From(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	switch {
	case len(keys) > 0:
		cfg, err := e.AWS()
		if err != nil {
			return nil, err
		}
		return kmssign.New(cfg, keys), nil
	case dir != "":
		return &token.LocalBackend{Dir: dir}, nil
	}
	key, local := config.SigningKey.Setting().Env, config.SigningDir.Setting().Env
	return nil, fault.Fieldf(key, "set %s (KMS keys, deployed) or %s (a directory for local keys, the local stack)", key, local)
}
