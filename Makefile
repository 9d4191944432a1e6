# Every target does its own setup: a virtualenv with the pinned requirements and, for tests,
# the Debian packages they use (installed when running as root, as CI does).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
STACKS := dev prod
DEBIAN_PACKAGES := prometheus prometheus-alertmanager

.PHONY: help venv debian-packages render render-all test bench clean

help:
	@echo "make render STACK=<name>  render Pulumi.<name>.yaml offline into build/<name>/"
	@echo "make test                 the whole test suite"
	@echo "make bench                render and unit-suite timings"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

debian-packages:
	@missing=""; for tool in promtool amtool; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "promtool/amtool missing: run 'sudo apt-get install $(DEBIAN_PACKAGES)'" >&2; exit 1; \
	  fi; \
	fi

render: venv
	$(PY) -m tools.render $(STACK)

render-all: venv
	@for s in $(STACKS); do $(PY) -m tools.render $$s || exit 1; done

test: venv debian-packages
	$(PY) -m pytest -q tests

bench: venv
	$(PY) -m tools.bench $(STACKS)

clean:
	rm -rf build
