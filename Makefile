# snapagg: make run (web + worker + beat with demo data), make test (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PORT ?= 8000
# Runs a command with an embedded PostgreSQL/Redis for whichever of DATABASE_URL and
# CELERY_BROKER_URL is not set (data under var/), stopped when the command ends or on Ctrl-C.
EMBEDDED := $(PY) -m embedded run --

.PHONY: install run serve worker beat test lint format migrate demo clean faults
.PHONY: bench bench-ingest bench-snapshots bench-pages bench-replay

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(EMBEDDED) $(PY) manage.py migrate --noinput

DEMO_SETUP := $(PY) manage.py migrate --noinput \
	&& $(PY) manage.py collectstatic --noinput -v0 \
	&& $(PY) manage.py demo_setup --url http://127.0.0.1:$(PORT)

demo: install
	$(EMBEDDED) sh -c '$(DEMO_SETUP)'

# One runner for the whole run, so the servers start once; `exec` hands Ctrl-C to honcho.
run: install
	PORT=$(PORT) $(EMBEDDED) sh -c '$(DEMO_SETUP) && exec $(VENV)/bin/honcho start -f Procfile'

serve: install
	$(EMBEDDED) $(PY) manage.py runserver 127.0.0.1:$(PORT)

worker: install
	$(EMBEDDED) $(VENV)/bin/celery -A snapagg_project worker -P prefork -c 4 -l info

beat: install
	$(EMBEDDED) $(VENV)/bin/celery -A snapagg_project beat -l info

test: install
	bash scripts/test.sh

.PHONY: screenshots
# Regenerate docs/screenshots from demo data in a real browser (needs Chromium and Redis).
screenshots: install
	SNAPAGG_SCREENSHOTS_DIR=docs/screenshots bash scripts/test.sh tests/browser/test_screenshots.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(EMBEDDED) $(PY) manage.py makemigrations --check --dry-run

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Fault-injection run (docs/reliability.md): needs PostgreSQL (DATABASE_URL) and redis-server.
faults: install
	$(PY) -m bench.faults

# Stops the embedded servers (unless a run still uses them) and deletes their data.
clean: install
	$(PY) -m embedded clean

# Benchmarks (docs/benchmarks.md, bench/README.md): need DATABASE_URL (PostgreSQL; they use
# a database <name>_bench beside it) and, for ingest, CELERY_BROKER_URL (Redis).
bench-ingest: install
	$(PY) -m bench.ingest

bench-snapshots: install
	$(PY) -m bench.snapshot_history

bench-pages: install
	$(PY) -m bench.pages

bench-replay: install
	$(PY) -m bench.replay

bench: bench-ingest bench-snapshots bench-pages bench-replay
