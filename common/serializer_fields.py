"""Serializer fields shared by the API modules."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.numbers import decimal_str


@extend_schema_field({"type": "string", "format": "decimal", "example": "12.50"})
class DecimalStringField(serializers.Field):
    """A decimal written as an exact string ("12.50"), never a float."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal) -> str:
        return decimal_str(value)


class TextField(serializers.CharField):
    """A CharField for request bodies that takes JSON strings only: DRF's own turns a
    number into its text (12 -> "12"), which the schema ("type": "string") does not allow,
    and a NUL character, which PostgreSQL text cannot hold, is refused by DRF already."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
