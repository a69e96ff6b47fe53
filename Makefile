# Two commands set up a fresh machine and run something:
#   make manual   - install, then run the whole handbook (quick preset) on the stand-in data
#   make test     - install, then run the test suite (real-data tests included)
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

test: install
	NEWSLAB_DATA_DIR=$(DATA) $(PY) -m pytest $(PYTEST_ARGS)

manual: install
	NEWSLAB_DATA_DIR=$(DATA) $(VENV)/bin/newslab manual --preset quick

.PHONY: install test manual
