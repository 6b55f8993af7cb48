# keygate: every command a developer or CI needs. `make test` and `make dev`
# install what is missing first, so a fresh clone needs only Go, Node and Java
# (and installs Java itself through apt-get when it is absent).

SHELL := /bin/bash
GO ?= go
GOFILES = $(shell find . -name '*.go' -not -path './node_modules/*' -not -path './cdk.out/*' -not -path './.local/*')
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The fuzz runs in `make test` are bounded by executions, not time: with a
# duration, Go 1.26's fuzz coordinator can fail a run with a bare "context
# deadline exceeded" at the deadline on a loaded machine (golang/go#75804,
# fixed in Go 1.27). About 5 s each here; a crasher still fails the run.
FUZZTIME ?= 400000x
TOKEN_FUZZ ?= 100000x
ROUTE_FUZZ ?= 100000x

.PHONY: help deps deps-browser test test-browser lint fuzz bench mutate dev build synth clean

# The first target is the default: `make` alone lists the others.
## help: this list, from each target's `## target:` comment.
help:
	@awk '/^## [a-z-]+:/ { sub(/^## /, ""); name = $$0; sub(/:.*/, "", name); sub(/^[a-z-]+: */, ""); \
	  printf "  %-12s %s\n", name, $$0; more = 1; next } \
	  more && /^## / { sub(/^## /, ""); printf "  %-12s %s\n", "", $$0; next } { more = 0 }' $(firstword $(MAKEFILE_LIST))

# Every folder under functions/ is one Lambda function, built as Lambda's
# provided.al2023 runtime on arm64 runs it: a static, stripped, reproducible
# bin/<function>/bootstrap (no RPC shim, hence lambda.norpc).
FUNCTIONS = $(notdir $(patsubst %/,%,$(wildcard functions/*/)))
GOBUILD_LAMBDA = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -buildvcs=false -ldflags='-s -w -buildid='

## deps: Go modules, the pinned npm tools (CDK CLI, DynamoDB Local), Java,
## and zsh and fish (the CLI's completion scripts are tested in each shell).
deps:
	@# npm ci only when node_modules does not hold exactly package-lock.json's
	@# tree (a content check, not mtimes: fresh clones and worktrees have new mtimes).
	@want=$$(sha256sum package-lock.json | cut -d' ' -f1); \
	if [ "$$(cat node_modules/.keygate-lock 2>/dev/null)" != "$$want" ]; then \
	  npm ci --no-audit --no-fund && echo "$$want" > node_modules/.keygate-lock; fi
	$(GO) mod download
	@command -v java >/dev/null 2>&1 || { \
	  echo "java is missing: installing openjdk-17-jre-headless with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openjdk-17-jre-headless; }
	@missing=$$(for sh in zsh fish; do command -v $$sh >/dev/null 2>&1 || echo $$sh; done); \
	if [ -n "$$missing" ]; then \
	  echo "$$(echo $$missing) missing: installing with apt-get (the completion tests run each shell)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; fi

## deps-browser: Debian's chromium, which the console's browser tests drive.
deps-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium is missing: installing it with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

## test: every test but the browser tests (make test-browser), with the race
## detector, against DynamoDB Local; the allocation tests again without it;
## short fuzz runs of the key parser, the token verifier and the route
## matcher; then `make synth`.
# The allocation tests run without -race too because the race detector
# changes allocation counts (see internal/alloctest).
# The CDK tests (infra/) run in their own invocation without -race: the
# aws-cdk-go bindings take about two minutes to compile on two cores, once
# per build mode, and without -race that compile is the one `go run ./infra`
# in `make synth` reuses. They start no goroutines of their own, and they
# pass under -race too (`go test -race ./infra/...`).
test: deps
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e '/infra$$' -e '/infra/' -e '/internal/console/browser$$')
	$(GO) test -count=1 -timeout 10m ./infra/...
	$(GO) test -count=1 -run 'AllocatesNothing' $$(grep -rl --include='*_test.go' 'func Test[A-Za-z]*AllocatesNothing[A-Za-z]*(t ' internal | xargs -n1 dirname | sort -u | sed 's|^|./|')
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/apikey
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(TOKEN_FUZZ) ./internal/token
	$(GO) test -run '^$$' -fuzz '^FuzzRoutesFailClosed$$' -fuzztime $(ROUTE_FUZZ) ./internal/verify
	@$(MAKE) --no-print-directory synth

## test-browser: the console's tests in headless Chromium, against the local
## stack (DynamoDB Local); screenshots go to build/console/.
# Kept out of `make test` to hold that under 10 minutes; .ci/run runs both.
test-browser: deps deps-browser
	$(GO) test -race -count=1 -timeout 10m ./internal/console/browser

## lint: gofmt, go vet, staticcheck, and go.mod and go.sum as `go mod tidy`
## leaves them, for the module and the example CDK app.
EXAMPLE = infra/examples/attach
lint: deps
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go mod tidy would change go.mod or go.sum:"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@# The example app is a module of its own, outside ./... above.
	cd $(EXAMPLE) && $(GO) mod tidy -diff >/dev/null || { echo "go mod tidy would change $(EXAMPLE)/go.mod or go.sum"; exit 1; }
	cd $(EXAMPLE) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

## fuzz: a longer fuzz run of the key parser, the token verifier and the
## route matcher.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 60s ./internal/apikey
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 1500000x ./internal/token
	$(GO) test -run '^$$' -fuzz '^FuzzRoutesFailClosed$$' -fuzztime 3000000x ./internal/verify

## bench: the benchmarks quoted in docs/benchmarks.md (compare runs with benchstat).
bench: deps
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkHotKey$$' -benchmem -count 6 ./internal/apikey ./internal/verify ./internal/authorizer | tee bench.txt
	$(GO) test -run '^$$' -bench . -benchmem -count 6 -cpu 1 ./internal/token | tee -a bench.txt

## mutate: mutation testing (gremlins) of MUTATE_PKGS; prints each package's
## efficacy and fails below MUTATE_THRESHOLD (85%). See docs/testing.md.
# Each small bug gremlins makes in a package must fail that package's
# tests; efficacy is killed / (killed + lived). .ci/run runs the fast
# packages; the slow ones (DynamoDB Local per mutant) are run by hand and
# their numbers kept in docs/testing.md.
# GOFLAGS=-count=1 keeps go test from caching the coverage run, whose time
# sets each mutant's timeout (times the coefficient).
MUTATE_PKGS ?= internal/apikey internal/key internal/verify internal/store
MUTATE_THRESHOLD ?= 85
MUTATE_WORKERS ?= 1
mutate: deps
	@out=$$(mktemp -d); fail=0; \
	for p in $(MUTATE_PKGS); do \
	  echo "gremlins: $$p"; \
	  GOFLAGS=-count=1 $(GO) tool gremlins unleash --workers $(MUTATE_WORKERS) --timeout-coefficient 10 \
	    --threshold-efficacy $(MUTATE_THRESHOLD) $$p > $$out/run.txt 2>&1 || fail=1; \
	  grep -v -e ' KILLED ' -e 'NOT COVERED' $$out/run.txt; \
	  echo "$$p: $$(grep -h 'Test efficacy' $$out/run.txt || echo 'no result (see above)')" >> $$out/summary.txt; \
	done; \
	echo; echo "mutation testing, threshold $(MUTATE_THRESHOLD)%:"; cat $$out/summary.txt; rm -rf $$out; \
	exit $$fail

## build: bin/<function>/bootstrap for every function, to inspect them (the
## CDK app builds its own during synth, the same way: keygatecdk.GoCode).
build:
	@for f in $(FUNCTIONS); do \
	  echo "build bin/$$f/bootstrap"; \
	  $(GOBUILD_LAMBDA) -o bin/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## synth: the CDK app synthesized offline by the pinned CLI, into cdk.out/.
# The CLI comes from node_modules, never a download, and runs with no version
# check, no notices, no telemetry, no context lookups and no EC2 metadata
# probe for credentials. The app builds every function during synth
# (keygatecdk.GoCode), so this proves the functions build and the stack
# synthesizes from them. The example app (infra/examples/attach) is
# synthesized by TestExampleAppSynthesizes in the CDK tests.
CDK_OFFLINE = CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true
synth: deps
	$(CDK_OFFLINE) npx --no-install cdk synth --quiet --no-notices --no-version-reporting --no-lookups

## dev: the whole system on this machine: DynamoDB Local (data in .local/),
## the functions and the local gateway on 127.0.0.1:$PORT (default 3000),
## and the console on 127.0.0.1:$CONSOLE_PORT (default 4000).
# Ctrl-C stops everything it started. See docs/local-stack.md.
dev: deps
	$(GO) build -o bin/keygate-dev ./cmd/keygate-dev
	exec ./bin/keygate-dev

## clean: remove the build output (bin/, cdk.out/); .local/ (make dev's data) stays.
clean:
	rm -rf bin build cdk.out .local/tmp
