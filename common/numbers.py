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
