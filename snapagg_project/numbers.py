"""How decimals are written out: exact, never floats, at least two decimal places."""

from __future__ import annotations

from decimal import Decimal

MIN_PLACES = 2


def decimal_str(value: Decimal) -> str:
    """12.500000 -> "12.50", 0.123400 -> "0.1234", 100 -> "100.00", -3 -> "-3.00"."""
    text = f"{value:f}"
    if "." not in text:
        return f"{text}.{'0' * MIN_PLACES}"
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(MIN_PLACES, "0")
    return f"{whole}.{fraction}"


def signed_decimal_str(value: Decimal) -> str:
    text = decimal_str(value)
    return text if text.startswith("-") else f"+{text}"


SUM_QUANTUM = Decimal("0.000001")  # values carry at most 6 decimal places


def sql_sum(value: Decimal | None) -> Decimal:
    """A SUM() of decimal columns as exact as the stored values: SQLite has no decimal
    arithmetic and adds floats (a hundred 0.1 come back as 9.99999999999998), which
    rounding to the values' 6 places undoes; on PostgreSQL (numeric) it changes nothing."""
    return Decimal(0) if value is None else value.quantize(SUM_QUANTUM)
