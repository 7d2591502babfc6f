"""`snapagg post FILE` against the real server: batches, rejected lines, reruns, formats."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from common.access import VIEWER_GROUP
from events.models import Event, IngestBatch
from tests.cli.conftest import api_key_for
from tests.conftest import Pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def _csv(day: dt.date, rows: list[str], header: str = "event_id,event_time,value,source") -> str:
    lines = [header, *(row.replace("DAY", day.isoformat()) for row in rows)]
    return "\n".join(lines) + "\n"


def test_a_bad_line_is_written_to_the_rejected_file_and_the_others_are_counted(
    cli, write_file, event_day, pipeline: Pipeline
):
    path = write_file(
        "orders.csv",
        _csv(
            event_day,
            [
                "o-1,DAYT10:00:00Z,12.50,web",
                "o-2,DAYT11:00:00Z,not-a-number,web",
                "o-3,DAYT12:00:00Z,7.25,",
            ],
        ),
    )

    result = cli("post", path)

    assert result.exit_code == 1, result.output
    assert "Accepted   │      2" in result.stdout
    assert "Rejected   │      1" in result.stdout
    assert "line 3 (o-2): value:" in result.stdout
    rejected = [json.loads(line) for line in (path.parent / "orders.rejected.jsonl").open()]
    assert len(rejected) == 1
    assert rejected[0]["line"] == 3
    assert rejected[0]["event_id"] == "o-2"
    assert rejected[0]["field"] == "value"
    assert rejected[0]["event"]["value"] == "not-a-number"
    assert set(Event.objects.values_list("event_id", flat=True)) == {"o-1", "o-3"}
    pipeline.apply_pending(timezone.now())
    assert pipeline.total(event_day).value == Decimal("19.75")


def test_rerunning_the_same_file_finds_only_duplicates_and_counts_nothing_twice(
    cli, write_file, event_day, pipeline: Pipeline
):
    path = write_file(
        "orders.csv", _csv(event_day, ["o-1,DAYT10:00:00Z,1,web", "o-2,DAYT11:00:00Z,2,web"])
    )
    assert cli("post", path).exit_code == 0
    pipeline.apply_pending(timezone.now())

    again = cli("post", path)

    assert again.exit_code == 0, again.output
    assert "Accepted   │      0" in again.stdout
    assert "Duplicates │      2" in again.stdout
    pipeline.apply_pending(timezone.now())
    assert pipeline.total(event_day).value == Decimal("3")
    assert not (path.parent / "orders.rejected.jsonl").exists()


def test_a_run_stopped_half_way_is_completed_by_rerunning_the_whole_file(
    cli, write_file, event_day, pipeline: Pipeline
):
    rows = [f"o-{n},DAYT10:00:00Z,{n},web" for n in range(1, 6)]
    # What a crash after the first batch leaves behind: the first two events stored.
    assert cli("post", write_file("first-part.csv", _csv(event_day, rows[:2]))).exit_code == 0

    result = cli("post", write_file("orders.csv", _csv(event_day, rows)), "--batch-size", "2")

    assert result.exit_code == 0, result.output
    assert "Accepted   │      3" in result.stdout
    assert "Duplicates │      2" in result.stdout
    pipeline.apply_pending(timezone.now())
    assert pipeline.total(event_day).value == Decimal("15")


def test_events_go_in_batches_of_the_chosen_size(cli, write_file, event_day):
    rows = [f"o-{n},DAYT10:00:00Z,1,web" for n in range(5)]

    result = cli("post", write_file("orders.csv", _csv(event_day, rows)), "--batch-size", "2")

    assert result.exit_code == 0, result.output
    assert sorted(IngestBatch.objects.values_list("accepted_count", flat=True)) == [1, 2, 2]


def test_a_file_of_more_than_a_thousand_events_goes_in_batches_of_a_thousand(
    cli, write_file, event_day
):
    rows = [f"o-{n},DAYT10:00:00Z,1,web" for n in range(1_005)]

    result = cli("post", write_file("orders.csv", _csv(event_day, rows)))

    assert result.exit_code == 0, result.output
    assert "Accepted   │  1,005" in result.stdout
    assert sorted(IngestBatch.objects.values_list("accepted_count", flat=True)) == [5, 1_000]


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_semicolon_and_tab_separated_files_are_read_by_their_header(
    cli, write_file, event_day, delimiter, name
):
    day = event_day.isoformat()
    rows = [
        ["event_id", "event_time", "value", "source"],
        ["o-1", f"{day}T10:00:00Z", "1.5", "web, mobile"],  # a comma, not a separator here
        ["o-2", f"{day}T11:00:00+01:00", "2", "partner-7"],
    ]
    text = "".join(delimiter.join(row) + "\n" for row in rows)

    result = cli("post", write_file(f"{name}.csv", text))

    assert result.exit_code == 0, result.output
    stored = {event.event_id: event for event in Event.objects.all()}
    assert stored["o-1"].value == Decimal("1.5")
    assert stored["o-1"].source == "web, mobile"
    assert stored["o-2"].event_time == dt.datetime.combine(event_day, dt.time(10), tzinfo=dt.UTC)


def test_json_lines_keep_values_exact_and_a_broken_line_is_named(
    cli, write_file, event_day, pipeline: Pipeline
):
    at = f"{event_day.isoformat()}T10:00:00Z"
    lines = [
        json.dumps({"event_id": "j-1", "event_time": at, "value": "0.1", "source": "web"}),
        '{"event_id": "j-2", "event_time": "' + at + '", "value": 0.2}',  # a JSON number
        "",
        '{"event_id": "j-3", "event_time": ',
        json.dumps(["not", "an", "object"]),
        json.dumps({"event_id": "j-4", "event_time": at, "value": "1", "colour": "red"}),
    ]
    path = write_file("events.jsonl", "\n".join(lines) + "\n")

    result = cli("post", path)

    assert result.exit_code == 1, result.output
    assert "Accepted   │      2" in result.stdout
    rejected = [json.loads(line) for line in (path.parent / "events.rejected.jsonl").open()]
    assert [(r["line"], r["field"]) for r in rejected] == [(4, "line"), (5, "line"), (6, "colour")]
    assert rejected[0]["text"] == '{"event_id": "j-3", "event_time":'
    pipeline.apply_pending(timezone.now())
    assert pipeline.total(event_day).value == Decimal("0.3")  # not 0.30000000000000004


def test_a_changed_event_under_an_old_id_is_a_conflict_and_the_run_says_so(
    cli, write_file, event_day
):
    original = write_file("a.csv", _csv(event_day, ["o-1,DAYT10:00:00Z,1,web"]))
    assert cli("post", original).exit_code == 0
    changed = write_file("b.csv", _csv(event_day, ["o-1,DAYT10:00:00Z,2,web"]))

    result = cli("post", changed)

    assert result.exit_code == 1, result.output
    assert "Conflicts  │      1" in result.stdout
    assert "not counted" in result.stdout
    assert Event.objects.get().value == Decimal("1")


def test_an_unknown_column_stops_before_anything_is_sent(cli, write_file, event_day):
    path = write_file(
        "orders.csv", _csv(event_day, ["o-1,DAYT10:00:00Z,1,red"], "event_id,event_time,value,hue")
    )

    result = cli("post", path)

    assert result.exit_code == 2
    assert "Unknown column 'hue'" in result.stderr
    assert not Event.objects.exists()


def test_a_wrong_or_missing_key_is_a_usage_error(cli, write_file, event_day):
    path = write_file("orders.csv", _csv(event_day, ["o-1,DAYT10:00:00Z,1,web"]))

    wrong = cli("post", path, env={"SNAPAGG_KEY": "not-a-key"})
    missing = cli("post", path, env={"SNAPAGG_KEY": ""})

    assert wrong.exit_code == 2
    assert "refused the key (401)" in wrong.stderr
    assert missing.exit_code == 2
    assert "No API key" in missing.stderr
    assert not Event.objects.exists()


def test_a_read_only_key_cannot_post(cli, write_file, event_day):
    path = write_file("orders.csv", _csv(event_day, ["o-1,DAYT10:00:00Z,1,web"]))

    result = cli("post", path, "--key", api_key_for("viewer", groups=[VIEWER_GROUP]))

    assert result.exit_code == 2
    assert "refused the key (403)" in result.stderr
    assert not Event.objects.exists()
