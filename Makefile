# Voltpark: `make demo` runs the whole platform with a demo fleet; `make test` runs lint and the whole
# suite, `make test-fast` all but the browser and slow tests, `make screenshots` the browser tests
# saving docs/screenshots/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
AGENT_PORT ?= 9100
DEMO_NODES ?= 96
export DJANGO_SETTINGS_MODULE := voltpark.settings

.PHONY: install demo test test-fast screenshots lint format bench soak stop wipe browsers

# The `voltpark` CLI and Python client (clients/python/) is its own package, installed editable.
# An existing venv is kept (`python -m venv` refuses a .venv that is a link to a shared one), and so is
# an editable install of the client already in it (it may point at another checkout sharing the venv).
$(VENV)/.installed: requirements.txt requirements-demo.txt requirements-dev.txt clients/python/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip show --quiet voltpark-client >/dev/null 2>&1 || $(VENV)/bin/pip install --quiet -e clients/python
	touch $@

# Front-end assets from npm (htmx for the pages, axe-core for the browser tests); the pages work
# without them, so a missing npm only warns.
node_modules/.package-lock.json: package.json package-lock.json
	@# A node_modules that is a link to another checkout's is replaced by this checkout's own: npm ci
	@# would empty the folder it points to, under the other checkout.
	@if [ -L node_modules ]; then rm node_modules; fi
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; else echo "npm not found: pages work without htmx"; fi

# The FOCUS validator needs Python 3.12 (ours is 3.11): its own venv, when a 3.12 is on the machine
# (on PATH, or installed by pyenv); without it, tests/billing/test_focus.py skips the validator run.
PYTHON312 ?= $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)
.venv-focus/.installed: requirements-focus.txt
	@if [ -n "$(PYTHON312)" ]; then \
		$(PYTHON312) -m venv .venv-focus && .venv-focus/bin/pip install --quiet -r requirements-focus.txt && touch $@; \
	else echo "python3.12 not found: the FOCUS validator test will be skipped"; fi

# openapi-python-client pins a newer ruff than ours: its own venv; tests/clients/test_generated_client.py
# generates a client with it from the live schema (and skips without it).
.venv-openapi/.installed: requirements-openapi.txt
	test -x .venv-openapi/bin/python || $(PYTHON) -m venv .venv-openapi
	.venv-openapi/bin/pip install --quiet -r requirements-openapi.txt && touch $@

# dstack and SkyPilot, whose pins clash with ours: their own venv, for the tests of the lease's exports
# (tests/clusters/test_lease_exports.py reads the files with each tool's own code).
.venv-nodetools/.installed: requirements-nodetools.txt
	$(PYTHON) -m venv .venv-nodetools
	.venv-nodetools/bin/pip install --quiet -r requirements-nodetools.txt
	touch $@

install: $(VENV)/.installed node_modules/.package-lock.json .venv-focus/.installed .venv-openapi/.installed .venv-nodetools/.installed

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --nodes $(DEMO_NODES) --agent-port $(AGENT_PORT)
	PORT=$(PORT) AGENT_PORT=$(AGENT_PORT) $(PY) -m voltpark.demo_run

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Two pytest processes side by side (scripts/test_in_two.py): the browser journeys and the scaled soak
# beside the rest, each with its own databases and ports.
test: install lint
	$(PY) scripts/test_in_two.py

# No lint first: this is the quick loop while editing.
test-fast: install
	$(PY) -m pytest -m "not browser and not slow"

# The harness (tests/browser/harness.py) writes docs/screenshots/ only when this variable is true.
screenshots: install
	BROWSER_SCREENSHOTS=1 $(PY) -m pytest -m browser tests/browser

bench: install
	$(PY) -m bench

# The whole platform with 3,000 simulated nodes for 30 minutes through faults and restarts (bench/soak.py);
# its figures replace the "## Soak" section of docs/benchmarks.md. SOAK_MINUTES, SOAK_NODES to scale it.
soak: install
	SOAK_WRITE_DOCS=$${SOAK_WRITE_DOCS:-1} $(PY) -m bench.soak

stop:
	$(PY) -m voltpark.embedded stop

wipe:
	$(PY) -m voltpark.embedded wipe
