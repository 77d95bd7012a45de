# ctys.pm: two commands on a fresh Debian/Ubuntu machine, as root:
#   make demo   - install what is needed, start the lab, run playbooks/demo.yml
#   make test   - sanity, lint, unit, integration and lab tests
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(CURDIR)
VENV        := $(ROOT)/.venv
BUILD       := $(ROOT)/.build
PY          := $(VENV)/bin/python
COLLECTIONS := $(BUILD)/collections
COLLECTION  := $(COLLECTIONS)/ansible_collections/ctys/pm
LAB_DIR     ?= $(BUILD)/lab
LAB_MACHINES ?= 3
# make demo: lab03 carries two guests and lab02, which is itself a guest of lab03 with one guest.
LAB_GUESTS ?= {"guests": {"lab03": [{"name": "web", "kind": "honour", "autostart": true}, {"name": "db", "kind": "honour", "autostart": true}], "lab02": [{"name": "inner", "kind": "honour", "autostart": true}]}, "nested": {"lab02": "lab03"}, "stop_delay": 0.5}
PMLAB       := $(ROOT)/tests/lab/pmlab
# The oldest ansible-core meta/runtime.yml admits; make compat runs the tests marked compat with it.
COMPAT_VENV := $(BUILD)/compat-venv
COMPAT_CORE := ansible-core==2.16.19
# The newest ansible-core supported, for ansible-test sanity and integration (make sanity); its
# controller needs Python 3.12 or later.
LATEST_VENV := $(BUILD)/sanity-venv-latest
LATEST_CORE := ansible-core==2.21.5
PYTHON_LATEST ?= $(shell for p in python3.12 python3.13 $$HOME/.pyenv/versions/3.1[2-4]*/bin/python3; do \
	  $$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { command -v $$p; break; }; done)

APT_PACKAGES := python3 python3-venv python3-dev gcc pkg-config rsync \
	openipmi ipmitool wakeonlan etherwake tshark tcpdump openssh-server openssh-client \
	ethtool lm-sensors iproute2 iputils-ping libvirt-clients libvirt-daemon libvirt-dev \
	qemu-system-x86 busybox-static shellcheck network-manager

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(ROOT)/tests/ansible.cfg
export PMLAB_DIR := $(LAB_DIR)
export PYTHONDONTWRITEBYTECODE := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: help deps apt venv collection demo test fuzz sanity lint unit integration pytest \
	ee-check molecule changelog-lint compat compat-venv bench lab-up lab-down lab-status clean \
	latest-venv ansible-test-integration ansible-test-units docs

help:
	@echo "make demo        install, start the lab, run playbooks/demo.yml"
	@echo "make test        sanity + ansible-lint + EE check + molecule + compat + pytest (unit, lab, integration, reliability)"
	@echo "make fuzz        the property tests alone (make test runs them beside pytest, at nice 19)"
	@echo "make compat      the tests marked compat, run with the oldest ansible-core supported ($(COMPAT_CORE))"
	@echo "make docs        build the docsite (antsibull-docs, Sphinx) in .build/docs/build/html"
	@echo "make bench       run every benchmark in bench/ and print their tables"
	@echo "make lab-up | lab-down | lab-status"

deps: apt venv collection

# apt packages: installed only when one is missing (CI starts from a clean machine).
apt: $(BUILD)/apt.stamp
$(BUILD)/apt.stamp: Makefile
	@mkdir -p $(BUILD)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "== apt-get install:" $$missing; \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -q; \
	  $$SUDO apt-get install -y -q --no-install-recommends $$missing </dev/null; \
	fi
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt requirements.txt | apt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt </dev/null
	@touch $@

# The repository root is the collection; Ansible finds it through this link.
collection: $(COLLECTION)
$(COLLECTION):
	@mkdir -p $(dir $(COLLECTION))
	@ln -sfn $(ROOT) $(COLLECTION)

demo: deps
	$(PMLAB) down >/dev/null 2>&1 || true
	$(PMLAB) up --machines $(LAB_MACHINES) --state off --inventory $(LAB_DIR)/inventory.yml --guests '$(LAB_GUESTS)'
	$(PMLAB) exec -- ansible-playbook -i $(LAB_DIR)/inventory.yml $(ROOT)/playbooks/demo.yml; \
	  rc=$$?; $(PMLAB) down; exit $$rc

# pytest of the lab and integration tests mostly waits (machines booting, BMCs answering): measured, it used
# 41% of the two cores. So three streams share the machine, the CPU-bound ones niced below the lab's:
#   - in front: pytest (unit, lab, integration, reliability), its output on the console;
#   - beside it: the lab-bound checks (compat, molecule, ansible-test integration) at the same priority,
#     then the CPU-bound ones (sanity, lint, ee-check, changelog-lint, docs) at nice 10;
#   - the property tests (10,000 cases per parser, issue 10: about 11 min on one core) at nice 19.
# The logs of the last two are printed at the end, the checks' in full. Each stream stops at its first
# failing step, as the checks did when they ran in a row.
FUZZ_TESTS = $(sort $(wildcard tests/reliability/test_fuzz_*.py))
LAB_CHECKS := compat molecule ansible-test-integration
CPU_CHECKS := sanity lint ee-check changelog-lint docs

test: deps
	@rm -f $(BUILD)/fuzz.rc $(BUILD)/checks.rc; \
	( rc=0; nice -n 19 $(PY) -m pytest $(FUZZ_TESTS) >$(BUILD)/fuzz.log 2>&1 </dev/null || rc=$$?; echo $$rc >$(BUILD)/fuzz.rc ) & fuzz=$$!; \
	( rc=0; { $(MAKE) --no-print-directory $(LAB_CHECKS) && nice -n 10 $(MAKE) --no-print-directory $(CPU_CHECKS); } \
	  >$(BUILD)/checks.log 2>&1 </dev/null || rc=$$?; echo $$rc >$(BUILD)/checks.rc ) & checks=$$!; \
	rc=0; $(MAKE) --no-print-directory pytest SKIP_FUZZ=1 </dev/null || rc=$$?; \
	wait $$checks; echo "== checks: $(LAB_CHECKS) $(CPU_CHECKS) (run beside pytest; log in .build/checks.log) =="; \
	cat $(BUILD)/checks.log; checks_rc=$$(cat $(BUILD)/checks.rc 2>/dev/null || echo 1); \
	wait $$fuzz; echo "== property tests ($(words $(FUZZ_TESTS)) files, run beside pytest; log in .build/fuzz.log) =="; \
	tail -n 5 $(BUILD)/fuzz.log; fuzz_rc=$$(cat $(BUILD)/fuzz.rc 2>/dev/null || echo 1); \
	if [ $$fuzz_rc -eq 5 ]; then echo "make test: the property tests collected nothing" >&2; fi; \
	echo "make test: pytest rc=$$rc, checks rc=$$checks_rc, property tests rc=$$fuzz_rc"; \
	for code in $$rc $$checks_rc $$fuzz_rc; do if [ $$code -ne 0 ]; then exit $$code; fi; done

fuzz: deps
	$(PY) -m pytest $(FUZZ_TESTS)

# ansible-test needs the tree at ansible_collections/ctys/pm: it runs on a copy (tests/ansible-test.sh).
# Sanity with the pinned ansible-core, the oldest (COMPAT_CORE) and the newest (LATEST_CORE) supported.
sanity: deps compat-venv latest-venv
	tests/sanity/run.sh
	ANSIBLE_TEST_VENV=$(COMPAT_VENV) tests/sanity/run.sh
	ANSIBLE_TEST_VENV=$(LATEST_VENV) tests/sanity/run.sh

# The ansible-test integration targets that need no lab (the others are `unsupported`: see their aliases).
ansible-test-integration: deps compat-venv latest-venv
	@set -e; for venv in $(VENV) $(COMPAT_VENV) $(LATEST_VENV); do \
	  ANSIBLE_TEST_VENV=$$venv tests/ansible-test.sh integration; done

# ansible-test units in its own venv with tests/unit/requirements.txt (the same tests as make unit;
# not part of make test: about 90 s, most of it building the venv).
ansible-test-units: deps
	ANSIBLE_TEST_MODE=--venv tests/ansible-test.sh units --requirements

latest-venv: $(LATEST_VENV)/.stamp
$(LATEST_VENV)/.stamp: requirements.txt | apt
	@test -n "$(PYTHON_LATEST)" || { echo "$(LATEST_CORE) needs Python 3.12+ (python3.12 not found; set PYTHON_LATEST)" >&2; exit 1; }
	@test -x $(LATEST_VENV)/bin/python || $(PYTHON_LATEST) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --disable-pip-version-check '$(LATEST_CORE)' -r requirements.txt </dev/null
	@touch $@

# The collection's docsite (antsibull-docs + Sphinx, offline) in .build/docs/build/html; fails on a
# broken docs page (antsibull-docs lint-collection-docs --plugin-docs, sphinx-build -W).
docs: deps
	tests/docs/build.sh

# ansible-lint (production profile), then mypy and ruff with the settings in pyproject.toml. mypy reads
# the plugins through .build/collections, where they have the import names Ansible gives them.
lint: deps
	ansible-lint --profile production --offline
	cd $(BUILD)/collections && mypy --config-file $(ROOT)/pyproject.toml -p ansible_collections.ctys.pm.plugins
	ruff check plugins tests bench

ee-check: deps
	tests/ee/check.sh

changelog-lint: deps
	antsibull-changelog lint

molecule: deps
	@set -e; for role in roles/*/; do \
	  if [ -d "$$role/molecule" ]; then (cd $$role && molecule test --all); fi; \
	done

# The main integration test of each module, the inventory plugin, a role and the playbooks that have
# one (marked compat), run with the oldest ansible-core the collection admits; the controller-side
# Python needs are those of requirements.txt.
compat-venv: $(COMPAT_VENV)/.stamp
$(COMPAT_VENV)/.stamp: requirements.txt | apt
	@test -x $(COMPAT_VENV)/bin/python || python3 -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --disable-pip-version-check '$(COMPAT_CORE)' -r requirements.txt </dev/null
	@touch $@

compat: deps compat-venv
	@rc=0; PMTEST_VENV=$(COMPAT_VENV) PMTEST_ANSIBLE_CORE=$(patsubst ansible-core==%,%,$(COMPAT_CORE)) \
	  $(PY) -m pytest -m compat tests/integration || rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make compat: no test is marked compat" >&2; exit 1; fi; exit $$rc

# One pytest run, so CI reads one closing line. Its exit code is kept for .ci/run,
# which reports exit 5 (nothing collected) as the failure it is ("|| rc=": the shell runs with -e).
pytest: deps
	@rm -f $(BUILD)/pytest.rc
	@rc=0; $(PY) -m pytest tests/unit tests/lab tests/integration tests/reliability $(if $(SKIP_FUZZ),$(addprefix --ignore=,$(FUZZ_TESTS))) || rc=$$?; \
	  echo $$rc > $(BUILD)/pytest.rc; exit $$rc

unit: deps
	$(PY) -m pytest tests/unit

integration: deps
	$(PY) -m pytest tests/lab tests/integration

bench: deps
	@set -e; for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

lab-up: deps
	$(PMLAB) up --machines $(LAB_MACHINES) --inventory $(LAB_DIR)/inventory.yml

lab-down:
	$(PMLAB) down

lab-status:
	$(PMLAB) status

clean: lab-down
	rm -rf $(BUILD)
