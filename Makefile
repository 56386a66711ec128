# certferry - run `make` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
# How every function is built for Lambda (provided.al2023); the benchmark
# builds through bootstrap-% too, so the sizes it reports are these builds'.
LAMBDA_ARCH ?= arm64
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"
FUNCTIONS := onboard renewal tracker sweeper sweep-worker publish-installer probe
# The node installer, one build per platform the stack publishes
# (internal/publish.Platforms), named as the publisher's package holds them.
NODE_BUILD = CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w"
INSTALLER_PLATFORMS := linux/amd64 linux/arm64 windows/amd64
INSTALLER_OUT ?= bin/installer
# `certferry version`: the version (git describe) and commit, stamped into
# the CLI (go run does not stamp the VCS revision itself).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
CLI_LDFLAGS = -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)"

.PHONY: help deps build installer-binaries test test-unit lint demo bench fuzz deploy package-regions sync-template $(addprefix invoke-,$(FUNCTIONS))

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-22s %s\n", $$1, $$2}'
	@grep -hE '^\$$\(addprefix invoke-.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ".*## "}; {printf "  %-22s %s\n", "invoke-<function>", $$2}'

deps: ## install what the tests and the demo need (moto_server, nginx, openssl, jq) when missing
	@bash scripts/ensure-deps.sh

build: ## build every function's arm64 bootstrap into bin/<function>/ and the CLI into bin/certferry
	@for f in $(FUNCTIONS); do echo "build $$f"; $(LAMBDA_BUILD) -o bin/$$f/bootstrap ./functions/$$f || exit 1; done
	@echo "build certferry $(VERSION)"; $(GO) build $(CLI_LDFLAGS) -o bin/certferry ./cmd/certferry

bootstrap-%: ## build one function's bootstrap to OUT: make bootstrap-onboard OUT=/tmp/bootstrap [LAMBDA_ARCH=amd64]
	@test -n "$(OUT)" || { echo "OUT= is required"; exit 1; }
	$(LAMBDA_BUILD) -o $(OUT) ./functions/$*

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-OnboardFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/onboard
build-RenewalFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/renewal
build-TrackerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/tracker
build-SweeperFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sweeper
build-ProbeFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/probe

build-SweepWorkerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sweep-worker

# The publisher's package carries the installer builds next to its bootstrap.
build-PublishInstallerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/publish-installer
	@$(MAKE) --no-print-directory installer-binaries INSTALLER_OUT=$(ARTIFACTS_DIR)

installer-binaries: ## build certferry-node for linux/amd64, linux/arm64, windows/amd64 into INSTALLER_OUT (default bin/installer)
	@for p in $(INSTALLER_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; ext=""; [ "$$os" = windows ] && ext=.exe; \
	  echo "build certferry-node $$os/$$arch"; \
	  GOOS=$$os GOARCH=$$arch $(NODE_BUILD) -o "$(INSTALLER_OUT)/certferry-node-$$os-$$arch$$ext" ./cmd/certferry-node || exit 1; done

# Two tiers (README "Tests"). The unit tier needs only Go and a POSIX shell;
# the integration tier (files *_integration_test.go, //go:build integration)
# needs moto_server, botocore, the real servers, root, openssl, python3 and
# make, and fails (never skips) when one is missing. -p 4: the integration
# packages mostly wait (moto serves one request at a time, the real-server
# tests wait out verification budgets), so four run side by side.
test: deps ## both tiers: unit tests + integration tests (moto_server, real nginx/Apache/HAProxy/Postfix, root)
	$(GO) test -count=1 -timeout 30m -p 4 -tags integration ./...

test-unit: ## the unit tier only: no moto_server, no servers, no root (go test ./...)
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet and staticcheck (both tiers' builds), go mod tidy diff, cfn-lint
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags integration ./...
	@cp go.mod /tmp/certferry.go.mod && cp go.sum /tmp/certferry.go.sum && $(GO) mod tidy && \
	  { diff -q go.mod /tmp/certferry.go.mod >/dev/null && diff -q go.sum /tmp/certferry.go.sum >/dev/null || \
	    { echo "go mod tidy changed go.mod/go.sum"; exit 1; }; }
	cfn-lint template.yaml central.yaml

demo: deps ## the whole flow, a renewal reaching nginx, on a private moto_server (ARGS="-v --keep")
	$(GO) run $(CLI_LDFLAGS) ./cmd/certferry demo $(ARGS)

bench: deps ## benchmarks: micro (export check, PFX, onboarding) + fleet-scale suite -> table and bench/results.json
	$(GO) test -tags integration -run '^$$' -bench . -benchmem -benchtime 100x ./...
	$(GO) run ./cmd/certferry-bench -out bench/results.json

# A budget in executions ("300000x"), not seconds: on Go 1.26 a duration
# budget can end in a spurious "context deadline exceeded" FAIL when the
# deadline races a worker still running an input (go.dev/issue/75804, fixed
# in Go 1.27). A count has no deadline to race. FUZZTIME=30s still works.
FUZZTIME ?= 300000x
# Every fuzz target, as package:Function (a test checks the list is complete).
FUZZ_TARGETS := internal/events:FuzzParse internal/events:FuzzParseStatus internal/api:FuzzParseOnboard internal/agentrun:FuzzAllowedPatterns internal/spec:FuzzParseProbe

fuzz: ## run every fuzz target for FUZZTIME each (default 300000x executions, 20-70 s each; CI uses 50000x)
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn in ./$$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; done

# A static pattern rule: make skips implicit (pattern) rules for .PHONY
# targets, so a plain invoke-% rule never ran for the phony invoke-onboard
# ("Nothing to be done"). The recipe fails when the handler fails or
# answers 4xx/5xx with certferry invoke's exit code (3, 4; README "CLI"):
# built, then run (go run would turn every failure into exit 1).
$(addprefix invoke-,$(FUNCTIONS)): invoke-%: ## run a handler locally and fail on errors and 4xx/5xx: make invoke-onboard EVENT=events/onboard-post.json [ARN=...]
	@test -n "$(EVENT)" || { echo "EVENT= is required: make $@ EVENT=events/<file>.json"; exit 2; }
	@$(GO) build $(CLI_LDFLAGS) -o bin/certferry ./cmd/certferry
	bin/certferry invoke $(if $(ARN),-arn $(ARN)) $* $(EVENT)

sync-template: ## copy ssm-documents/certferry-install.yaml into template.yaml
	$(GO) run ./cmd/certferry sync-template

# StackSets (docs/stacksets.md): service-managed StackSets run no transform,
# so the SAM template is packaged once, its code copied to one bucket per
# region (<ARTIFACT_PREFIX>-<region>), processed by CloudFormation and
# rewritten to read the code from the stack's own region.
package-regions: ## StackSets: package once, copy the code to ARTIFACT_PREFIX-<region> for each of REGIONS, print the processed template's URL
	@test -n "$(ARTIFACT_PREFIX)" && test -n "$(HOME_REGION)" && test -n "$(REGIONS)" || \
	  { echo 'usage: make package-regions ARTIFACT_PREFIX=acme-certferry HOME_REGION=us-east-1 REGIONS="us-east-1 eu-west-1"'; exit 2; }
	bash scripts/stackset-template.sh package $(ARTIFACT_PREFIX) $(HOME_REGION) "$(REGIONS)"

deploy: ## sam build && sam deploy (first time: sam deploy --guided)
	sam build && sam deploy
