# Two set-up commands: `make dev` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test services openapi migrate clean

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

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
