"""Database helpers shared by the apps."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import psycopg
from django.db import connection


def advisory_lock_key(name: str) -> int:
    """A stable 32-bit key for a named lock."""
    return zlib.crc32(name.encode())


def advisory_xact_lock_try(name: str) -> bool:
    """Take a transaction-scoped lock named `name`, or return False if another session has it.

    `pg_try_advisory_xact_lock`: released at commit or rollback, so a crashed holder can
    never leave it stuck.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [advisory_lock_key(name)])
        return bool(cursor.fetchone()[0])


def text_storable(value: str) -> bool:
    """Whether a string can be stored in (or compared with) a text column. PostgreSQL text
    holds no NUL character and the driver refuses such a parameter with an error, so a
    lookup by one must answer "not found" without asking the database."""
    return "\x00" not in value


def advisory_lock_try(name: str) -> bool:
    """Take a session-scoped lock named `name` (held across transactions until
    `advisory_unlock` or the connection closes, so a crashed holder releases it too)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [advisory_lock_key(name)])
        return bool(cursor.fetchone()[0])


def advisory_unlock(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [advisory_lock_key(name)])


def execute_prepared(sql: str, params: Sequence[object]) -> list[tuple]:
    """Run one statement of a hot path as a server-side prepared statement, on the
    connection (and in the transaction) of the ORM, and return its rows.

    Parameters are bound server-side (arrays travel as binary, not as literals), and the
    statement is prepared on its first use and reused on the connection from then on, so
    PostgreSQL parses and plans it once. Use %s placeholders.
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall() if cursor.description is not None else []
