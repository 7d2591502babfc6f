"""The benchmarks' probes: PostgreSQL's CPU, where a backend that connects, works and
disconnects inside the measured stretch (a command's own connection) is counted; and the
disk's flush latency, which synchronous commits wait for."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import psycopg
import pytest
from django.db import connection

from bench.common import (
    BackendCpuSampler,
    FsyncProbe,
    backend_cpu_seconds,
    same_device_as_postgres,
)
from harness.waiting import wait_until

BURN = "SELECT sum(i) FROM generate_series(1, 3000000) AS i"


def _other_connection() -> psycopg.Connection:
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


@pytest.mark.django_db
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


@pytest.mark.django_db
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


def test_fsync_probe_times_flushes_and_leaves_no_file(tmp_path):
    with FsyncProbe(tmp_path, interval=0.001) as disk:
        wait_until(lambda: len(disk.latencies_ms) >= 5, timeout=10, what="five flushes")
    assert all(ms >= 0 for ms in disk.latencies_ms)
    assert list(tmp_path.iterdir()) == []


def _data_directory() -> Path:
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        return Path(cursor.fetchone()[0])


@pytest.mark.django_db
def test_same_device_as_postgres_tells_the_data_directory_device():
    # The tests' PostgreSQL runs on this machine (the machine's, or the embedded one).
    assert same_device_as_postgres(_data_directory()) is True


@pytest.mark.django_db
def test_same_device_as_postgres_is_unknown_when_the_data_directory_is_not_here(
    tmp_path, monkeypatch
):
    real_stat = os.stat
    elsewhere = str(_data_directory())

    def stat(path, *args, **kwargs):
        if str(path) == elsewhere:  # as if the server ran on another machine
            raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr("bench.common.os.stat", stat)
    assert same_device_as_postgres(tmp_path) is None
