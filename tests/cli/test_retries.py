"""How `snapagg post` waits: Retry-After on 429, backoff on 503 and lost connections, a stop on
other refusals. The real server's rate limit is used where it can be driven; a small local
HTTP stub plays the answers the real one cannot be made to give on cue."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.cache import caches
from typer.testing import CliRunner

from events.models import Event
from snapagg_cli.main import app

ACCEPTED_ONE = {"accepted": 1, "duplicates": 0, "conflicts": 0, "rejected": 0, "errors": []}


class ScriptedServer(ThreadingHTTPServer):
    """Answers POST /api/events/ from a script of (status, headers, body), then 202s."""

    def __init__(self, script: list[tuple[int, dict[str, str], dict]]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = list(script)
        self.bodies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        status, headers, body = (
            self.server.script.pop(0) if self.server.script else (202, {}, ACCEPTED_ONE)
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def scripted() -> Iterator[Callable[[list], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: list[tuple[int, dict[str, str], dict]]) -> ScriptedServer:
        server = ScriptedServer(script)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def one_event(tmp_path: Path) -> Path:
    path = tmp_path / "one.csv"
    path.write_text("event_id,event_time,value\ne-1,2026-11-20T10:00:00Z,1\n")
    return path


def _post(url: str, path: Path, *args: str):
    return CliRunner().invoke(
        app,
        ["post", str(path), "--url", url, "--key", "k", *args],
        env={"COLUMNS": "200"},
        catch_exceptions=False,
    )


def test_429_waits_as_long_as_retry_after_says_then_resends(scripted, one_event, waits):
    server = scripted([(429, {"Retry-After": "7"}, {"error": "throttled", "detail": "Slow."})])

    result = _post(server.url, one_event)

    assert result.exit_code == 0, result.output
    assert waits == [7.0]
    assert "rate limited (429): waiting 7.0 s" in result.stderr
    assert len(server.bodies) == 2
    assert server.bodies[0] == server.bodies[1]  # the same batch again: ids deduplicate
    assert "Accepted   │      1" in result.stdout


def test_503_backs_off_more_each_time_and_honours_its_retry_after(scripted, one_event, waits):
    down = (503, {}, {"error": "database_unavailable", "detail": "Try again."})
    server = scripted([down, down, (503, {"Retry-After": "3"}, down[2])])

    result = _post(server.url, one_event)

    assert result.exit_code == 0, result.output
    assert waits == [0.5, 1.0, 3.0]
    assert len(server.bodies) == 4


def test_a_server_that_stays_down_is_given_up_on_with_exit_3(scripted, one_event, waits):
    down = (503, {}, {"error": "database_unavailable", "detail": "Try again."})
    server = scripted([down] * 20)

    result = _post(server.url, one_event)

    assert result.exit_code == 3
    assert "Gave up after 8 attempts" in result.stderr
    assert "Rerunning is safe" in result.stderr
    assert len(waits) == 7
    assert max(waits) == 30.0


def test_a_server_that_cannot_be_reached_is_reported_quickly(one_event, waits):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = _post(f"http://127.0.0.1:{port}", one_event)

    assert result.exit_code == 3
    assert f"cannot reach http://127.0.0.1:{port}/" in result.stderr
    assert waits == [0.5, 1.0]


def test_another_refusal_stops_with_the_servers_sentence(scripted, one_event, waits):
    server = scripted([(415, {}, {"error": "unsupported_media_type", "detail": "Send JSON."})])

    result = _post(server.url, one_event)

    assert result.exit_code == 2
    assert "Send JSON." in result.stderr
    assert waits == []


def test_a_batch_over_the_size_limit_is_sent_in_halves(scripted, tmp_path, waits):
    path = tmp_path / "four.csv"
    rows = [f"e-{n},2026-11-20T10:00:00Z,1" for n in range(4)]
    path.write_text("event_id,event_time,value\n" + "\n".join(rows) + "\n")
    too_large = (413, {}, {"error": "body_too_large", "detail": "Too large."})
    server = scripted([too_large])

    result = _post(server.url, path)

    assert result.exit_code == 0, result.output
    assert [len(body["events"]) for body in server.bodies] == [4, 2, 2]
    assert "Accepted   │      2" in result.stdout  # the stub accepts one per request


@pytest.mark.django_db(transaction=True)
def test_the_real_rate_limit_is_waited_out_and_every_event_arrives(
    cli, write_file, event_day, settings, monkeypatch
):
    settings.INGEST_RATE_LIMIT = (1, 3600)  # one request an hour: every second one is a 429
    cache = caches["default"]
    waited: list[float] = []

    def counters_forget() -> None:
        if hasattr(cache, "_cache"):  # Redis
            client = cache._cache.get_client(write=True)
            for key in client.scan_iter("*throttle:ingest:*"):
                client.delete(key)
        else:
            cache.clear()

    def new_window(seconds: float) -> None:
        # Rather than sleep out the hour, start a new window: forget the counters.
        waited.append(seconds)
        counters_forget()

    # Key ids start again after each transactional test's flush, while Redis keeps an
    # earlier test's count for the same id within the hour: start from an empty window.
    counters_forget()
    monkeypatch.setattr("snapagg_cli.client.pause", new_window)
    rows = [f"o-{n},{event_day.isoformat()}T10:00:00Z,1" for n in range(3)]
    path = write_file("orders.csv", "event_id,event_time,value\n" + "\n".join(rows) + "\n")

    result = cli("post", path, "--batch-size", "1")

    assert result.exit_code == 0, result.output
    # One 429 per batch after the first; one fewer in the rare run where the hour turns
    # between two requests and opens a new window by itself.
    assert 1 <= len(waited) <= 2
    assert all(0 < seconds <= 3600 for seconds in waited)
    assert Event.objects.count() == 3


def test_ctrl_c_during_a_wait_reports_what_was_sent_and_how_to_finish(
    scripted, tmp_path, monkeypatch
):
    path = tmp_path / "two.csv"
    path.write_text(
        "event_id,event_time,value\ne-1,2026-11-20T10:00:00Z,1\ne-2,2026-11-20T10:00:00Z,1\n"
    )
    server = scripted(
        [(202, {}, ACCEPTED_ONE), (429, {"Retry-After": "60"}, {"error": "throttled"})]
    )

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("snapagg_cli.client.pause", interrupted)

    result = _post(server.url, path, "--batch-size", "1")

    assert result.exit_code == 130
    assert "Accepted   │      1" in result.stdout
    assert "Rerun the same file to finish" in result.stderr
    assert len(server.bodies) == 2
