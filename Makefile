# snapagg: make run (web + worker + beat with demo data), make test (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PORT ?= 8000

.PHONY: install run serve worker beat test lint format migrate demo clean faults
.PHONY: bench bench-ingest bench-snapshots bench-pages bench-replay

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo_setup --url http://127.0.0.1:$(PORT)

run: demo
	PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

serve: install
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

worker: install
	$(VENV)/bin/celery -A snapagg_project worker -P prefork -c 4 -l info

beat: install
	$(VENV)/bin/celery -A snapagg_project beat -l info

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
	$(PY) manage.py makemigrations --check --dry-run

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Fault-injection run (docs/reliability.md): needs PostgreSQL (DATABASE_URL) and redis-server.
faults: install
	$(PY) -m bench.faults

clean:
	rm -rf var/broker var/snapagg.sqlite3* var/test.sqlite3*

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
