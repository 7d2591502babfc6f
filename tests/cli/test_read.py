"""`snapagg day` and `snapagg explain` against the real server, and the installed script."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from aggregation.models import DayTotal
from tests.cli.conftest import api_key_for
from tests.conftest import Pipeline, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SNAPAGG = Path(sys.executable).with_name("snapagg")  # the console script `make install` made


def _post(cli, write_file, day: dt.date, name: str, rows: list[tuple[str, str, str]]) -> None:
    lines = ["event_id,event_time,value,source"]
    lines += [f"{event_id},{day.isoformat()}T{time},{value},web" for event_id, time, value in rows]
    result = cli("post", write_file(name, "\n".join(lines) + "\n"))
    assert result.exit_code == 0, result.output


@pytest.fixture
def two_snapshots(cli, write_file, event_day, pipeline: Pipeline):
    """A day with two snapshots: 12.50 + 7.25, then late events -2.00 and 5."""
    first = [("o-1", "10:00:00Z", "12.50"), ("o-2", "11:00:00Z", "7.25")]
    _post(cli, write_file, event_day, "first.csv", first)
    first_at = timezone.now()
    pipeline.apply_pending(first_at)
    pipeline.snapshot(first_at)
    second = [("o-3", "12:00:00Z", "-2.00"), ("o-4", "13:00:00Z", "5")]
    _post(cli, write_file, event_day, "second.csv", second)
    second_at = first_at + dt.timedelta(seconds=1)
    pipeline.apply_pending(second_at)
    pipeline.snapshot(second_at)
    return pipeline.snapshots(event_day)


def test_day_shows_the_total_and_every_snapshot(cli, event_day, two_snapshots):
    result = cli("day", "default", event_day.isoformat())

    assert result.exit_code == 0, result.output
    headline = result.stdout.splitlines()[0]
    assert headline.startswith(f"default {event_day.isoformat()}: 22.75 (provisional)")
    assert "2 snapshots, 4 events" in headline
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 2
    first, second = ([cell.strip() for cell in row.strip("│").split("│")] for row in rows)
    assert first[:5] == ["1", _time(two_snapshots[0].taken_at), "19.75", "+19.75", "2"]
    assert second[:5] == ["2", _time(two_snapshots[1].taken_at), "22.75", "+3.00", "4"]
    assert second[7:] == ["provisional", two_snapshots[1].reason]


def test_day_as_of_a_time_shows_the_snapshot_of_that_time(cli, event_day, two_snapshots):
    first = two_snapshots[0]

    result = cli("day", "default", event_day.isoformat(), "--as-of", _time(first.taken_at))
    before = cli(
        "day",
        "default",
        event_day.isoformat(),
        "--as-of",
        _time(first.taken_at - dt.timedelta(seconds=1)),
    )

    assert result.exit_code == 0, result.output
    assert ": 19.75 (snapshot 1, taken at" in result.stdout
    assert before.exit_code == 2
    assert "had no snapshot yet" in before.stderr


def test_day_of_a_source_shows_that_source_alone(cli, event_day, two_snapshots):
    # Every event of two_snapshots came from "web"; "mobile" sent none.
    web = cli("day", "default", event_day.isoformat(), "--source", "web")
    mobile = cli("day", "default", event_day.isoformat(), "--source", "mobile")

    assert web.exit_code == 0, web.output
    assert web.stdout.startswith(f"default {event_day.isoformat()}: 22.75")
    assert mobile.exit_code == 0, mobile.output
    assert "0 events (0 late)" in mobile.stdout.splitlines()[0]


def test_an_unknown_day_is_named(cli, event_day):
    result = cli("day", "default", "2001-01-01")

    assert result.exit_code == 2
    assert "No 'default' total for 2001-01-01" in result.stderr


def test_explain_lists_the_events_behind_a_change_and_checks_their_sum(
    cli, event_day, two_snapshots
):
    result = cli("explain", "default", event_day.isoformat(), "2")

    assert result.exit_code == 0, result.output
    assert "o-3" in result.stdout
    assert "o-4" in result.stdout
    assert "o-1" not in result.stdout
    assert "2 events sum to 3.00; the snapshot changed the day by 3.00: they match." in (
        result.stdout
    )


def test_explain_reads_every_page(cli, write_file, event_day, pipeline: Pipeline):
    rows = [(f"o-{n}", "10:00:00Z", "0.01") for n in range(1_003)]
    _post(cli, write_file, event_day, "many.csv", rows)
    now = timezone.now()
    pipeline.apply_pending(now)
    pipeline.snapshot(now)

    result = cli("explain", "default", event_day.isoformat(), "1", "--limit", "3")

    assert result.exit_code == 0, result.output
    assert "... and 1,000 more events" in result.stdout
    assert "1,003 events sum to 10.03; the snapshot changed the day by 10.03" in result.stdout


def test_explain_names_a_snapshot_that_does_not_exist(cli, event_day, two_snapshots):
    result = cli("explain", "default", event_day.isoformat(), "3")

    assert result.exit_code == 2
    assert "has no snapshot 3 (it has 2)" in result.stderr


def test_the_installed_command_reads_its_address_and_key_from_the_environment(
    cli, event_day, two_snapshots
):
    env = {**os.environ, "SNAPAGG_URL": cli.url, "SNAPAGG_KEY": cli.key, "COLUMNS": "200"}

    result = subprocess.run(
        [str(SNAPAGG), "day", "default", event_day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert f"default {event_day.isoformat()}: 22.75" in result.stdout
    assert Decimal(two_snapshots[-1].value) == Decimal("22.75")


def _time(moment: dt.datetime) -> str:
    """As the API writes times."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.redis
def test_posted_file_is_counted_by_a_real_worker_and_read_back(
    cli, write_file, event_day, celery_worker_process
):
    """End to end: the CLI posts, a real Celery worker applies the batch, an operator runs
    the snapshot job over HTTP, and the CLI reads the day and explains the snapshot."""
    rows = [("w-1", "10:00:00Z", "4.5"), ("w-2", "11:00:00Z", "1.5")]
    _post(cli, write_file, event_day, "orders.csv", rows)
    wait_for(
        lambda: DayTotal.objects.filter(day=event_day, value=Decimal("6")).exists(),
        60,
        "the worker to apply the batch",
        celery_worker_process,
    )
    operator_key = api_key_for("cli-operator", staff=True)
    run = httpx.post(
        f"{cli.url}/api/snapshots/run/", headers={"Authorization": f"Token {operator_key}"}
    )
    assert run.status_code == 200, run.text

    day = cli("day", "default", event_day.isoformat())
    explained = cli("explain", "default", event_day.isoformat(), "1")

    assert day.exit_code == 0, day.output
    assert f"default {event_day.isoformat()}: 6.00 (provisional) - 1 snapshot," in day.stdout
    assert explained.exit_code == 0, explained.output
    assert "2 events sum to 6.00; the snapshot changed the day by 6.00: they match." in (
        explained.stdout
    )
