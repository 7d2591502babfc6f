"""A bounded, seeded load: clients posting batches with duplicates, conflicts, late and
invalid events, some rounds all at the same moment; and the log of what was acknowledged."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

SOURCES = ["web", "mobile", "partner"]
# How far back event days go (0 = today). Days two or more back are already final for the
# default metric (1 day allowed lateness): their events are restatements, or quarantined
# for the "held" metric.
DAY_WEIGHTS = {0: 50, 1: 30, 2: 12, 3: 8}
HELD_METRIC = "held"


@dataclass
class Batch:
    client: int
    events: list[dict]
    round: int | None = None  # posted by every client at the same moment


@dataclass
class Plan:
    batches_by_client: dict[int, list[Batch]]
    versions: dict[str, list[dict]]  # every payload generated for an id, first = original
    rounds: int
    events: int
    duplicates: int
    conflicts: int
    invalid: int


def _payload(event_id: str, rng: random.Random, now: dt.datetime) -> dict:
    days_back = rng.choices(list(DAY_WEIGHTS), weights=list(DAY_WEIGHTS.values()))[0]
    day_start = (now - dt.timedelta(days=days_back)).replace(hour=0, minute=0, second=0)
    latest = min(now - dt.timedelta(seconds=5), day_start + dt.timedelta(days=1, seconds=-1))
    span = max(int((latest - day_start).total_seconds()), 1)
    event_time = day_start + dt.timedelta(seconds=rng.randrange(span))
    payload = {
        "event_id": event_id,
        "event_time": event_time.isoformat().replace("+00:00", "Z"),
        "value": str(Decimal(rng.randrange(-5_000, 50_000)) / 100),
        "source": rng.choice(SOURCES),
    }
    if rng.random() < 0.15:
        payload["metric"] = HELD_METRIC
    if rng.random() < 0.2:
        # A replaying client says when the event really reached it.
        delay = dt.timedelta(seconds=rng.randrange(0, 6 * 3600))
        payload["arrival_time"] = min(event_time + delay, now).isoformat().replace("+00:00", "Z")
    return payload


def plan_build(
    *,
    seed: int,
    events: int,
    clients: int,
    now: dt.datetime,
    batch_sizes: tuple[int, int] = (50, 400),
    round_every: int = 6,
    round_shared: int = 20,
    duplicate_share: float = 0.10,
    conflict_share: float = 0.01,
    invalid_share: float = 0.002,
) -> Plan:
    """Every batch of every client, decided up front from the seed."""
    rng = random.Random(seed)
    versions: dict[str, list[dict]] = {}
    originals: list[str] = []
    by_client: dict[int, list[Batch]] = defaultdict(list)
    counts = Counter()
    total = rounds = 0
    serial = 0
    while total < events:
        shared: list[dict] = []
        round_number = None
        if serial % round_every == round_every - 1:
            # A round: the same new events inside every client's batch, posted at once.
            round_number = rounds
            rounds += 1
            for i in range(round_shared):
                payload = _payload(f"r{round_number}-{i}", rng, now)
                versions[payload["event_id"]] = [payload]
                originals.append(payload["event_id"])
                shared.append(payload)
        for client in range(clients):
            size = rng.randint(*batch_sizes)
            batch = list(shared)
            while len(batch) < size:
                roll = rng.random()
                if originals and roll < duplicate_share:
                    batch.append(dict(versions[rng.choice(originals)][0]))
                    counts["duplicates"] += 1
                elif originals and roll < duplicate_share + conflict_share:
                    original = versions[rng.choice(originals)][0]
                    changed = {**original, "value": str(Decimal(original["value"]) + 1)}
                    versions[original["event_id"]].append(changed)
                    batch.append(changed)
                    counts["conflicts"] += 1
                elif roll < duplicate_share + conflict_share + invalid_share:
                    batch.append({**_payload(f"bad-{client}-{serial}", rng, now), "value": "NaN"})
                    counts["invalid"] += 1
                else:
                    event_id = f"c{client}-{serial}-{len(batch)}"
                    payload = _payload(event_id, rng, now)
                    versions[event_id] = [payload]
                    originals.append(event_id)
                    batch.append(payload)
            rng.shuffle(batch)
            by_client[client].append(Batch(client=client, events=batch, round=round_number))
            total += len(batch)
        serial += 1
    return Plan(
        batches_by_client=dict(by_client),
        versions=versions,
        rounds=rounds,
        events=total,
        duplicates=counts["duplicates"],
        conflicts=counts["conflicts"],
        invalid=counts["invalid"],
    )


@dataclass
class Request:
    started: float
    finished: float
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)


@dataclass
class Answer:
    """One batch as the generator sent it and the 202 that acknowledged it: the ground
    truth the independent checker (truth.py) works from."""

    events: list[dict]
    body: dict  # accepted, duplicates, conflicts, rejected, errors (with index)
    first_sent: float  # time.time() of the first attempt
    acked_at: float  # time.time() of the 202


@dataclass
class AckLog:
    """What the server acknowledged with 202, and every request's outcome."""

    answers: list[Answer] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    acked_versions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    requests: list[Request] = field(default_factory=list)
    events_sent: int = 0
    batches_acked: int = 0
    batches_given_up: int = 0
    response_counts: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_ack(self, batch: Batch, body: dict, first_sent: float | None = None) -> None:
        rejected = {error["index"] for error in body.get("errors", [])}
        now = time.time()
        with self.lock:
            self.answers.append(Answer(batch.events, body, first_sent or now, now))
            self.batches_acked += 1
            for key in ("accepted", "duplicates", "conflicts", "rejected"):
                self.response_counts[key] += body.get(key, 0)
            for index, payload in enumerate(batch.events):
                if index in rejected:
                    continue
                self.acked.add(payload["event_id"])
                self.acked_versions[payload["event_id"]].add(payload["value"])


class Client(threading.Thread):
    def __init__(
        self,
        *,
        number: int,
        port: int,
        token: str,
        batches: list[Batch],
        log: AckLog,
        barrier: threading.Barrier,
        events_per_second: float,
        progress: Counter,
    ) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.port, self.token = number, port, token
        self.batches, self.log, self.barrier = batches, log, barrier
        self.events_per_second = events_per_second
        self.progress = progress
        self.connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        started = time.monotonic()
        sent = 0
        for batch in self.batches:
            if batch.round is not None:
                try:
                    self.barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    self.barrier.reset()
            self._post_until_acked(batch)
            sent += len(batch.events)
            with self.log.lock:
                self.progress["events"] += len(batch.events)
            # Pace the load so that the faults land while it is still running.
            ahead = sent / self.events_per_second - (time.monotonic() - started)
            if ahead > 0 and batch.round is None:
                time.sleep(ahead)

    def _post_until_acked(self, batch: Batch, give_up_after: float = 300) -> None:
        body = json.dumps({"events": batch.events}).encode()
        deadline = time.monotonic() + give_up_after
        first_sent = time.time()
        attempt = 0
        with self.log.lock:
            self.log.events_sent += len(batch.events)
        while time.monotonic() < deadline:
            attempt += 1
            status, answer, retry_after = self._post(body)
            if status == 202:
                self.log.record_ack(batch, answer, first_sent)
                return
            # Anything else is not an acknowledgement: retry the same batch, as a client
            # that wants its events counted does (duplicates are harmless).
            time.sleep(retry_after or min(0.1 * attempt, 2.0))
        with self.log.lock:
            self.log.batches_given_up += 1

    def _post(self, body: bytes) -> tuple[int, dict, float | None]:
        started = time.monotonic()
        status, answer, retry_after = 0, {}, None
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.request(
                "POST",
                "/api/events/",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Token {self.token}",
                },
            )
            response = self.connection.getresponse()
            raw = response.read()
            status = response.status
            if response.getheader("Retry-After"):
                retry_after = float(response.getheader("Retry-After"))
            if status == 202:
                answer = json.loads(raw)
        except (OSError, http.client.HTTPException, ValueError):
            if self.connection is not None:
                self.connection.close()
            self.connection = None
        with self.log.lock:
            self.log.requests.append(Request(started, time.monotonic(), status))
        return status, answer, retry_after


def post_one_batch(*, port: int, token: str, events: list[dict], plan: Plan, log: AckLog) -> None:
    """Post one extra batch (the injector's) as a client would, remembering what was sent."""
    for payload in events:
        plan.versions.setdefault(payload["event_id"], []).append(payload)
    client = Client(
        number=-1,
        port=port,
        token=token,
        batches=[],
        log=log,
        barrier=threading.Barrier(1),
        events_per_second=1.0,
        progress=Counter(),
    )
    client._post_until_acked(Batch(client=-1, events=events), give_up_after=60)


def load_run(
    *,
    plan: Plan,
    port: int,
    tokens: list[str],
    events_per_second: float,
    log: AckLog,
    progress: Counter,
) -> list[Client]:
    """Start one thread per client; the caller joins them."""
    barrier = threading.Barrier(len(plan.batches_by_client))
    per_client = events_per_second / len(plan.batches_by_client)
    clients = [
        Client(
            number=number,
            port=port,
            token=tokens[number],
            batches=batches,
            log=log,
            barrier=barrier,
            events_per_second=per_client,
            progress=progress,
        )
        for number, batches in plan.batches_by_client.items()
    ]
    for client in clients:
        client.start()
    return clients
