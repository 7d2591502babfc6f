"""The benchmarks serve with the Procfile's web line: the read storm and the ingest runs
measure the deployment that takes ingest, not a variant of it."""

from __future__ import annotations

from pathlib import Path

from bench.common import procfile_web_options, procfile_web_workers
from tests.conftest import PROJECT_ROOT


def test_the_options_of_the_web_line_are_kept_but_bind_log_and_worker_count(tmp_path: Path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "web: exec .venv/bin/gunicorn snapagg_project.wsgi --bind 127.0.0.1:${PORT:-8000} "
        "--workers 3 --worker-class gthread --threads=8 --backlog 2048 --access-logfile -\n"
        "worker: exec .venv/bin/celery -A snapagg_project worker -P prefork -c 4\n"
    )

    assert procfile_web_options(procfile) == [
        "--worker-class",
        "gthread",
        "--threads=8",
        "--backlog",
        "2048",
    ]
    assert procfile_web_workers(procfile) == 3


def test_the_project_procfile_web_line_parses():
    options = procfile_web_options(PROJECT_ROOT / "Procfile")

    assert "--bind" not in options
    assert "--workers" not in options
    assert procfile_web_workers(PROJECT_ROOT / "Procfile") >= 1
