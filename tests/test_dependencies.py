"""What pyproject.toml promises matches what the code needs."""

from __future__ import annotations

import tomllib

import pytest
from django.conf import settings
from packaging.requirements import Requirement

from tests.conftest import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def _runtime() -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
    return {requirement.name.lower(): requirement for requirement in requirements}


def test_django_tables2_floor_has_the_querystring_replace_tag_the_templates_use():
    from django_tables2.templatetags.django_tables2 import register

    specifier = _runtime()["django-tables2"].specifier
    # 2.x has no querystring_replace: the pagination template would fail to load.
    assert not specifier.contains("2.7.5")
    assert specifier.contains("3.0.0")
    assert "querystring_replace" in register.tags
    uses = (PROJECT_ROOT / "templates/django_tables2/snapagg.html").read_text()
    assert "querystring_replace" in uses


def test_redis_is_a_runtime_dependency():
    assert "redis" in _runtime()
    assert "redis" not in {
        Requirement(line).name for line in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }


@pytest.mark.parametrize("celery_floor", ["5.6.9"])
def test_celery_floor_sends_task_failure_for_hard_time_limits(celery_floor):
    # events/tasks.py records a hard time limit on the batch from that signal (Celery 5.7).
    assert not _runtime()["celery"].specifier.contains(celery_floor)


def test_django_filter_is_not_installed_as_an_app_nor_required():
    assert "django_filters" not in settings.INSTALLED_APPS
    assert "django-filter" not in _runtime()
