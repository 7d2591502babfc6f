"""Every environment variable the application reads is in the README's configuration table
and in .env.example (the test harness's own hooks aside)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = [
    "snapagg_project", "common", "aggregation", "events", "snapshots", "web", "apikeys",
    "alerts", "archive", "embedded", "snapagg_cli",
]  # fmt: skip
READ = re.compile(
    r"""(?:env_[a-z_]+|os\.environ\.get|os\.getenv|os\.environ\[|envvar=)\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def _variables_read() -> set[str]:
    found: set[str] = set()
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found.update(READ.findall(path.read_text(encoding="utf-8")))
    return found


def test_the_scan_finds_the_variables():
    assert {"DATABASE_URL", "ALERT_WEBHOOK_URL", "SNAPAGG_KEY", "LOG_FORMAT"} <= _variables_read()


def test_every_variable_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))

    assert sorted(v for v in _variables_read() if f"`{v}`" not in table) == []


def test_every_variable_is_in_env_example():
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^# ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))

    assert sorted(_variables_read() - listed) == []
