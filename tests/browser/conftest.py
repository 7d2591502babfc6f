"""Playwright driving Debian's Chromium (/usr/bin/chromium), headless. Playwright never
downloads a browser here: the executable is given explicitly. Missing Chromium fails in CI
and skips elsewhere, like PostgreSQL and Redis."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import _require
from tests.factories import UserFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    _require(CHROMIUM.exists(), f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def operator(transactional_db):
    return UserFactory(username="operator", is_staff=True)


def log_in(page, live_server, username: str, next_path: str = "/") -> None:
    """Log in through the login form, as a person would."""
    page.goto(f"{live_server.url}{next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
