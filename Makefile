# cooper's contract: `make run` runs it locally, `make test` passes every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON ?= python3
CARGO ?= cargo
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt | sha256sum | cut -c1-12)
OIDC := tests/oidc
OIDC_STAMP := $(OIDC)/node_modules/.installed-$(shell cat $(OIDC)/package-lock.json | sha256sum | cut -c1-12)

.PHONY: help run test fmt-check fmt clippy deps clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: deps ## Run cooper locally: moto on loopback, `cooper setup`, `cooper serve` on 127.0.0.1:8080
	scripts/run-local.sh

test: deps fmt-check clippy ## Every test: formatting, clippy, unit and end-to-end tests against moto
	$(CARGO) build --quiet -p cooper-cli
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: ## Lint the Rust code (warnings are errors)
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the Rust code
	$(CARGO) fmt --all

deps: $(STAMP) $(OIDC_STAMP) ## Install what the local run and tests need (a Python venv with moto; the test OpenID Provider)

$(STAMP): requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

$(OIDC_STAMP): $(OIDC)/package-lock.json
	cd $(OIDC) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean: ## Remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV) .run $(OIDC)/node_modules
