# Airlift: `make demo` runs the main job, `make deploy` the production shape, `make test` runs the
# tests (see README.md).
# Every target installs what it needs first (`make install`): missing Debian/Ubuntu
# packages (.ci/install-system-packages.sh), then the virtualenv .venv from $(PYTHON) with
# requirements.txt, re-installed only when requirements.txt changes.

PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.requirements-installed

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

.PHONY: install system-packages test lint demo demo-down deploy deploy-down bench

install: system-packages $(STAMP)

system-packages:
	@PYTHON='$(PYTHON)' VENV='$(VENV)' .ci/install-system-packages.sh

$(STAMP): requirements.txt | system-packages
	@command -v '$(PYTHON)' >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@if [ ! -x $(VENV)/bin/python ]; then echo "creating $(VENV) from $(PYTHON)"; '$(PYTHON)' -m venv $(VENV); fi
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	@touch $@

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

lint: install
	$(VENV)/bin/ruff check .

demo: install
	$(VENV)/bin/python -m lab.demo up

demo-down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m lab.demo down; else echo "nothing to stop: no $(VENV)"; fi

deploy: install
	$(VENV)/bin/python -m lab.deploy up

deploy-down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m lab.deploy down; else echo "nothing to stop: no $(VENV)"; fi

bench: install
	$(VENV)/bin/python -m bench
