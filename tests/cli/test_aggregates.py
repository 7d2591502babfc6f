"""`snapagg aggregates` against the real server: totals over a range or a period, grouped
by day or ranked by source, as published at a time, as a table, JSON or CSV; refusals name
the option at fault."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import socket

import pytest
from django.utils import timezone

from aggregation.models import Metric
from tests.conftest import Pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def _post(cli, write_file, name: str, rows: list[tuple[str, dt.date, str, str]]) -> None:
    lines = ["event_id,event_time,value,source"]
    lines += [
        f"{event_id},{day.isoformat()}T10:00:00Z,{value},{src}"
        for event_id, day, value, src in rows
    ]
    result = cli("post", write_file(name, "\n".join(lines) + "\n"))
    assert result.exit_code == 0, result.output


@pytest.fixture
def two_days(cli, write_file, event_day, pipeline: Pipeline) -> dict[str, dt.datetime]:
    """event_day and the day before: web 10 + 2.50, mobile 4, no source 1 on event_day;
    web 3 the day before. A first snapshot, then a late 100 from web and a second one."""
    before = event_day - dt.timedelta(days=1)
    first = [
        ("a-1", event_day, "10", "web"),
        ("a-2", event_day, "2.50", "web"),
        ("a-3", event_day, "4", "mobile"),
        ("a-4", event_day, "1", ""),
        ("a-5", before, "3", "web"),
    ]
    _post(cli, write_file, "first.csv", first)
    first_at = timezone.now()
    pipeline.apply_pending(first_at)
    pipeline.snapshot(first_at)
    _post(cli, write_file, "second.csv", [("a-6", event_day, "100", "web")])
    second_at = first_at + dt.timedelta(seconds=2)
    pipeline.apply_pending(second_at)
    pipeline.snapshot(second_at)
    return {"first": first_at, "second": second_at}


def _rows(output: str) -> list[list[str]]:
    """The cells of a rich table's body and footer lines."""
    return [
        [cell.strip() for cell in line.strip("│┃").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_a_range_grouped_by_day_lists_each_day_and_the_total(cli, event_day, two_days):
    before = event_day - dt.timedelta(days=1)

    result = cli(
        "aggregates", "--from", before.isoformat(), "--to", event_day.isoformat(), "-g", "day"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"default {before.isoformat()} to {event_day.isoformat()}: 120.50 (provisional) "
        "- 6 events, average 20.083333"
    )
    rows = _rows(result.stdout)
    day, iso = before.isoformat(), event_day.isoformat()
    assert rows[0] == [day, day, day, "3.00", "1", "3.00", "provisional"]
    assert rows[1] == [iso, iso, iso, "117.50", "5", "23.50", "provisional"]
    assert rows[2] == ["Total", day, iso, "120.50", "6", "20.083333", "provisional"]


def test_group_by_source_ranks_the_sources(cli, event_day, two_days):
    result = cli(
        "aggregates",
        "--period",
        "last_7_days",
        "--group-by",
        "source",
        "--order",
        "-value",
        "--limit",
        "2",
    )

    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert [row[:3] for row in rows] == [
        ["web", "115.50", "4"],
        ["mobile", "4.00", "1"],
        ["Total", "120.50", "6"],
    ]


def test_a_source_filter_and_the_events_without_a_source(cli, event_day, two_days):
    day = event_day.isoformat()

    mobile = cli("aggregates", "--from", day, "--to", day, "--source", "mobile")
    none = cli("aggregates", "--from", day, "--to", day, "--source", "")

    assert mobile.exit_code == 0, mobile.output
    assert mobile.stdout.startswith(f"default, source mobile {day}: 4.00 ")
    assert none.exit_code == 0, none.output
    assert none.stdout.startswith(f"default, source (no source) {day}: 1.00 ")


def test_as_of_shows_the_figures_published_then(cli, event_day, two_days):
    day = event_day.isoformat()
    between = (two_days["first"] + dt.timedelta(seconds=1)).isoformat()

    result = cli("aggregates", "--from", day, "--to", day, "--as-of", between)

    assert result.exit_code == 0, result.output
    assert ": 17.50 (provisional) - 4 events" in result.stdout
    assert "as published at" in result.stdout


def test_the_metric_unit_is_shown_with_the_values(cli, event_day, two_days):
    Metric.objects.filter(name="default").update(unit="EUR")
    day = event_day.isoformat()

    result = cli("aggregates", "-m", "default", "--from", day, "--to", day, "-g", "day")

    assert result.exit_code == 0, result.output
    assert f"default {day}: 117.50 EUR (provisional)" in result.stdout
    assert "average 23.50 EUR" in result.stdout
    assert "Value (EUR)" in result.stdout


def test_json_prints_the_servers_answer(cli, event_day, two_days):
    day = event_day.isoformat()

    result = cli("aggregates", "--from", day, "--to", day, "-g", "source", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["total"]["value"] == "117.50"
    assert {group["key"]: group["value"] for group in answer["groups"]} == {
        "": "1.00",
        "mobile": "4.00",
        "web": "112.50",
    }


def test_csv_has_a_line_per_group_and_the_total(cli, event_day, two_days):
    Metric.objects.filter(name="default").update(unit="EUR")
    before, day = (event_day - dt.timedelta(days=1)).isoformat(), event_day.isoformat()

    result = cli("aggregates", "--from", before, "--to", day, "-g", "day", "--csv")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["row"], row["key"], row["value"], row["unit"]) for row in rows] == [
        ("group", before, "3.00", "EUR"),
        ("group", day, "117.50", "EUR"),
        ("total", "", "120.50", "EUR"),
    ]
    assert rows[-1]["event_count"] == "6"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-02", "--to", "2026-11-01"], "--from: from is after to."),
        (["--period", "today", "--group-by", "hour"], "--group-by: group_by must be one of"),
        (["--period", "someday"], "--period: period must be one of"),
        (["--period", "today", "--metric", "nope"], "--metric: unknown metric 'nope'."),
        (["--period", "today", "--from", "2026-11-01"], "--period: give either period"),
        (["--from", "2026-11-01"], "--to: to is required with from"),
        (["--period", "today", "--as-of", "2026-11-01T10:00:00"], "--as-of:"),
        (["--period", "today", "--limit", "5000"], "--limit: limit must be a whole number"),
    ],
)
def test_a_refused_query_names_the_option(cli, args, message):
    result = cli("aggregates", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_a_range_or_a_period_is_required(cli):
    result = cli("aggregates", "-g", "day")

    assert result.exit_code == 2
    assert "Give --period, or --from and --to" in result.stderr


def test_a_wrong_key_is_refused_with_the_servers_reason(cli):
    result = cli("aggregates", "--period", "today", env={"SNAPAGG_KEY": "not-a-key"})

    assert result.exit_code == 2
    assert "The server refused the key (401)" in result.stderr


def test_an_unreachable_server_is_named(cli, waits):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = cli("aggregates", "--period", "today", "--url", f"http://127.0.0.1:{port}")

    assert result.exit_code == 3
    assert f"cannot reach http://127.0.0.1:{port}" in result.stderr
    assert len(waits) == 2  # three attempts before the server has ever answered
