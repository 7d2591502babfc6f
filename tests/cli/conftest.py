"""The command-line client against the real server: pytest-django's live_server (a real HTTP
server on the test database) and the `snapagg` command run in this process with typer's
CliRunner, or as the installed console script."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from typer.testing import CliRunner, Result

from aggregation.models import Metric
from snapagg_cli import client as cli_client
from snapagg_cli.main import app
from tests import factories
from tests.factories import UserFactory


def api_key_for(username: str, *, staff: bool = False, groups: Sequence[str] = ()) -> str:
    """A key as a user would get one; the one place to change when API keys change."""
    user = UserFactory(username=username, is_staff=staff)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return factories.api_key_for(user)


@pytest.fixture
def cli_key(transactional_db) -> str:
    return api_key_for("cli-user")


@pytest.fixture
def event_day(transactional_db) -> dt.date:
    """A day three days ago, with the default metric allowing 30 days of lateness: the
    server checks event times against its real clock, and this keeps every event posted
    here well inside both the future skew and the lateness limits."""
    Metric.objects.filter(is_default=True).update(allowed_lateness=dt.timedelta(days=30))
    return (timezone.now() - dt.timedelta(days=3)).date()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits, recorded instead of slept."""
    taken: list[float] = []
    monkeypatch.setattr(cli_client, "pause", taken.append)
    return taken


@dataclass
class Cli:
    url: str
    key: str
    runner: CliRunner

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(
            app,
            [str(arg) for arg in args],
            env={
                "SNAPAGG_URL": self.url,
                "SNAPAGG_KEY": self.key,
                "COLUMNS": "200",  # rich tables: keep long ids and times on one line
                **(env or {}),
            },
            catch_exceptions=False,
        )


@pytest.fixture
def cli(live_server, cli_key: str) -> Cli:
    return Cli(url=live_server.url, key=cli_key, runner=CliRunner())


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
