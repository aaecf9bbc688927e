# feedpub — two commands a fresh machine with Python 3.11 needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config.toml
# The sample newsroom's unsubscribe-token key. Real deployments set their own secret.
export FEEDPUB_SECRET ?= sample-newsroom-key-not-for-production

# test-future: the suite again with the wall clock this many years ahead (nothing may depend
# on today's date; subprocesses keep the real date).
FUTURE ?= $(shell date -u -d '+5 years' +%Y-%m-%dT%H:%M:%S)

.PHONY: run test test-future smoke lint typecheck pytest system-tools golden bench clean fuzz

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python >= 3.11) on PATH, or make PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/feedpub --config $(CONFIG) publish
	$(BIN)/feedpub --config $(CONFIG) digest preview daily

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy src

pytest: $(VENV)/.installed system-tools
	$(BIN)/pytest -q

# Programs some tests drive for real: Debian's Chromium (the pages readers open, through
# Playwright) and Dovecot (IMAP bounce ingest). Installed when missing and apt-get can;
# otherwise those tests skip, saying why.
system-tools:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing$$missing (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	    || echo "could not install$$missing; the tests that need them will skip"; \
	elif [ -n "$$missing" ]; then echo "not installed:$$missing; the tests that need them will skip"; fi

test: lint typecheck pytest

# Fuzz the folder source, the pasted reader and the text cleaner for MINUTES minutes
# (tests/fuzz_content.py); prints inputs=… inputs/s=… crashes=… unsafe_outputs=…
MINUTES ?= 1
fuzz: $(VENV)/.installed
	$(BIN)/python -m tests.fuzz_content --minutes $(MINUTES)

test-future: $(VENV)/.installed system-tools
	$(BIN)/pytest -q --wall-clock=$(FUTURE)

# The package as a user gets it: build the wheel, install it without extras in a fresh
# venv, import every module, publish a folder + feed + pages newsroom (127.0.0.1 only).
smoke:
	PYTHON=$(PYTHON) .ci/wheel-smoke

golden: $(VENV)/.installed
	$(BIN)/python tests/regenerate_golden.py

bench: $(VENV)/.installed
	for b in bench/[!_]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf feeds outbox preview feedpub.db feedpub.db-* feedpub.db.*.lock .pytest_cache .mypy_cache .ruff_cache
