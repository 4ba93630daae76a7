# Liandong: `make demo` runs the main job from a fresh clone; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_BASE ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA := deploy/kafka/kafka.sh
PG := deploy/postgres/postgres.sh
S3 := deploy/s3/s3.sh
# KAFKA_NODES=3: a three-node KRaft cluster on 127.0.0.1 (deploy/kafka/kafka.sh), the stack on it.
export KAFKA_NODES ?= 1
export LIANDONG_KAFKA_BOOTSTRAP ?= $(shell KAFKA_NODES=$(KAFKA_NODES) bash $(KAFKA) bootstrap)

.PHONY: help install proto proto-check kafka-up kafka-down kafka-status topics registry \
        up down demo test lint typecheck unit integration bench chaos pg-up pg-down s3-up s3-down clean web browser \
        oidc-provider

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON_BASE) >/dev/null || { echo "need $(PYTHON_BASE)"; exit 1; }
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pip install -q maturin==1.16.0 && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pip install -q --no-build-isolation ./src/liandong/hj212/rust
	@touch $@

WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public web/console -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run --silent build

# the tests' OpenID Connect provider (panva/oidc-provider, pinned by its lockfile)
OIDC_STAMP := tests/oidc_provider/node_modules/.installed

$(OIDC_STAMP): tests/oidc_provider/package-lock.json
	cd tests/oidc_provider && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

oidc-provider: $(OIDC_STAMP) ## the OpenID Connect provider the OIDC sign-in tests run (npm ci)

web: web/dist/index.html ## build the front ends (web/dist), served by dispatch

browser: ## Debian's Chromium and a CJK font for the browser tests (installed when missing)
	@deploy/browser/chromium.sh

install: $(STAMP) web/dist/index.html ## venv with pinned dependencies, the web build, Kafka jars
	@$(KAFKA) jars
	@$(S3) jars

proto: $(STAMP) ## regenerate Python code from proto/
	$(PY) -m liandong.protogen

kafka-up: $(STAMP) ## start the local Kafka broker (KRaft; KAFKA_NODES=3 for a cluster), idempotent
	@$(KAFKA) up

kafka-down: ## stop the local Kafka broker (or the KAFKA_NODES cluster)
	@$(KAFKA) down

kafka-status:
	@$(KAFKA) status

topics: kafka-up ## create or align every topic
	$(VENV)/bin/liandong topics ensure

registry: topics ## publish deploy/registry/demo.yaml to the registry topics
	$(VENV)/bin/liandong registry load deploy/registry/demo.yaml

up: registry ## keep Kafka and every service running (make down stops them)
	$(PY) -m liandong.cli stack up

down: ## stop the services started by make up, then Kafka
	-$(PY) -m liandong.cli stack down
	@$(KAFKA) down

demo: install ## install what is missing, start everything, run an exceedance, stop everything
	@started=0; $(KAFKA) status >/dev/null 2>&1 || started=1; \
	trap 'if [ $$started = 1 ]; then $(KAFKA) down; fi' EXIT; \
	trap 'exit 130' INT TERM; \
	$(KAFKA) up && $(VENV)/bin/liandong demo

lint: $(STAMP) $(WEB_STAMP) ## ruff, import contracts (lint-imports), and tsc over the web apps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	cd web && npm run --silent typecheck

typecheck: $(STAMP) ## mypy
	$(VENV)/bin/mypy src services chaos

unit: $(STAMP) ## pure tests, no broker
	$(VENV)/bin/pytest -q -m "not integration"

test: install browser $(OIDC_STAMP) ## ruff, import contracts, mypy, unit, integration and browser tests (real Kafka, PostgreSQL, Chromium)
	@$(MAKE) --no-print-directory lint typecheck
	@started_kafka=0; started_pg=0; started_s3=0; \
	$(KAFKA) status >/dev/null 2>&1 || started_kafka=1; \
	$(PG) status >/dev/null 2>&1 || started_pg=1; \
	$(S3) status >/dev/null 2>&1 || started_s3=1; \
	trap '[ $$started_kafka = 1 ] && $(KAFKA) down; [ $$started_pg = 1 ] && $(PG) down; [ $$started_s3 = 1 ] && $(S3) down; true' EXIT; \
	trap 'exit 130' INT TERM; \
	$(KAFKA) up && $(PG) up && $(S3) up && \
	LIANDONG_TEST_PG_URL="$$($(PG) url)" $(VENV)/bin/pytest -q -m "not browser" && \
	LIANDONG_TEST_PG_URL="$$($(PG) url)" $(VENV)/bin/pytest -q -m browser
# two runs: Playwright's sync API keeps an event loop in the main thread for the session, which
# the asyncio tests after it cannot share

bench: install browser ## benchmarks -> bench/results.json and a table (Kafka, PostgreSQL, S3 started here)
	@started=0; started_pg=0; started_s3=0; $(KAFKA) status >/dev/null 2>&1 || started=1; \
	$(PG) status >/dev/null 2>&1 || started_pg=1; \
	$(S3) status >/dev/null 2>&1 || started_s3=1; \
	trap 'if [ $$started = 1 ]; then $(KAFKA) down; fi; if [ $$started_pg = 1 ]; then $(PG) down; fi; if [ $$started_s3 = 1 ]; then $(S3) down; fi' EXIT; \
	$(KAFKA) up && $(PG) up && $(S3) up && $(PY) -m bench.run

chaos: install ## scripted fault run (3 brokers, 2 replicas each, SIGKILLs) -> chaos/results.json; not in make test
	$(PY) -m chaos $(CHAOS_ARGS)

pg-up: ## start the local PostgreSQL server (Debian's), idempotent
	@$(PG) up

pg-down:
	@$(PG) down

s3-up: ## start the local S3 server (s3proxy over a folder) for the evidence store, idempotent
	@$(S3) up

s3-down:
	@$(S3) down

clean: down ## remove state (broker data, databases), keep the venv and jars
	rm -rf .state
