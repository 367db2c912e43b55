# The README's two commands. Each creates .venv when missing and installs the project into it;
# the stamp file makes a second run install nothing until pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.mltk-installed

.PHONY: test demo bench-install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	# the browser test of mltk serve's page drives Debian's chromium (nothing is downloaded at test time)
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/ruff check mltoolkit tests benchmarks
	# one worker per core, a test module per worker; the learning tests (minutes each) go first, in the
	# order tests/conftest.py gives them (xdist would otherwise reorder modules by test count: them last)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

# The benchmarks' peers (Stable-Baselines3) and measuring tools.
bench-install: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
