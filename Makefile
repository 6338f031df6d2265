# Two commands on a fresh machine (Python 3.11+ with venv):
#   make start   install, then run Cercle (the sandbox when no provider is configured)
#   make test    install, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: start test check lint format messages clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

start: $(STAMP)
	@if $(VENV)/bin/cercle check >/dev/null 2>&1; then \
		$(VENV)/bin/cercle db upgrade && exec $(VENV)/bin/cercle run; \
	else \
		echo "No provider configured: starting the sandbox (see README, Configuration)."; \
		exec $(VENV)/bin/cercle sandbox; \
	fi

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

check: lint test

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Re-extract translatable texts into the catalogues (translators then edit the .po files).
messages: $(STAMP)
	$(PY) -m tests.i18n_tools update

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
