"""The benchmarks' reading of PostgreSQL's CPU: a backend that connects, works and
disconnects inside the measured stretch (a command's own connection) is counted."""

from __future__ import annotations

import psutil
import psycopg
import pytest
from django.db import connection

from bench.common import BackendCpuSampler, backend_cpu_seconds
from harness.waiting import wait_until

pytestmark = pytest.mark.django_db

BURN = "SELECT sum(i) FROM generate_series(1, 3000000) AS i"


def _other_connection() -> psycopg.Connection:
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


def test_backend_cpu_seconds_names_other_backends_not_its_own():
    connection.ensure_connection()
    with _other_connection() as other:
        pid = other.info.backend_pid
        seconds = backend_cpu_seconds()
    assert pid in seconds
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    assert own not in seconds


def test_sampler_counts_a_backend_that_comes_and_goes_inside_the_block():
    with BackendCpuSampler(interval=0.05) as sampler, _other_connection() as other:
        pid = other.info.backend_pid
        other.execute(BURN)
        times = psutil.Process(pid).cpu_times()
        spent = times.user + times.system
        # The sampler must have read the backend once after its work, before it exits.
        wait_until(
            lambda: sampler._last.get(pid, 0.0) >= spent,
            timeout=10,
            what="the sampler to read the backend after its work",
        )
    assert spent > 0
    assert sampler.seconds >= spent
