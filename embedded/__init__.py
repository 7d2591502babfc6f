"""Embedded PostgreSQL and Redis, from pip packages, for `make run` and a developer's `make test`.

`python -m embedded run -- COMMAND` starts whichever of the two has no URL in the
environment (DATABASE_URL, CELERY_BROKER_URL), runs COMMAND with their URLs exported, and
stops them when COMMAND ends or on Ctrl-C/SIGTERM. See docs/architecture.md.
"""
