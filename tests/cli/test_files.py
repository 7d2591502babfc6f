"""Reading event files: formats, delimiters and the file line of every event."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from snapagg_cli.files import (
    FileEvent,
    FileProblem,
    LineRejected,
    file_format_guess,
    file_items,
)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def test_csv_lines_are_counted_across_blank_lines_and_quoted_line_breaks(tmp_path):
    path = _write(
        tmp_path,
        "events.csv",
        "event_id,event_time,value,source\r\n"
        "\r\n"
        'e-1,2026-11-20T10:00:00Z,1,"two\r\nlines"\r\n'
        "e-2,2026-11-20T10:00:00Z,2,web,surplus\r\n"
        "e-3,2026-11-20T10:00:00Z,3,\r\n",
    )

    items = list(file_items(path, "csv"))

    assert [(type(item), item.line) for item in items] == [
        (FileEvent, 3),
        (LineRejected, 5),
        (FileEvent, 6),
    ]
    assert items[0].event["source"] == "two\r\nlines"
    assert items[1].text == "e-2,2026-11-20T10:00:00Z,2,web,surplus"
    assert items[2].event == {"event_id": "e-3", "event_time": "2026-11-20T10:00:00Z", "value": "3"}


def test_a_byte_order_mark_and_a_semicolon_header_are_understood(tmp_path):
    path = _write(
        tmp_path,
        "excel.csv",
        "\ufeffevent_id;event_time;value\ne-1;2026-11-20T10:00:00Z;1,5\n".encode(),
    )

    (item,) = file_items(path, "csv")

    assert item.event == {"event_id": "e-1", "event_time": "2026-11-20T10:00:00Z", "value": "1,5"}


def test_json_numbers_stay_exact_decimals(tmp_path):
    path = _write(tmp_path, "e.jsonl", '{"event_id": "e-1", "value": 0.1}\n')

    (item,) = file_items(path, "jsonl")

    assert item.event["value"] == Decimal("0.1")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("events.jsonl", "", "jsonl"),
        ("events.ndjson", "", "jsonl"),
        ("events.csv", "", "csv"),
        ("events.tsv", "", "csv"),
        ("events", '\n  {"event_id": "e-1"}\n', "jsonl"),
        ("events", "event_id,event_time,value\n", "csv"),
    ],
)
def test_the_format_comes_from_the_name_or_else_the_first_line(tmp_path, name, content, expected):
    assert file_format_guess(_write(tmp_path, name, content)) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "The file is empty"),
        ("event_id,event_time\n", "no 'value' column"),
        ("event_id,event_time,value,colour\n", "Unknown column 'colour'"),
        (b"event_id,event_time,value\ne-\xe9,2026-11-20T10:00:00Z,1\n", "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(tmp_path, content, message):
    path = _write(tmp_path, "events.csv", content)

    with pytest.raises(FileProblem, match=message):
        list(file_items(path, "csv"))
