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

# `cercle check` exits 3 when no provider is configured (then the sandbox), another non-zero
# code when a setting or the data key is wrong (then it says why and stops). With providers,
# `cercle doctor` shows its findings first and stops on failures (exit 2), not on warnings.
start: $(STAMP)
	@$(VENV)/bin/cercle check >/dev/null 2>&1; status=$$?; \
	if [ $$status -eq 3 ]; then \
		echo "No provider configured: starting the sandbox (see README, Configuration)."; \
		exec $(VENV)/bin/cercle sandbox; \
	elif [ $$status -ne 0 ]; then \
		$(VENV)/bin/cercle check; exit $$status; \
	fi; \
	$(VENV)/bin/cercle db upgrade || exit $$?; \
	$(VENV)/bin/cercle doctor; status=$$?; \
	if [ $$status -ge 2 ]; then \
		echo "cercle doctor found failures (FAIL above): fix them, then run make start again."; \
		exit $$status; \
	fi; \
	exec $(VENV)/bin/cercle run

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
