# Two set-up commands: `make dev` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint services openapi migrate clean bench bench-quick fuzz test-faults

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/notifygw dev

services:
	bash .ci/services

# Lint and types first (seconds), then the suite in parallel: each xdist worker makes its own database,
# ports and Redis namespace (tests/conftest.py). The layer contracts run inside the suite (tests/meta).
# Two workers for two cores: the suite is CPU-bound (real servers and workers per test process), and more
# workers only raise the load that timing tests suffer from. --tb=native: CPython 3.11.7 can raise
# "AST constructor recursion depth mismatch" while pytest renders a failure's source, which kills an
# xdist worker and the whole session with it.
test: $(STAMP) services lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --tb=native

TEST_WORKERS ?= 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

openapi: $(STAMP)
	$(BIN)/notifygw openapi

migrate: $(STAMP)
	$(BIN)/notifygw migrate

# Schemathesis against openapi/openapi.json on a live gateway, 100 examples per operation (~6 min; docs/fuzzing.md).
# `make test` runs the same module with a short budget.
fuzz: $(STAMP) services
	NOTIFYGW_FUZZ_EXAMPLES=100 $(BIN)/pytest -q -p no:cacheprovider tests/fuzz

# The fault battery at the issue's counts (1,000 sends, 60 s floods; ~40 min). `make test` runs it small.
test-faults: $(STAMP) services
	NOTIFYGW_FAULTS_FULL=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/faults

# Benchmarks start real processes and end with one PASS/FAIL table of the goals against the same run's baselines
# (targets: bench/targets.py; docs/performance.md). ~40-60 min; bench-quick ~10.
bench: $(STAMP) services
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

bench-quick: $(STAMP) services
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python bench/run_all.py --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
