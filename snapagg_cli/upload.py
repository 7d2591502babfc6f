"""Post an event file in batches and add up the answers, mapping every rejected event back
to its file line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from snapagg_cli.client import BatchTooLarge, SnapaggClient
from snapagg_cli.files import FileEvent, FileItem, LineRejected

BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    line: int
    event_id: str | None
    field: str
    detail: str
    event: dict[str, Any] | None = None  # as sent
    text: str | None = None  # the raw line, when it could not be read as an event

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "line": self.line,
            "event_id": self.event_id,
            "field": self.field,
            "detail": self.detail,
        }
        if self.event is not None:
            record["event"] = self.event
        if self.text is not None:
            record["text"] = self.text
        return record


@dataclass
class UploadTally:
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: list[RejectedEvent] = field(default_factory=list)
    batches: int = 0

    @property
    def lines_done(self) -> int:
        return self.accepted + self.duplicates + self.conflicts + len(self.rejected)

    @property
    def all_counted(self) -> bool:
        """Every event is now counted by the server, whether by this run or an earlier one."""
        return not self.rejected and not self.conflicts


def file_upload(
    *,
    client: SnapaggClient,
    items: Iterable[FileItem],
    tally: UploadTally,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] = lambda done: None,
) -> UploadTally:
    """Send the file's events in batches, in file order, adding the answers to `tally` (kept
    by the caller, so a run stopped half-way still reports what it sent)."""
    batch: list[FileEvent] = []
    for item in items:
        if isinstance(item, LineRejected):
            tally.rejected.append(
                RejectedEvent(item.line, item.event_id, item.field, item.detail, text=item.text)
            )
            on_progress(1)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            _batch_send(client, batch, tally)
            on_progress(len(batch))
            batch = []
    if batch:
        _batch_send(client, batch, tally)
        on_progress(len(batch))
    return tally


def _batch_send(client: SnapaggClient, batch: list[FileEvent], tally: UploadTally) -> None:
    try:
        answer = client.events_post(events=[item.event for item in batch])
    except BatchTooLarge as exc:
        # Over the server's body size limit: halve until the parts fit.
        if len(batch) == 1:
            only = batch[0]
            tally.rejected.append(
                RejectedEvent(only.line, _event_id(only), "event", exc.detail, event=only.event)
            )
            return
        middle = len(batch) // 2
        _batch_send(client, batch[:middle], tally)
        _batch_send(client, batch[middle:], tally)
        return
    tally.batches += 1
    tally.accepted += answer["accepted"]
    tally.duplicates += answer["duplicates"]
    tally.conflicts += answer["conflicts"]
    for error in answer.get("errors", []):
        # The API names an event by its index in the batch; people need the file line.
        sent = batch[error["index"]]
        tally.rejected.append(
            RejectedEvent(
                sent.line, error.get("event_id"), error["field"], error["detail"], sent.event
            )
        )


def _event_id(item: FileEvent) -> str | None:
    event_id = item.event.get("event_id")
    return event_id if isinstance(event_id, str) else None


def rejected_write(*, path: Path, rejected: list[RejectedEvent]) -> None:
    """One JSON object a line, in file order: line, event_id, field, detail and the event."""
    with path.open("w", encoding="utf-8") as handle:
        for record in sorted(rejected, key=lambda rejected_event: rejected_event.line):
            handle.write(json.dumps(record.as_json(), default=_decimal_text) + "\n")


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def rejected_path_default(source: Path) -> Path:
    return source.with_name(f"{source.stem}.rejected.jsonl")
