# The two set-up commands: `make run` (ingest the samples, serve chat + API) and `make test`.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The seed article lives beside the checkout (../shared/data/seed); ingest it when present.
SEED   := $(wildcard ../shared/data/seed/*.txt)

.PHONY: install run test test-fast lint ingest clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

ingest: install
	$(VENV)/bin/newsdesk-ingest samples $(SEED)

run: ingest
	$(PY) ui.py

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf .newsdesk .pytest_cache .ruff_cache
