# Two commands set up a fresh machine and run something:
#   make manual   - install, then run the whole handbook (quick preset) on the stand-in data
#   make test     - install, then run the test suite (real-data, PostgreSQL and browser tests included)
# Both install what they need: the Python packages into $(VENV), and (as root) the Debian packages
# through .ci/system-packages.sh; without root that script names what to install, in one line.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/ag_news_mini
EXTRAS ?= dev

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch 2.13.0 satisfies torch>=2.5,<2.14; on this workplace's machines it is a local CPU build
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

# PostgreSQL, Chromium, a CJK font and tcmalloc, as the tests need them (.ci/services.sh starts the server)
test: install
	source .ci/services.sh && NEWSLAB_DATA_DIR=$(abspath $(DATA)) $(PY) -m pytest $(PYTEST_ARGS)

# ruff (lint + format), mypy and the import-layers contract; CI runs these too
lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# tcmalloc (training memory) and a CJK font (--lang zh) are optional for the handbook
manual: install
	.ci/system-packages.sh --optional libtcmalloc-minimal4 fonts-wqy-microhei
	NEWSLAB_DATA_DIR=$(abspath $(DATA)) $(VENV)/bin/newslab manual --preset quick

.PHONY: install test lint manual
