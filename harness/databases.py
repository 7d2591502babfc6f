"""Throwaway PostgreSQL databases beside the one a URL names, on the same server. Nothing
here touches the server itself: DROP ... WITH (FORCE) ends only that database's sessions."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def database_url_with_name(url: str, name: str) -> str:
    """The same server, user and options, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A psycopg connection; the URL's query (Django's options) is left out."""
    return psycopg.connect(urlunsplit(urlsplit(url)._replace(query="")), **kwargs)


def database_create(url: str, *, replace: bool = False) -> None:
    """Create the database `url` names if it does not exist (`replace`: drop it first)."""
    name = database_name(url)
    with connect(database_url_with_name(url, "postgres"), autocommit=True) as admin:
        if replace:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    name = database_name(url)
    with connect(database_url_with_name(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
