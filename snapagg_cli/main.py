"""The `snapagg` command: post event files, read a day's snapshot history, explain a change,
total a range or a period.

Exit codes: 0 done; 1 done, but some events were not counted (rejected or conflicting) or
an explanation does not add up; 2 a usage, key or request error; 3 the server stayed
unreachable or busy through every retry (rerunning is safe); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from decimal import Decimal
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from snapagg_cli import render
from snapagg_cli.client import (
    AuthError,
    ClientError,
    NotFound,
    ServerUnavailable,
    SnapaggClient,
)
from snapagg_cli.files import (
    FileFormat,
    FileProblem,
    file_event_count,
    file_format_guess,
    file_items,
)
from snapagg_cli.upload import (
    BATCH_SIZE,
    UploadTally,
    file_upload,
    rejected_path_default,
    rejected_write,
)

DEFAULT_URL = "http://127.0.0.1:8000"
DAY_OPERATION = "/api/days/{metric}/{day}/"


class ExitCode(IntEnum):
    OK = 0
    NOT_COUNTED = 1
    USAGE = 2
    UNAVAILABLE = 3
    INTERRUPTED = 130  # as a shell reports Ctrl-C


class FileFormatChoice(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


app = typer.Typer(
    name="snapagg",
    help="Post events to a snapagg server and read its daily totals and snapshots.",
    no_args_is_help=True,
    add_completion=False,
)

Url = Annotated[
    str,
    typer.Option("--url", envvar="SNAPAGG_URL", help="The server's address.", show_envvar=True),
]
Key = Annotated[
    str,
    typer.Option(
        "--key",
        envvar="SNAPAGG_KEY",
        help="An API key (python manage.py create_api_token USER prints one).",
        show_envvar=True,
        show_default=False,
    ),
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for each answer.", min=1)]


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _fail(message: str, code: ExitCode) -> NoReturn:
    _stderr().print(f"[red]Error:[/red] {message}")
    raise typer.Exit(code)


@contextmanager
def _session(url: str, key: str, timeout: float, progress: Progress | None = None):
    """A client, with its refusals turned into messages and exit codes."""
    if not key:
        _fail("No API key: pass --key or set SNAPAGG_KEY.", ExitCode.USAGE)
    waits = progress.console if progress is not None else _stderr()

    def on_wait(reason: str, seconds: float) -> None:
        waits.print(f"[yellow]{reason}: waiting {seconds:.1f} s[/yellow]")

    with SnapaggClient(base_url=url, key=key, timeout=timeout, on_wait=on_wait) as client:
        try:
            yield client
        except AuthError as exc:
            _fail(f"The server refused the key ({exc.status}): {exc.detail}", ExitCode.USAGE)
        except ServerUnavailable as exc:
            _fail(exc.detail, ExitCode.UNAVAILABLE)
        except ClientError as exc:
            _fail(exc.detail, ExitCode.USAGE)


@app.command()
def post(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A CSV or JSON lines file."),
    ],
    url: Url = DEFAULT_URL,
    key: Key = "",
    file_format: Annotated[
        FileFormatChoice | None,
        typer.Option("--format", help="The file's format (default: from its name or content)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = BATCH_SIZE,
    rejected: Annotated[
        Path | None,
        typer.Option(
            help="Where to write rejected events (default: beside FILE, as NAME.rejected.jsonl)."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    timeout: Timeout = 60.0,
) -> None:
    """Post the events of FILE in batches. Safe to rerun: events already stored come back as
    duplicates and are not counted twice."""
    chosen: FileFormat = file_format.value if file_format else file_format_guess(file)
    tally = UploadTally()
    rejected_path = rejected or rejected_path_default(file)
    bar = _upload_progress(enabled=progress)
    try:
        with bar, _session(url, key, timeout, bar) as client:
            task = bar.add_task(f"Posting {file.name}", total=_expected_events(file, chosen))
            file_upload(
                client=client,
                items=file_items(file, chosen),
                tally=tally,
                batch_size=batch_size,
                on_progress=lambda done: bar.advance(task, done),
            )
    except FileProblem as exc:
        _post_report(tally, rejected_path, partial=True)
        _fail(str(exc), ExitCode.USAGE)
    except typer.Exit:
        _post_report(tally, rejected_path, partial=True)
        raise
    except KeyboardInterrupt:
        _post_report(tally, rejected_path, partial=True)
        _fail(
            "Interrupted. Rerun the same file to finish: the events already stored come "
            "back as duplicates.",
            ExitCode.INTERRUPTED,
        )
    _post_report(tally, rejected_path)
    raise typer.Exit(ExitCode.OK if tally.all_counted else ExitCode.NOT_COUNTED)


def _upload_progress(*, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        disable=not enabled,
    )


def _expected_events(file: Path, file_format: str) -> int:
    lines = file_event_count(file)
    return max(lines - 1, 0) if file_format == "csv" else lines


def _post_report(tally: UploadTally, rejected_path: Path, *, partial: bool = False) -> None:
    """The summary; after a stop (`partial`), only when something was sent or refused."""
    if partial and not tally.lines_done:
        return
    console = _stdout()
    render.upload_summary(console, tally)
    if tally.rejected:
        try:
            rejected_write(path=rejected_path, rejected=tally.rejected)
            console.print(f"{len(tally.rejected):,} rejected events written to {rejected_path}:")
        except OSError as exc:
            _stderr().print(
                f"[red]Could not write {rejected_path} ({exc.strerror}); "
                "choose another place with --rejected.[/red]"
            )
            console.print(f"{len(tally.rejected):,} rejected events:")
        render.rejections(console, tally)
    if tally.conflicts:
        console.print(
            f"[yellow]{tally.conflicts:,} events reuse an id already stored with other "
            "content; they are recorded but not counted. Give changed events new ids.[/yellow]"
        )


@app.command()
def day(
    metric: Annotated[str, typer.Argument(help="The metric's name, e.g. orders.")],
    day: Annotated[str, typer.Argument(help="The day, as YYYY-MM-DD.")],
    as_of: Annotated[
        str | None,
        typer.Option(help="What the day showed at this time (ISO 8601 with an offset)."),
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only the events of this source.")] = None,
    url: Url = DEFAULT_URL,
    key: Key = "",
    timeout: Timeout = 60.0,
) -> None:
    """A day's total, its status and the history of its snapshots."""
    params = {"as_of": as_of} if as_of else {}
    with _session(url, key, timeout) as client:
        if source is not None:
            _require_parameter(client, "source")
            params["source"] = source
        try:
            answer = client.day_get(metric=metric, day=day, params=params or None)
        except NotFound as exc:
            _fail(exc.detail, ExitCode.USAGE)
        unit = client.metric_unit(metric=metric)
    console = _stdout()
    if as_of:
        render.day_as_of(console, answer, unit)
        return
    render.day_headline(console, answer, unit)
    render.snapshot_table(console, answer, unit)


def _require_parameter(client: SnapaggClient, name: str) -> None:
    # The server ignores query parameters it does not know: sending ?source= to one that
    # cannot filter would print the whole day's figures as if they were the source's.
    declared = client.operation_parameters(path=DAY_OPERATION)
    if declared is None or name not in declared:
        _fail(
            f"This server cannot filter a day by {name} yet (it is planned in the API); "
            f"leave out --{name}.",
            ExitCode.USAGE,
        )


@app.command()
def explain(
    metric: Annotated[str, typer.Argument(help="The metric's name.")],
    day: Annotated[str, typer.Argument(help="The day, as YYYY-MM-DD.")],
    sequence: Annotated[int, typer.Argument(help="The snapshot's number (1 is the first).")],
    limit: Annotated[int, typer.Option(help="Events to list; 0 lists all.", min=0)] = 1000,
    url: Url = DEFAULT_URL,
    key: Key = "",
    timeout: Timeout = 60.0,
) -> None:
    """The events behind a snapshot's change, and a check that they add up to it."""
    with _session(url, key, timeout) as client:
        try:
            snapshot = _snapshot_of(client.day_get(metric=metric, day=day), sequence)
            events = list(client.snapshot_events(metric=metric, day=day, sequence=sequence))
        except NotFound as exc:
            _fail(exc.detail, ExitCode.USAGE)
        unit = client.metric_unit(metric=metric)
    console = _stdout()
    title = (
        f"Snapshot {sequence} of {metric} {day}: {render.with_unit(snapshot['value'], unit)} "
        f"({snapshot['reason']}, taken at {snapshot['taken_at']})"
    )
    render.explanation_table(console, events, limit=limit, title=title, unit=unit)
    total = sum((Decimal(event["value"]) for event in events), Decimal(0))
    change = Decimal(snapshot["change"])
    summary = (
        f"{len(events):,} events sum to {render.with_unit(str(total), unit)}; the snapshot "
        f"changed the day by {render.with_unit(str(change), unit)}"
    )
    if total == change and len(events) == snapshot["change_events"]:
        console.print(f"[green]{summary}: they match.[/green]")
        return
    console.print(f"[red]{summary}: they do not match.[/red]")
    raise typer.Exit(ExitCode.NOT_COUNTED)


def _snapshot_of(day_answer: dict, sequence: int) -> dict:
    for snapshot in day_answer.get("snapshots", []):
        if snapshot["sequence"] == sequence:
            return snapshot
    count = len(day_answer.get("snapshots", []))
    raise NotFound(f"{day_answer['day']} has no snapshot {sequence} (it has {count}).")


PERIODS = (
    "today, yesterday, last_7_days, last_30_days, this_month, last_month, this_year, last_year"
)
# The aggregates API's query fields, as this command's options (to name the one at fault).
AGGREGATE_OPTIONS = {
    "metric": "--metric",
    "period": "--period",
    "from": "--from",
    "to": "--to",
    "source": "--source",
    "group_by": "--group-by",
    "as_of": "--as-of",
    "order": "--order",
    "limit": "--limit",
}


@app.command()
def aggregates(
    metric: Annotated[
        str | None,
        typer.Option("--metric", "-m", help="The metric's name (default: the server's default)."),
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            "-p",
            help="A named range relative to today in the server's reporting time zone: "
            f"{PERIODS}. Not with --from/--to.",
        ),
    ] = None,
    day_from: Annotated[
        str | None, typer.Option("--from", help="The first day, YYYY-MM-DD (with --to).")
    ] = None,
    day_to: Annotated[
        str | None, typer.Option("--to", help="The last day, YYYY-MM-DD (inclusive).")
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option("--group-by", "-g", help="day, week (ISO), month, year or source."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help='Only the events of this source ("" for events without one).'),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="The figures as published at this time (ISO 8601 with an offset)."),
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(help="Group order: key, -key, value or -value (default key)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many groups (1-1000).", show_default=False)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's answer as JSON.")
    ] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print the groups and the total as CSV.")
    ] = False,
    url: Url = DEFAULT_URL,
    key: Key = "",
    timeout: Timeout = 60.0,
) -> None:
    """Total, event count and average of a metric over a period or a range of days, grouped
    by day, week, month, year or source (--group-by source --order -value --limit 10 ranks
    sources), now or as published at a time (--as-of)."""
    if as_json and as_csv:
        _fail("Choose one of --json and --csv.", ExitCode.USAGE)
    if period is None and day_from is None and day_to is None:
        _fail("Give --period, or --from and --to (YYYY-MM-DD).", ExitCode.USAGE)
    chosen = {
        "metric": metric,
        "period": period,
        "from": day_from,
        "to": day_to,
        "source": source,
        "group_by": group_by,
        "as_of": as_of,
        "order": order,
        "limit": str(limit) if limit is not None else None,
    }
    params = {name: value for name, value in chosen.items() if value is not None}
    with _session(url, key, timeout) as client:
        try:
            answer = client.aggregates_get(params=params)
        except NotFound:
            _fail(
                f"{url} has no /api/aggregates/ (a server older than slices and periods).",
                ExitCode.USAGE,
            )
        except ClientError as exc:
            if exc.status is None or exc.field not in AGGREGATE_OPTIONS:
                raise
            _fail(f"{AGGREGATE_OPTIONS[exc.field]}: {exc.detail}", ExitCode.USAGE)
        unit = answer.get("unit") or client.metric_unit(metric=answer["metric"])
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    elif as_csv:
        render.aggregate_csv(sys.stdout, answer, unit=unit)
    else:
        render.aggregate_table(_stdout(), answer, unit=unit)


if __name__ == "__main__":
    app()
