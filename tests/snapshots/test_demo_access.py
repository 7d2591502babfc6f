"""The demo's credentials: kept per database, never stale, printed again on demand."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apikeys.selectors import api_key_for_request
from snapshots.demo_access import database_label, demo_access_path, demo_access_read

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    return tmp_path


def _setup() -> str:
    out = StringIO()
    call_command("demo_setup", no_data=True, url="http://127.0.0.1:8123", stdout=out)
    return out.getvalue()


def _logs_in(password: str) -> bool:
    return get_user_model().objects.get(username="admin").check_password(password)


def test_demo_setup_keeps_working_credentials_in_a_file_named_after_the_database(settings):
    printed = _setup()
    path = demo_access_path()
    assert path.name == f"demo-credentials-{settings.DATABASES['default']['NAME']}.txt"
    assert path.stat().st_mode & 0o777 == 0o600
    access = demo_access_read()
    assert access.database == database_label()
    assert _logs_in(access.password)
    assert api_key_for_request(raw_key=access.api_key) is not None
    assert f"password {access.password}" in printed
    assert access.api_key in printed

    _setup()  # run again: the same credentials, no new key
    assert demo_access_read() == access


def test_a_file_from_another_database_is_replaced_by_working_credentials():
    _setup()
    old = demo_access_read()
    path = demo_access_path()
    path.write_text(path.read_text().replace(f"database: {old.database}", "database: other"))
    assert demo_access_read() is None  # not this database's

    _setup()
    new = demo_access_read()
    assert new.password != old.password
    assert _logs_in(new.password)


def test_a_password_changed_since_is_not_shown_again():
    _setup()
    old = demo_access_read()
    user = get_user_model().objects.get(username="admin")
    user.set_password("changed by hand")
    user.save()

    _setup()
    new = demo_access_read()
    assert new.password != old.password
    assert _logs_in(new.password)
    assert new.api_key == old.api_key  # still accepted, so kept


def test_the_old_single_file_is_removed(var_dir):
    (var_dir / "demo-credentials.txt").write_text("admin:stale\n")
    _setup()
    assert not (var_dir / "demo-credentials.txt").exists()


def test_demo_credentials_prints_them_and_says_when_the_site_never_answered():
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    call_command("demo_setup", no_data=True, url=f"http://127.0.0.1:{port}", stdout=StringIO())
    access = demo_access_read()
    out = StringIO()
    call_command("demo_credentials", wait=True, timeout=0.2, stdout=out)
    assert "had no worker answering after 0.2 s" in out.getvalue()
    assert access.text() in out.getvalue()


def test_demo_credentials_wait_for_a_site_with_a_worker():
    from snapshots.management.commands.demo_credentials import site_ready

    workers = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"database": "ok", "workers": len(workers)}).encode()
            self.send_response(200 if self.path == "/api/health/" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        site = f"http://127.0.0.1:{server.server_address[1]}"
        assert not site_ready(site)  # up, but no worker answering
        workers.append("celery@test")
        assert site_ready(site)
    finally:
        server.shutdown()
        server.server_close()


def test_demo_credentials_without_a_file_says_how_to_make_one():
    out = StringIO()
    call_command("demo_credentials", stdout=out)
    assert "run `manage.py demo_setup`" in out.getvalue()


def test_every_procfile_line_execs_and_the_credentials_process_stays_up():
    """honcho runs each line through a shell and stops every process when one exits: each
    line `exec`s (so Ctrl-C reaches the program itself), and the credentials process ends
    by exec'ing a sleep instead of exiting after it printed."""
    from tests.conftest import PROJECT_ROOT

    lines = dict(
        line.split(":", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
    )
    assert all(command.strip().startswith("exec ") for command in lines.values())
    credentials = lines["credentials"]
    assert "manage.py demo_credentials --wait;" in credentials
    assert credentials.strip().endswith("exec sleep infinity'")
