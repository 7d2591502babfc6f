"""The HTTP side of the client: one httpx session with the token, and the retry policy.

Retrying is safe everywhere, POST /api/events/ included: a resent event with the same id
and content is a duplicate, never counted twice. So a 429 waits for its Retry-After, and a
503 (or a dropped connection, a gateway's 502/504) waits with a growing backoff; other
4xx answers stop with the server's own sentence.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

USER_AGENT = "snapagg-cli/0.1"
PAGE_SIZE = 1000  # the API's largest page
RETRY_STATUSES = {502, 503, 504}


def pause(seconds: float) -> None:
    """Every wait goes through here (tests replace it to see the waits without taking them)."""
    time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8  # per request, for 503s and connection errors (about 60 s in all)
    # Before the server has answered once, a refused connection is more likely a wrong
    # --url than a restart: say so after a few seconds rather than a minute.
    first_contact_attempts: int = 3
    backoff_first: float = 0.5
    backoff_max: float = 30.0
    throttled_attempts: int = 100  # 429s are flow control, not failure: allow many more
    retry_after_max: float = 300.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_first * 2 ** (attempt - 1))


class ClientError(Exception):
    """The request was refused or could not be made; `detail` is a sentence for people."""

    def __init__(
        self, detail: str, *, status: int | None = None, code: str = "", field: str = ""
    ) -> None:
        super().__init__(detail)
        self.detail, self.status, self.code, self.field = detail, status, code, field


class AuthError(ClientError):
    """401 or 403: no key, a wrong key, or a key without the right."""


class NotFound(ClientError):
    pass


class BatchTooLarge(ClientError):
    """413: the caller should send the batch in smaller parts."""


class ServerUnavailable(ClientError):
    """The server kept answering 429/503 or could not be reached, after every retry."""


Waiting = Callable[[str, float], None]


class SnapaggClient:
    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        on_wait: Waiting | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.on_wait = on_wait or (lambda reason, seconds: None)
        self.answered = False  # has the server answered anything yet?
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            timeout=timeout,
            headers={
                "Authorization": f"Token {key}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SnapaggClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the API's operations -------------------------------------------------------------

    def events_post(self, *, events: list[dict[str, Any]]) -> dict[str, Any]:
        """POST one batch; the answer's counts and errors (also when every event is invalid,
        which the API answers with a 400 carrying the same fields)."""
        body = json.dumps({"events": events}, default=_json_default).encode()
        response = self.request(
            "POST",
            "api/events/",
            content=body,
            headers={"Content-Type": "application/json"},
            answers={202, 400, 413},
        )
        answer = _json(response)
        if response.status_code == 413:
            raise BatchTooLarge(_detail(answer, response), status=413, code=answer.get("error", ""))
        if response.status_code == 400 and answer.get("error") != "invalid_events":
            raise ClientError(_detail(answer, response), status=400, code=answer.get("error", ""))
        return answer

    def day_get(self, *, metric: str, day: str, params: dict[str, str] | None = None) -> dict:
        return _json(self.request("GET", _day_path(metric, day), params=params))

    def metric_unit(self, *, metric: str) -> str:
        """The metric's unit from GET /api/metrics/ ("" for none, or when it is not listed)."""
        answer: Any = _json(self.request("GET", "api/metrics/"))
        listed = answer.get("results", []) if isinstance(answer, dict) else answer
        return next((m.get("unit") or "" for m in listed if m.get("name") == metric), "")

    def snapshot_events(self, *, metric: str, day: str, sequence: int) -> Iterator[dict]:
        """Every event behind the snapshot's change, through all the pages."""
        path = f"{_day_path(metric, day)}snapshots/{sequence}/events/"
        page = 1
        while True:
            answer = _json(
                self.request("GET", path, params={"page": str(page), "page_size": str(PAGE_SIZE)})
            )
            yield from answer["results"]
            if not answer.get("next"):
                return
            page += 1

    def operation_parameters(self, *, path: str, method: str = "get") -> set[str] | None:
        """The query parameters the server's schema declares for an operation (None when the
        server publishes no such operation): lets the client refuse an option that this
        server would silently ignore."""
        schema = _json(self.request("GET", "api/schema/", params={"format": "json"}))
        operation = schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            return None
        return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}

    def aggregates_get(self, *, params: dict[str, str]) -> dict:
        """GET /api/aggregates/ with the given query parameters, as the server answers it."""
        return _json(self.request("GET", "api/aggregates/", params=params))

    # --- transport ----------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, answers: set[int] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries; return the response when its status is in `answers` (200 by
        default), raise a ClientError otherwise."""
        answers = answers or {200}
        failures = throttled = 0
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failures += 1
                self._wait_or_give_up(failures, None, f"cannot reach {self.http.base_url} ({exc})")
                continue
            self.answered = True
            status = response.status_code
            if status in answers:
                return response
            if status == 429:
                throttled += 1
                self._wait_throttled(throttled, response)
                continue
            if status in RETRY_STATUSES:
                failures += 1
                self._wait_or_give_up(failures, response, f"the server answered {status}")
                continue
            raise _refusal(response)

    def _wait_throttled(self, throttled: int, response: httpx.Response) -> None:
        if throttled > self.policy.throttled_attempts:
            raise ServerUnavailable(
                f"Still rate limited after {throttled - 1} waits; try again later.", status=429
            )
        seconds = _retry_after(response, self.policy)
        self.on_wait("rate limited (429)", seconds if seconds is not None else 1.0)
        pause(seconds if seconds is not None else 1.0)

    def _wait_or_give_up(self, failures: int, response: httpx.Response | None, why: str) -> None:
        attempts = self.policy.attempts if self.answered else self.policy.first_contact_attempts
        if failures >= attempts:
            raise ServerUnavailable(
                f"Gave up after {failures} attempts: {why}. Rerunning is safe.",
                status=response.status_code if response is not None else None,
            )
        seconds = _retry_after(response, self.policy) if response is not None else None
        if seconds is None:
            seconds = self.policy.backoff(failures)
        self.on_wait(why, seconds)
        pause(seconds)


def _day_path(metric: str, day: str) -> str:
    return f"api/days/{quote(metric, safe='')}/{quote(day, safe='')}/"


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # the API takes decimal strings: exact, unlike a float
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(response: httpx.Response) -> dict:
    try:
        return response.json()
    except ValueError:
        raise ClientError(
            f"{response.request.url} answered {response.status_code} with something other "
            "than JSON; is --url/SNAPAGG_URL the snapagg server?",
            status=response.status_code,
        ) from None


def _detail(answer: dict, response: httpx.Response) -> str:
    return str(answer.get("detail") or f"The server answered {response.status_code}.")


def _refusal(response: httpx.Response) -> ClientError:
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    detail = _detail(answer, response)
    code = str(answer.get("error", ""))
    field = str(answer.get("field") or "")
    status = response.status_code
    if status in {401, 403}:
        return AuthError(detail, status=status, code=code)
    if status == 404:
        return NotFound(detail, status=status, code=code, field=field)
    if status >= 500:
        detail = f"The server failed ({status}): {detail} This is a server bug; it is logged."
    return ClientError(detail, status=status, code=code, field=field)


def _retry_after(response: httpx.Response, policy: RetryPolicy) -> float | None:
    """Retry-After as seconds (it may also be an HTTP date), capped by the policy."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": a time in UTC
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return min(max(seconds, 0.0), policy.retry_after_max)
