"""A chunked request body (no Content-Length) through the real server, gunicorn: Django
alone would see it as empty."""

from __future__ import annotations

import http.client
import json

import pytest

from events.models import Event

pytestmark = [pytest.mark.django_db(transaction=True)]


def _post_chunked(port: int, token: str, body: bytes, chunk: int = 100) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.putrequest("POST", "/api/events/")
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for start in range(0, len(body), chunk):
        piece = body[start : start + chunk]
        connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    status, raw = response.status, response.read()
    connection.close()
    return status, json.loads(raw)


def _events(count: int) -> bytes:
    events = [
        {"event_id": f"chunk-{i}", "event_time": "2026-11-20T10:00:00Z", "value": "1.5"}
        for i in range(count)
    ]
    return json.dumps({"events": events}).encode()


def test_a_chunked_body_is_read_and_its_events_accepted(stack, web):
    stack.start_web()

    status, body = _post_chunked(stack.web_port, web.token, _events(20))

    assert status == 202, body
    assert body["accepted"] == 20
    assert Event.objects.count() == 20


def test_a_chunked_body_over_the_size_limit_is_413(stack, web):
    stack.env["INGEST_MAX_BODY_BYTES"] = "2048"
    stack.start_web()

    status, body = _post_chunked(stack.web_port, web.token, _events(200))

    assert status == 413
    assert body["error"] == "body_too_large"
    assert not Event.objects.exists()
