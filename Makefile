# cooper's contract: `make run` runs it locally, `make test` passes every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON ?= python3
CARGO ?= cargo
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt | sha256sum | cut -c1-12)
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-$(shell cat requirements-tools.txt | sha256sum | cut -c1-12)
FUNCTIONS := issue-credentials enroll-totp admin-targets audit-notify web-console saml-signin rotate-keys
BENCH_STAMP := $(VENV)/.bench-$(shell cat bench/requirements.txt | sha256sum | cut -c1-12)
OIDC := tests/oidc
OIDC_STAMP := $(OIDC)/node_modules/.installed-$(shell cat $(OIDC)/package-lock.json | sha256sum | cut -c1-12)

.PHONY: help run test fuzz bench soak mutants openapi fmt-check fmt clippy deps chromium xmlsec1 tools lint build deploy clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

run: deps ## Run cooper locally: moto on loopback, `cooper setup`, `cooper serve` on 127.0.0.1:8080
	scripts/run-local.sh

test: deps fmt-check clippy lint ## Every test: formatting, clippy, template lint, unit and end-to-end tests against moto, a short fuzz run
	$(CARGO) build --quiet -p cooper-cli
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	scripts/fuzz.sh quick

fuzz: deps ## Fuzz every API operation from docs/openapi.json with schemathesis against `cooper serve` and moto (long run)
	scripts/fuzz.sh long

bench: deps $(BENCH_STAMP) ## Benchmarks (release build, moto): cold start vs Python, overhead vs the SDK floor, scale, size, memory -> docs/bench/
	$(CARGO) build --quiet -p cooper-cli
	$(CARGO) build --release $(addprefix -p cooper-,$(FUNCTIONS)) -p cooper-bench
	$(VENV)/bin/python bench/run.py

# SOAK_SECONDS=60 for a shorter run; scripts/soak.py --help for the rest.
SOAK_SECONDS ?= 300

soak: $(STAMP) ## Soak `cooper serve` (debug) against moto: many users' mixed load, faults mid-run, audit and memory checked -> docs/bench/soak.md
	$(CARGO) build --quiet -p cooper-cli
	$(VENV)/bin/python scripts/soak.py --seconds $(SOAK_SECONDS)

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -r bench/requirements.txt
	@rm -f $(VENV)/.bench-*
	@touch $@

# Every mutant of the modules in .cargo/mutants.toml, built and run against cooper-core's tests:
# hours on two cores. MUTANTS_ARGS goes to cargo-mutants (`--iterate`: retest only what earlier
# passes did not catch; `-j 2`: two at once). scripts/mutants.sh installs the pinned version.
mutants: ## Mutation testing of the security core (cargo-mutants, hours; not part of `make test`) -> docs/mutants.md
	PYTHON=$(PYTHON) scripts/mutants.sh $(MUTANTS_ARGS)

openapi: ## Regenerate docs/openapi.json from the Rust types and handlers (utoipa, feature `openapi`)
	COOPER_WRITE_OPENAPI=1 $(CARGO) test --quiet -p cooper-api --features openapi --test openapi

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: ## Lint the Rust code (warnings are errors), also with the OpenAPI generator's feature
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p cooper-core -p cooper-api --all-targets --features openapi -- -D warnings

fmt: ## Format the Rust code
	$(CARGO) fmt --all

deps: $(STAMP) $(OIDC_STAMP) chromium xmlsec1 ## Install what the local run and tests need (a Python venv with moto, Playwright and pysaml2; the test OpenID Provider; Debian's Chromium and xmlsec1)

# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work
# here): installed with apt-get when it is missing.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The test SAML IdP (pysaml2) signs with Debian's xmlsec1: installed with apt-get when missing.
xmlsec1:
	@if [ ! -x /usr/bin/xmlsec1 ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq xmlsec1 >/dev/null; \
	fi

$(STAMP): requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

tools: $(TOOLS_STAMP) ## Install cfn-lint, the SAM CLI and cargo-lambda (a venv of their own)

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@rm -f $(TOOLS)/.installed-*
	@touch $@

lint: $(TOOLS_STAMP) ## Lint the SAM template (in its single- and multi-region forms) and the target-account template (cfn-lint, sam validate --lint); hold the function policies to infra/function-policies.json; check docs/openapi.json is generated
	$(CARGO) test --quiet -p cooper-api --features openapi --test openapi
	$(TOOLS)/bin/python scripts/check_policies.py
	$(TOOLS)/bin/python scripts/multi_region.py
	$(TOOLS)/bin/cfn-lint template.yaml infra/*.yaml
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/bin/sam validate --lint --template template.yaml

# cargo-lambda cross-compiles with the zig pip installed (python3 -m ziglang): the tools' venv
# must come first on PATH. Release builds take a while (about 15 minutes on two cores).
build: $(TOOLS_STAMP) ## Build each function as an arm64 bootstrap zip (release) under target/lambda/
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(TOOLS)/bin/cargo-lambda lambda build --release --arm64 --output-format zip $(addprefix --bin ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap.zip; done

deploy: $(TOOLS_STAMP) ## Deploy to AWS with SAM (sam build, then sam deploy with samconfig.toml)
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(TOOLS)/bin/sam build --beta-features
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(TOOLS)/bin/sam deploy

# Developing like a SAM user: one function under cargo-lambda's emulator, or the whole API under
# `sam local`, against moto with the configuration `make run` uses (scripts/lambda-local.sh,
# scripts/sam-local.sh; the README's "Developing like a SAM user").
.PHONY: watch invoke sam-local

watch: $(STAMP) $(TOOLS_STAMP) ## Run FUNCTION under `cargo lambda watch` against moto (`make run`'s, or its own), rebuilt on every edit
	scripts/lambda-local.sh watch "$(FUNCTION)"

invoke: $(STAMP) $(TOOLS_STAMP) ## Send EVENT (a fixture of events/) to the function `make watch` runs, with a real token; print its answer
	scripts/lambda-local.sh invoke "$(FUNCTION)" "$(EVENT)"

sam-local: $(STAMP) $(TOOLS_STAMP) ## `sam build` and `sam local start-api` on 127.0.0.1:3000, every function pointed at moto (needs Docker)
	scripts/sam-local.sh

$(OIDC_STAMP): $(OIDC)/package-lock.json
	cd $(OIDC) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean: ## Remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV) $(TOOLS) .tools .run $(OIDC)/node_modules
