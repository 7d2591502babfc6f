"""The archive on S3-compatible object storage: moto's standalone server, started here on
127.0.0.1 and spoken to over HTTP by django-storages and boto3 (no mock objects)."""

from __future__ import annotations

import gzip
import json
import socket
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from django.test import override_settings
from moto.server import ThreadedMotoServer

from archive.models import ArchiveManifest
from archive.selectors import cache_clear
from archive.services import archive_run_execute
from events.models import Event
from tests.archive.conftest import ARCHIVE_AT, DAY, storages_with_archive

pytestmark = [pytest.mark.django_db]

BUCKET = "snapagg-archive-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # The server keeps its buckets in this process's memory: start each test empty.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_archive(s3_endpoint: str):
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BUCKET,
            "location": "snapagg-archive",
            "endpoint_url": s3_endpoint,
            "region_name": "us-east-1",
            "access_key": CREDENTIALS["aws_access_key_id"],
            "secret_key": CREDENTIALS["aws_secret_access_key"],
            "file_overwrite": False,
            "default_acl": None,
        },
    }
    cache_clear()
    with override_settings(STORAGES=storages_with_archive(backend)):
        yield client
    cache_clear()


def test_archive_to_s3_and_read_back(archived_day, s3_archive, api_client) -> None:
    before = api_client.get("/api/days/default/2026-11-20/snapshots/2/events/").content
    detail = api_client.get("/api/events/e3/").json()

    run = archive_run_execute(now=ARCHIVE_AT, trigger="command")

    assert run.events == 8
    assert not Event.objects.filter(day=DAY).exists()
    manifest = ArchiveManifest.objects.get()
    key = f"snapagg-archive/{manifest.location}"
    body = s3_archive.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    lines = gzip.decompress(body).decode().splitlines()
    assert len(lines) == 8
    assert {json.loads(line)["event_id"] for line in lines} >= {"e1", "late1", "restated1"}
    cache_clear()  # read from the server, not from memory
    assert api_client.get("/api/days/default/2026-11-20/snapshots/2/events/").content == before
    assert api_client.get("/api/events/e3/").json() == {**detail, "archived": True}


def test_rerun_after_a_crash_reuses_the_object(archived_day, s3_archive) -> None:
    import archive.services as archive_services

    class Crash(BaseException):
        pass

    def crash(step, day_total):
        if step == "written":
            raise Crash

    original = archive_services.after_step
    archive_services.after_step = crash
    try:
        with pytest.raises(Crash):
            archive_run_execute(now=ARCHIVE_AT, trigger="command")
    finally:
        archive_services.after_step = original
    assert Event.objects.filter(day=DAY).count() == 8
    archive_run_execute(now=ARCHIVE_AT, trigger="command")
    listing = s3_archive.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert len(listing) == 1
    assert not Event.objects.filter(day=DAY).exists()
