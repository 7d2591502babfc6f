"""How the commands' answers look in a terminal: rich tables and one-line headlines."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from snapagg_cli.upload import UploadTally

SHOWN_REJECTIONS = 10


def upload_summary(console: Console, tally: UploadTally) -> None:
    table = Table(title="Upload summary", title_justify="left")
    table.add_column("Outcome")
    table.add_column("Events", justify="right")
    table.add_column("Meaning")
    table.add_row("Accepted", f"{tally.accepted:,}", "new, stored and being counted")
    table.add_row("Duplicates", f"{tally.duplicates:,}", "already stored with the same content")
    table.add_row("Conflicts", f"{tally.conflicts:,}", "id already stored with other content")
    table.add_row("Rejected", f"{len(tally.rejected):,}", "invalid; see the rejected file")
    console.print(table)


def rejections(console: Console, tally: UploadTally) -> None:
    ordered = sorted(tally.rejected, key=lambda rejected: rejected.line)
    for rejected in ordered[:SHOWN_REJECTIONS]:
        who = f" ({rejected.event_id})" if rejected.event_id else ""
        console.print(f"  line {rejected.line}{who}: {rejected.field}: {rejected.detail}")
    if len(ordered) > SHOWN_REJECTIONS:
        console.print(f"  ... and {len(ordered) - SHOWN_REJECTIONS:,} more")


def with_unit(value: str, unit: str) -> str:
    """ "22.75 EUR"; without a unit, the value alone."""
    return f"{value} {unit}" if unit else value


def day_headline(console: Console, day: dict[str, Any], unit: str = "") -> None:
    console.print(
        f"[bold]{day['metric']} {day['day']}: {with_unit(day['value'], unit)}[/bold] "
        f"({day['status']})"
        f" - {day['snapshot_count']} snapshot{'s' if day['snapshot_count'] != 1 else ''},"
        f" {day['event_count']:,} events ({day['late_event_count']:,} late)"
    )
    snapshots = day.get("snapshots") or []
    if day.get("restated"):
        console.print("Restated: late events changed it after it was final.")
    if snapshots and Decimal(snapshots[-1]["value"]) != Decimal(day["value"]):
        last = snapshots[-1]
        console.print(
            f"The total includes events not in a snapshot yet; snapshot {last['sequence']} "
            f"shows {with_unit(last['value'], unit)}."
        )
    elif not snapshots:
        console.print("No snapshot of this day yet.")


def snapshot_table(console: Console, day: dict[str, Any], unit: str = "") -> None:
    snapshots = day.get("snapshots") or []
    if not snapshots:
        return
    table = Table(title="Snapshot history", title_justify="left")
    for name, justify in [
        ("#", "right"),
        ("Taken at", "left"),
        (f"Value ({unit})" if unit else "Value", "right"),
        (f"Change ({unit})" if unit else "Change", "right"),
        ("Events", "right"),
        ("Changed by", "right"),
        ("Late", "right"),
        ("Status", "left"),
        ("Reason", "left"),
    ]:
        table.add_column(name, justify=justify)
    for snapshot in snapshots:
        table.add_row(
            str(snapshot["sequence"]),
            snapshot["taken_at"],
            snapshot["value"],
            _signed(snapshot["change"]),
            f"{snapshot['event_count']:,}",
            f"{snapshot['change_events']:,} events",
            f"{snapshot['late_events']:,}",
            snapshot["status"],
            snapshot["reason"],
        )
    console.print(table)


def day_as_of(console: Console, answer: dict[str, Any], unit: str = "") -> None:
    console.print(
        f"[bold]{answer['metric']} {answer['day']} as of {answer['as_of']}: "
        f"{with_unit(answer['value'], unit)}[/bold] (snapshot {answer['sequence']}, "
        f"taken at {answer['taken_at']})"
    )


def explanation_table(
    console: Console, events: list[dict[str, Any]], *, limit: int, title: str, unit: str = ""
) -> None:
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("Event id", "left"),
        ("Event time", "left"),
        ("Arrived", "left"),
        (f"Value ({unit})" if unit else "Value", "right"),
        ("Source", "left"),
        ("Late", "left"),
    ]:
        table.add_column(name, justify=justify)
    shown = events if limit <= 0 else events[:limit]
    for event in shown:
        table.add_row(
            event["event_id"],
            event["event_time"],
            event["arrival_time"],
            event["value"],
            event.get("source") or "",
            "late" if event.get("late") else "",
        )
    console.print(table)
    if len(shown) < len(events):
        console.print(f"... and {len(events) - len(shown):,} more events (--limit 0 shows all).")


GROUP_TITLES = {"day": "Day", "week": "Week", "month": "Month", "year": "Year"}
NO_SOURCE = "(no source)"


def aggregate_headline(answer: dict[str, Any], *, unit: str) -> str:
    total = answer["total"]
    what = answer["metric"]
    if answer.get("source") is not None:
        what += f", source {answer['source'] or NO_SOURCE}"
    days = (
        answer["from"] if answer["from"] == answer["to"] else f"{answer['from']} to {answer['to']}"
    )
    when = f" as published at {answer['as_of']}" if answer.get("as_of") else ""
    average = f", average {with_unit(total['average'], unit)}" if total["average"] else ""
    return (
        f"{what} {days}{when}: {with_unit(total['value'], unit)} "
        f"({total['status']}) - {total['event_count']:,} events{average}"
    )


def aggregate_table(console: Console, answer: dict[str, Any], *, unit: str) -> None:
    """The headline, then one row per group and the total in the footer."""
    console.print(f"[bold]{aggregate_headline(answer, unit=unit)}[/bold]")
    group_by = answer.get("group_by")
    if not group_by:
        return
    by_source = group_by == "source"
    in_unit = f" ({unit})" if unit else ""
    table = Table(show_footer=True)
    columns = [(GROUP_TITLES.get(group_by, "Source"), "left", "Total")]
    if not by_source:  # a source group spans the whole range: its days say nothing
        columns += [("From", "left", answer["from"]), ("To", "left", answer["to"])]
    total = answer["total"]
    columns += [
        (f"Value{in_unit}", "right", total["value"]),
        ("Events", "right", f"{total['event_count']:,}"),
        (f"Average{in_unit}", "right", total["average"] or ""),
        ("Status", "left", total["status"]),
    ]
    for name, justify, footer in columns:
        table.add_column(name, justify=justify, footer=footer)
    groups = answer.get("groups") or []
    for group in groups:
        key = (group["key"] or NO_SOURCE) if by_source else group["key"]
        days = [] if by_source else [group["from"], group["to"]]
        table.add_row(
            key,
            *days,
            group["value"],
            f"{group['event_count']:,}",
            group["average"] or "",
            group["status"],
        )
    console.print(table)
    if by_source and not groups:
        console.print("No source has events in this range.")


def aggregate_csv(out: TextIO, answer: dict[str, Any], *, unit: str) -> None:
    """One line a group, then the total (row "total"); values exactly as the server wrote
    them. `key` is the day, week, month, year or source name ("" for no source)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["row", "key", "from", "to", "value", "unit", "event_count", "average", "status"]
    )
    rows = [("group", group) for group in answer.get("groups") or []]
    for row, item in [*rows, ("total", answer["total"])]:
        writer.writerow(
            [
                row,
                item["key"] if item["key"] is not None else "",
                item["from"],
                item["to"],
                item["value"],
                unit,
                item["event_count"],
                item["average"] if item["average"] is not None else "",
                item["status"],
            ]
        )


def _signed(value: str) -> str:
    return value if value.startswith("-") else f"+{value}"
