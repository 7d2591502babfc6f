"""Playwright driving Debian's Chromium (/usr/bin/chromium), headless. Playwright never
downloads a browser here: the executable is given explicitly. Missing Chromium fails in CI
and skips elsewhere, like PostgreSQL and Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _require
from tests.factories import UserFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
# axe-core from npm, installed once into a cache directory outside the repository (CI can
# cache it under the same path), one directory per version; its axe.min.js is injected
# into each page.
AXE_VERSION = "4.14"
AXE_CACHE = (
    Path(os.environ.get("AXE_CACHE_DIR", Path.home() / ".cache" / "snapagg-axe")) / AXE_VERSION
)
AXE_JS = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
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


@pytest.fixture(scope="session")
def axe_js() -> Path:
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        _require(npm is not None, "npm, to install axe-core (apt-get install npm)")
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(AXE_CACHE),
                "--no-audit",
                "--no-fund",
                f"axe-core@{AXE_VERSION}",
            ],
            check=True,
            timeout=300,
        )
    return AXE_JS


def axe_violations(page, axe_js: Path) -> list[dict]:
    """Run axe-core over the page as it is now; the violations, each with its nodes."""
    # Evaluated through the browser's debugging protocol rather than added as a <script>:
    # a page's Content-Security-Policy (the API's Redoc page has one) would refuse that.
    page.evaluate(axe_js.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in result["violations"]
    ]
