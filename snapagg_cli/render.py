"""How the commands' answers look in a terminal: rich tables and one-line headlines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


def day_headline(console: Console, day: dict[str, Any]) -> None:
    console.print(
        f"[bold]{day['metric']} {day['day']}: {day['value']}[/bold] ({day['status']})"
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
            f"shows {last['value']}."
        )
    elif not snapshots:
        console.print("No snapshot of this day yet.")


def snapshot_table(console: Console, day: dict[str, Any]) -> None:
    snapshots = day.get("snapshots") or []
    if not snapshots:
        return
    table = Table(title="Snapshot history", title_justify="left")
    for name, justify in [
        ("#", "right"),
        ("Taken at", "left"),
        ("Value", "right"),
        ("Change", "right"),
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


def day_as_of(console: Console, answer: dict[str, Any]) -> None:
    console.print(
        f"[bold]{answer['metric']} {answer['day']} as of {answer['as_of']}: "
        f"{answer['value']}[/bold] (snapshot {answer['sequence']}, taken at {answer['taken_at']})"
    )


def explanation_table(
    console: Console, events: list[dict[str, Any]], *, limit: int, title: str
) -> None:
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("Event id", "left"),
        ("Event time", "left"),
        ("Arrived", "left"),
        ("Value", "right"),
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


def _signed(value: str) -> str:
    return value if value.startswith("-") else f"+{value}"
