"""The demo's way in: an admin user and an API key, kept in a file per database.

`make run` prints them last (the Procfile's `credentials` process, once the site answers),
so they do not scroll away under the servers' output. The file is named after the database
and records it, and a stored password (or key) is used only after checking it against that
database: switching databases never shows a password that does not work.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from apikeys.selectors import api_key_for_request, api_key_role_scopes
from apikeys.services import api_key_create

API_KEY_NAME = "demo"
FIELDS = ("database", "site", "user", "password", "api_key")


@dataclass(frozen=True)
class DemoAccess:
    database: str
    site: str
    user: str
    password: str
    api_key: str

    def text(self) -> str:
        """The block `make run` prints: where to go, how to log in, a first API call."""
        return "\n".join(
            [
                f"snapagg demo (database {self.database}):",
                f"  site      {self.site}/",
                f"  admin     {self.site}/admin/   user {self.user}  password {self.password}",
                f"  API key   {self.api_key}",
                f"  try       curl -H 'Authorization: Token {self.api_key}' {self.site}/api/days/",
                f"  (kept in {demo_access_path()})",
            ]
        )


def database_label() -> str:
    """The database the credentials belong to, by name: the embedded server's socket folder
    and port may change between runs, and a stored password is checked before it is shown
    anyway, so two servers with a database of the same name cannot mislead."""
    return str(settings.DATABASES["default"]["NAME"])


def demo_access_path() -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", database_label())
    return settings.VAR_DIR / f"demo-credentials-{name}.txt"


def demo_access_read() -> DemoAccess | None:
    """This database's stored credentials; None without a file or for another database."""
    path = demo_access_path()
    if not path.exists():
        return None
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in FIELDS:
            values[key] = value.strip()
    if set(values) != set(FIELDS) or values["database"] != database_label():
        return None
    return DemoAccess(**values)


def _password(username: str, stored: DemoAccess | None) -> str:
    """The stored password if it still logs this user in, else a new one, set now."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True}
    )
    works = stored is not None and stored.user == username and user.check_password(stored.password)
    if works and user.is_staff and user.is_superuser:
        return stored.password
    password = secrets.token_urlsafe(12)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return password


def _api_key(username: str, stored: DemoAccess | None, now: dt.datetime) -> str:
    """The stored key if this database still accepts it for this user, else a new one."""
    if stored is not None:
        api_key = api_key_for_request(raw_key=stored.api_key)
        if (
            api_key is not None
            and api_key.user.username == username
            and api_key.refusal(now=now) is None
        ):
            return stored.api_key
    user = get_user_model().objects.get(username=username)
    _, raw_key = api_key_create(
        user=user,
        name=API_KEY_NAME,
        scopes=api_key_role_scopes(user=user),
        expires_at=None,
        now=now,
    )
    return raw_key


def demo_access_ensure(*, username: str, site: str, now: dt.datetime) -> DemoAccess:
    """An admin user and an API key that work on this database, written to its file."""
    stored = demo_access_read()
    password = _password(username, stored)
    access = DemoAccess(
        database=database_label(),
        site=site.rstrip("/"),
        user=username,
        password=password,
        api_key=_api_key(username, stored, now),
    )
    path = demo_access_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The single file of earlier versions, whichever database it was for: never right again.
    (settings.VAR_DIR / "demo-credentials.txt").unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    header = "# snapagg demo credentials, written by manage.py demo_setup for this database"
    path.write_text("\n".join([header, *(f"{f}: {getattr(access, f)}" for f in FIELDS)]) + "\n")
    return access
