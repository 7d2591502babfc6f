"""Real processes against the test database and a private Redis that tests may kill, pause
and restart (never the shared one)."""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.private_redis import PrivateRedis
from harness.processes import Stack, isolated_environment
from tests.conftest import _require, test_database_url, uses_postgresql
from tests.factories import UserFactory, api_key_for


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    _require(shutil.which("redis-server") is not None, "redis-server (apt-get install redis)")
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture
def stack(transactional_db, private_redis: PrivateRedis, tmp_path: Path) -> Iterator[Stack]:
    _require(uses_postgresql(), "PostgreSQL (DATABASE_URL=postgres://...)")
    env = isolated_environment(
        database_url=test_database_url(),
        redis=private_redis,
        workdir=tmp_path,
        extra={
            "WORKER_HEARTBEAT_SECONDS": "1",
            "SWEEP_AFTER_SECONDS": "1",
            "BROKER_SOCKET_TIMEOUT_SECONDS": "1",
            "INGEST_RATE_LIMIT": "off",
        },
    )
    processes = Stack(env=env, workdir=tmp_path)
    try:
        yield processes
    finally:
        processes.stop()


@dataclass
class Http:
    port: int
    token: str

    def request(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        status, raw = response.status, response.read()
        connection.close()
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            raise AssertionError(f"{method} {path}: {status} {raw[:500]!r}") from None

    def health(self) -> dict:
        return self.request("GET", "/api/health/")[1]


@pytest.fixture
def web(stack: Stack) -> Http:
    return Http(port=stack.web_port, token=api_key_for(UserFactory(username="faults-client")))
