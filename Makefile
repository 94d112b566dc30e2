# Two set-up commands: `make dev` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test services openapi migrate clean bench bench-quick fuzz test-faults

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/notifygw dev

services:
	bash .ci/services

test: $(STAMP) services
	$(BIN)/pytest -q

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

# Benchmarks start real processes and report against baselines (docs/performance.md). ~25 min; bench-quick ~5.
bench: $(STAMP) services
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

bench-quick: $(STAMP) services
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python bench/run_all.py --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
