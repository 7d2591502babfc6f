"""The archive file format and where files live.

gzip-compressed JSON lines, one event a line, every column of events_event plus the
snapshot sequence that explains it. Chosen over Parquet: it needs no new dependency (pyarrow
is ~100 MB), values stay exact decimal strings (no decimal128 schema to keep in step with
the column), a file is read with `zcat | head` in an incident, and per-day files of a few
thousand to a few hundred thousand events gain little from a columnar layout. gzip's
header time is fixed (mtime=0), so the same events give the same bytes: a rerun after a
crash finds its file by name (the name carries the SHA-256) and writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from events.content import EventRecord

STORAGE_ALIAS = "archive"


def archive_storage() -> Storage:
    return storages[STORAGE_ALIAS]


@dataclass(frozen=True)
class ArchivedLine:
    """One event read back from a file."""

    record: EventRecord
    metric: str
    snapshot_sequence: int


def encode(lines: Iterable[tuple[EventRecord, str, int]]) -> bytes:
    """(record, metric name, snapshot sequence) per event, in file order."""
    text = "".join(
        json.dumps(
            {
                "id": r.pk,
                "event_id": r.event_id,
                "metric": metric,
                "metric_id": r.metric_id,
                "day": r.day.isoformat(),
                "day_total_id": r.day_total_id,
                "event_time": r.event_time.astimezone(dt.UTC).isoformat(),
                "arrival_time": r.arrival_time.astimezone(dt.UTC).isoformat(),
                "value": str(r.value),
                "source": r.source,
                "batch_id": r.batch_id,
                "content_sha256": r.content_sha256.hex(),
                "snapshot_sequence": sequence,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for r, metric, sequence in lines
    )
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def decode(data: bytes) -> list[ArchivedLine]:
    lines = []
    for raw in gzip.decompress(data).decode().splitlines():
        item = json.loads(raw)
        record = EventRecord(
            pk=item["id"],
            event_id=item["event_id"],
            metric_id=item["metric_id"],
            day=dt.date.fromisoformat(item["day"]),
            day_total_id=item["day_total_id"],
            event_time=dt.datetime.fromisoformat(item["event_time"]),
            arrival_time=dt.datetime.fromisoformat(item["arrival_time"]),
            value=Decimal(item["value"]),
            source=item["source"],
            batch_id=item["batch_id"],
            content_sha256=bytes.fromhex(item["content_sha256"]),
        )
        lines.append(ArchivedLine(record, item["metric"], item["snapshot_sequence"]))
    return lines


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_name(*, metric: str, day: dt.date, sha256: str) -> str:
    """Content-addressed: the same events always land on the same name."""
    return f"{metric}/{day:%Y}/{day:%Y-%m-%d}-{sha256[:32]}.jsonl.gz"


def file_write(*, name: str, data: bytes) -> str:
    storage = archive_storage()
    if storage.exists(name):  # a rerun after a crash: same name, same bytes
        return name
    return storage.save(name, ContentFile(data))


def file_read(name: str) -> bytes:
    with archive_storage().open(name, "rb") as handle:
        return handle.read()
