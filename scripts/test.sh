#!/usr/bin/env bash
# Run the suite (or the pytest arguments given) on PostgreSQL and Redis: the ones the URLs
# name (CI sets both); else the machine's on 127.0.0.1 when they answer; else embedded ones
# (python -m embedded: data under var/, stopped when the run ends). SNAPAGG_EMBEDDED=1 skips
# the look at 127.0.0.1 and uses the embedded servers for whatever URL is not set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

answers() { "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null; }

if [ -z "${SNAPAGG_EMBEDDED:-}" ]; then
  if [ -z "${DATABASE_URL:-}" ] && answers 5432; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/snapagg"
  fi
  if [ -z "${CELERY_BROKER_URL:-}" ] && answers 6379; then
    # Database 15 keeps test queues away from a development worker on database 0.
    export CELERY_BROKER_URL="redis://127.0.0.1:6379/15"
  fi
fi
echo "tests: DATABASE_URL=${DATABASE_URL:-embedded} CELERY_BROKER_URL=${CELERY_BROKER_URL:-embedded}"
# Database 15 of the embedded Redis, for the same reason.
exec "$PY" -m embedded run --redis-db 15 -- .venv/bin/pytest "$@"
