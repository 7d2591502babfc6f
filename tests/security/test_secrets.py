"""Nothing secret in the repository or in the logs."""

from __future__ import annotations

import logging
import re
import subprocess

import pytest
from rest_framework.test import APIClient

from tests.conftest import PROJECT_ROOT
from tests.factories import UserFactory, api_key_for

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "API token (40 hex digits)": re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])"),
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "password in a URL": re.compile(
        r"://[^/\s:@'\"]+:(?!pw@|any%40|p%40ss|s3cr%2Ft|\*\*)[^@\s/'\"]{6,}@"
    ),
}


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_no_secrets_are_committed():
    found = []
    for name in _tracked_files():
        path = PROJECT_ROOT / name
        if not path.is_file() or path.suffix in {".png", ".ico", ".woff2"}:
            continue
        text = path.read_text(errors="replace")
        found += [f"{name}: {what}" for what, rx in SECRET_PATTERNS.items() if rx.search(text)]

    assert found == []


@pytest.mark.django_db
def test_api_tokens_never_reach_the_logs(caplog):
    key = api_key_for(UserFactory(username="logged-bot"))
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    wrong_key = "f" * 40

    with caplog.at_level(logging.DEBUG):
        client.post("/api/events/", data="{not json", content_type="application/json")
        client.get("/api/days/default/not-a-day/")
        APIClient(HTTP_AUTHORIZATION=f"Token {wrong_key}").get("/api/days/")

    assert caplog.records  # the 4xx answers are logged...
    assert key not in caplog.text  # ...without the credentials
    assert wrong_key not in caplog.text
