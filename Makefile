# Axisor: `make run` starts the whole product (embedded default), `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev browser-deps messages lint fmt typecheck migrations-check bench worker beat simulator automations clean

$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(PY)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install messages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py run_embedded --host $(HOST) --port $(PORT)

# Debian's chromium for the real-browser tests (Playwright drives /usr/bin/chromium; no browser download).
browser-deps:
	@sh scripts/install-browser.sh || echo "WARNING: chromium could not be installed: the browser tests will be skipped"

# The translations (locale/pt_BR/LC_MESSAGES/django.po) compiled to .mo with GNU gettext's msgfmt (Debian package).
messages: install
	@sh scripts/install-gettext.sh || echo "WARNING: gettext could not be installed: pages stay in English"
	@# compiling needs no database or secret: run it in the embedded mode whatever the environment says
	@if command -v msgfmt >/dev/null 2>&1; then DATABASE_URL= REDIS_URL= $(PY) manage.py compilemessages --ignore=.venv -v 0; fi

test: install-dev browser-deps messages
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install-dev
	$(VENV)/bin/mypy .

migrations-check: install-dev
	$(PY) manage.py makemigrations --check --dry-run

bench: install-dev
	@for b in bench/[a-z]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

worker: install
	$(VENV)/bin/celery -A config worker -l info

beat: install
	$(VENV)/bin/celery -A config beat -l info

automations: install
	$(PY) manage.py run_automations

simulator: install
	$(PY) manage.py lnm_simulator --host 127.0.0.1 --port 8765

# The security fuzz tests with many more examples (FUZZ_EXAMPLES per property, default 1000): every URL, form,
# JSON body and socket frame must get a 4xx or a message, never a 500 or a 1011.
.PHONY: fuzz
FUZZ_EXAMPLES ?= 1000
fuzz: install-dev
	AXISOR_FUZZ_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider \
		tests/security/test_fuzz_http.py tests/security/test_fuzz_socket.py tests/security/test_input_regressions.py

# The reliability battery (docs/reliability.md §7) with real processes, at its full trial counts and LN Markets' 30 s
# signature window, on the local PostgreSQL + Redis; the last line is RESULT trials=… duplicates=… lost=… (CI runs
# a reduced count of every scenario in its PostgreSQL pass).
.PHONY: faults
FAULTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/axisor_faults
FAULTS_REDIS_URL ?= redis://127.0.0.1:6379/0
faults: install-dev
	DATABASE_URL=$(FAULTS_DATABASE_URL) REDIS_URL=$(FAULTS_REDIS_URL) FAULTS_SCALE=$${FAULTS_SCALE:-full} \
		$(PY) -m pytest -q -p no:cacheprovider --timeout 2400 tests/faults $(PYTEST_ARGS); rc=$$?; \
		$(PY) -m tests.faults.report; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
