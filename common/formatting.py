"""How numbers, times and durations read on the pages: exact decimals with thousands
separators, times in a given zone with its name, durations in words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from common.numbers import decimal_str


def figure(value: Decimal, unit: str = "") -> str:
    """1234567.5 -> "1,234,567.50" (exact: no rounding, no float); with a unit,
    "1,234,567.50 EUR" (a no-break space: the unit never wraps away from its number)."""
    text = decimal_str(value)
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, fraction = text.split(".")
    return with_unit(f"{sign}{int(whole):,}.{fraction}", unit)


def signed_figure(value: Decimal, unit: str = "") -> str:
    """+1,234.00, -5.50 (with a real minus sign), +0.00; with a unit, "+1,234.00 EUR"."""
    text = figure(value, unit)
    return f"\N{MINUS SIGN}{text[1:]}" if text.startswith("-") else f"+{text}"


def with_unit(number: str, unit: str) -> str:
    """A formatted number followed by its metric's unit; no unit: the number alone."""
    return f"{number}\N{NO-BREAK SPACE}{unit}" if unit else number


def zone_time(instant: dt.datetime, *, tz: dt.tzinfo, year: int | None = None) -> str:
    """ "23 Nov 00:00 UTC" in zone `tz`; the year is added when it is not `year`."""
    local = instant.astimezone(tz)
    day = f"{local.day} {local:%b}"
    if year is None or local.year != year:
        day += f" {local.year}"
    return f"{day} {local:%H:%M} {local.tzname()}"


def day_text(day: dt.date) -> str:
    """ "Fri 20 Nov 2026"."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def duration_text(duration: dt.timedelta) -> str:
    """ "2 days 3 h", "1 day", "5 h 20 min", "12 min", "40 s"; negative: "-5 s"."""
    seconds = int(duration.total_seconds())
    if seconds < 0:
        return f"-{duration_text(-duration)}"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        day_words = f"{days} day" if days == 1 else f"{days} days"
        return f"{day_words} {hours} h" if hours else day_words
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """plural(1, "event") -> "1 event"; plural(3, "event") -> "3 events"."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count:,} {word}"
