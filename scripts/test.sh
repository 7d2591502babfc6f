#!/usr/bin/env bash
# Run the whole suite. Uses PostgreSQL and Redis on 127.0.0.1 when they answer (and always
# in CI, where tests that need them fail if they are missing); otherwise SQLite and the
# folder broker, with the PostgreSQL/Redis tests skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

answers() { "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null; }

if [ -z "${DATABASE_URL:-}" ] && answers 5432; then
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/snapagg"
fi
if [ -z "${CELERY_BROKER_URL:-}" ] && answers 6379; then
  # Database 15 keeps test queues away from a development worker on database 0.
  export CELERY_BROKER_URL="redis://127.0.0.1:6379/15"
fi
echo "tests: DATABASE_URL=${DATABASE_URL:-sqlite (default)} CELERY_BROKER_URL=${CELERY_BROKER_URL:-filesystem (default)}"
exec .venv/bin/pytest "$@"
